"""The ``jaxgd`` command line: list, demo (table and plot)."""

import numpy as np
import pytest

import jaxgd
from jaxgd import cli, demo


def test_list_names_every_optimizer_with_its_hyperparameters(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in jaxgd.OPTIMIZERS:
        assert f"\n{name}(" in "\n" + out
    assert "adam(learning_rate, b1=0.9, b2=0.999" in out
    assert "linesearch=<GradientTransformation>" in out  # lbfgs's default, shown briefly


def test_demo_prints_a_row_per_problem_and_variant(capsys):
    assert cli.main(["demo", "--steps", "300", "--only", "sgd", "adam"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.startswith(("rosenbrock", "quadratic"))]
    assert [(r[0], r[1]) for r in rows] == [
        ("rosenbrock", "sgd"), ("rosenbrock", "adam"), ("quadratic", "sgd"), ("quadratic", "adam")
    ]
    assert all(int(r[3]) <= 300 for r in rows)


def test_demo_reaches_the_known_optima_with_the_tuned_rates():
    rows = {(r.problem, r.variant): r for r in demo.run_demo(variants=["momentum", "adam"])}
    assert rows["rosenbrock", "adam"].distance < 1e-3
    assert rows["rosenbrock", "momentum"].distance < 1e-3
    assert rows["quadratic", "momentum"].distance < 1e-3
    for r in rows.values():
        assert np.all(np.isfinite(r.losses)) and r.losses[-1] < r.losses[0]


def test_demo_plot_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "demo.png"
    assert cli.main(["demo", "--steps", "100", "--only", "sgd", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_variant_is_rejected():
    with pytest.raises(SystemExit):
        cli.main(["demo", "--only", "adamm"])
