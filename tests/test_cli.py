"""The ``jaxgd`` command line: fast help, argument errors, list, demo (table and plot)."""

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import version

import jax
import numpy as np
import pytest

import jaxgd
from jaxgd import cli, demo, problems
from jaxgd.commands import arguments, listing


def _usage_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_help_and_version_import_no_jax():
    script = textwrap.dedent("""
        import contextlib, io, json, sys
        import jaxgd
        before = set(sys.modules)
        import jaxgd.cli
        out = {}
        for flag in ("--help", "--version"):
            text = io.StringIO()
            with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
                jaxgd.cli.main([flag])
            out[flag] = text.getvalue()
        out["new"] = sorted(set(sys.modules) - before)
        out["jax"] = "jax" in sys.modules
        print(json.dumps(out))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, timeout=120)
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["--version"].strip() == f"jaxgd {version('jaxgd')}"
    assert "demo" in out["--help"] and "list" in out["--help"]
    # the command line itself adds only its own modules and the standard library's
    heavy = [m for m in out["new"] if m.split(".")[0] in ("jax", "jaxlib", "numpy", "matplotlib")
             or (m.startswith("jaxgd.") and not m.startswith(("jaxgd.cli", "jaxgd.commands")))]
    assert heavy == []
    assert not out["jax"]  # nor does ``import jaxgd``: its names load when first used


def test_commands_are_the_modules_that_exist():
    parser = cli.build_parser()
    names = set(parser._subparsers._group_actions[0].choices)
    assert {"demo", "list"} <= names
    folder = os.path.dirname(arguments.__file__)
    for module, command in (("paths", "paths"), ("lr_find", "lr-find")):
        assert (command in names) == os.path.exists(os.path.join(folder, f"{module}.py"))


def _commands_with_steps():
    choices = cli.build_parser()._subparsers._group_actions[0].choices
    return [name for name, sub in choices.items()
            if any("--steps" in action.option_strings for action in sub._actions)]


@pytest.mark.parametrize("command", _commands_with_steps())
@pytest.mark.parametrize("steps", ["0", "-5", "2.5", "ten"])
def test_steps_must_be_a_positive_integer(capsys, command, steps):
    err = _usage_error(capsys, [command, "--steps", steps])
    assert "argument --steps: must be a positive integer" in err
    assert "Traceback" not in err


def test_positive_int_accepts_whole_numbers():
    assert arguments.positive_int("7") == 7
    assert arguments.positive_int(" 12 ") == 12


def test_first_sentence_is_whole_and_plain():
    doc = """AdaMax (Kingma & Ba, 2015, sec. 7): Adam with
        the infinity norm, e.g. for :func:`adam`'s ``b2`` near 1. More text.

        Details."""
    assert listing.first_sentence(doc) == (
        "AdaMax (Kingma & Ba, 2015, sec. 7): Adam with the infinity norm, e.g. for "
        "adam's b2 near 1.")
    assert listing.first_sentence("No period at all\n\nNext.") == "No period at all"
    assert listing.first_sentence(r"Rule :math:`\eta\,\lambda p`.") == "Rule η λ p."
    assert listing.first_sentence(r"Step :math:`\sqrt{\hat v} + \|g\|`, so:") == (
        "Step √(v) + ‖g‖, so.")  # the colon leads into a formula, left out


def test_list_prints_whole_first_sentences_and_readable_defaults(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    entries = {}  # name -> (signature, summary), lines joined back
    for line in out.splitlines():
        if not line.startswith(" "):
            name = line.split("(")[0]
            entries[name] = [line, ""]
        elif line.startswith("    ") and entries[name][0].endswith(")"):
            entries[name][1] = (entries[name][1] + " " + line.strip()).strip()
        else:
            entries[name][0] += " " + line.strip()
    assert list(entries) == list(jaxgd.OPTIMIZERS)
    unfinished = []
    for name, (signature, summary) in entries.items():
        doc = jaxgd.OPTIMIZERS[name].__doc__
        assert summary == listing.first_sentence(doc), name
        assert "<" not in signature and "``" not in summary, (name, signature, summary)
        if not summary.endswith((".", "!", "?")):
            unfinished.append(name)
    assert unfinished == [], "first paragraph of the docstring is not a whole sentence"
    assert entries["adam"][0].startswith("adam(learning_rate, b1=0.9, b2=0.999")
    assert "dtype_momentum=float32" in entries["adafactor"][0]
    assert "linesearch=scale_by_backtracking_linesearch(...)" in entries["lbfgs"][0]
    assert entries["nadamw"][1].endswith("(Dozat, 2016; Loshchilov & Hutter, 2019).")


def test_list_some_names_and_reject_unknown_ones(capsys):
    assert cli.main(["list", "sgd", "lbfgs"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sgd(") and "\nlbfgs(" in out and "adam(" not in out
    err = _usage_error(capsys, ["list", "sdg"])
    assert "unknown name 'sdg' (did you mean 'sgd'?)" in err and "lbfgs" in err


def test_unknown_variant_lists_the_names(capsys):
    err = _usage_error(capsys, ["demo", "--only", "adam", "adamm"])
    assert "argument --only: unknown name 'adamm' (did you mean 'adam'?)" in err
    assert "choose from: " + ", ".join(jaxgd.OPTIMIZERS) in " ".join(err.split())


def test_missing_output_directory_fails_before_any_work(capsys, tmp_path, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the demo ran")

    monkeypatch.setattr(demo, "run_demo", no_work)
    err = _usage_error(capsys, ["demo", "--plot", str(tmp_path / "missing" / "demo.png")])
    assert "argument --plot: directory" in err and "does not exist" in err
    err = _usage_error(capsys, ["demo", "--plot", str(tmp_path)])
    assert "argument --plot:" in err


def test_demo_cli_stops_newton_after_one_step_and_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "demo.png"
    argv = ["demo", "--only", "newton", "--problems", "quadratic", "--plot", str(path)]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [r for r in map(str.split, lines) if r[:1] in (["rosenbrock"], ["quadratic"])]
    assert [r[:2] for r in rows] == [["quadratic", "newton"]]
    assert rows[0][3:5] == ["1", "grad_tol"]  # steps, stop
    assert float(rows[0][5]) >= 0 and float(rows[0][6]) < 1e-4  # loss - min, |x - x*|
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_problem_lists_the_names(capsys):
    err = _usage_error(capsys, ["demo", "--problems", "rosenbrok"])
    assert "unknown name 'rosenbrok' (did you mean 'rosenbrock'?)" in err
    assert "rosenbrock, quadratic" in err


@pytest.mark.slow
def test_demo_reaches_the_known_optima_with_the_tuned_rates():
    rows = {(r.problem, r.variant): r for r in demo.run_demo(variants=["momentum", "adam"])}
    assert rows["rosenbrock", "adam"].distance < 1e-3
    assert rows["rosenbrock", "momentum"].distance < 1e-3
    assert rows["quadratic", "momentum"].distance < 1e-3
    for r in rows.values():
        assert r.rate_source == demo.TUNED
        assert np.all(np.isfinite(r.losses)) and r.losses[-1] < r.losses[0]
        assert r.final_loss >= 0 and np.all(r.losses >= 0)
        if r.stop_reason == "grad_tol":  # one more update than the rule needed
            assert len(r.losses) == r.steps + 1


def _float64_excess(problem_name, params):
    x = np.asarray(params, np.float64)
    if problem_name == "rosenbrock":
        return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    info = problems.quadratic(dim=20, mu=1.0, L=1000.0).info
    a, b = np.asarray(info["A"], np.float64), np.asarray(info["b"], np.float64)
    x_star = np.linalg.solve(a, b)
    return 0.5 * (x - x_star) @ a @ (x - x_star)  # = f(x) - f(x*), never negative


def test_demo_loss_minus_min_is_the_float64_gap_never_negative():
    # at params within float32 rounding of the optimum, where a float32 loss minus the
    # float64 minimum is noise of either sign
    quadratic = problems.quadratic(dim=20, mu=1.0, L=1000.0)
    for scale in (1 + 1e-7, 1 - 1e-7, 1 + 1e-4):
        near = np.asarray(quadratic.optimum, np.float32) * np.float32(scale)
        gap = demo.excess_loss(quadratic, jax.numpy.asarray(near))
        assert gap == pytest.approx(_float64_excess("quadratic", near), rel=1e-6, abs=1e-12)
    near = np.array([1.001, 0.999], np.float32)
    gap = demo.excess_loss(problems.rosenbrock(), jax.numpy.asarray(near))
    assert gap == pytest.approx(_float64_excess("rosenbrock", near), rel=1e-12)


def test_sweep_picks_the_rate_nearest_the_optimum(monkeypatch):
    # f(x) = x^2 - b x from 0: gradient descent gives x_k - x* = (1 - 2 lr)^k (0 - x*),
    # so lr = 0.5 lands on x* in one step and lr = 0.1 or 0.9 stay 0.8^k |x*| away.
    monkeypatch.setattr(demo, "RATE_GRID", np.array([0.1, 0.3, 0.5, 0.9, 1.2]))
    problem = problems.quadratic(dim=1, mu=2.0, L=2.0)
    rate = demo.sweep_learning_rate("sgd", demo.DemoProblem(problem, 20, 1e-6))
    assert rate == 0.5


def test_rates_come_from_the_table_the_optimizer_or_a_sweep(monkeypatch):
    monkeypatch.setattr(demo, "sweep_learning_rate", lambda variant, dp: 0.25)
    monkeypatch.setitem(demo.LEARNING_RATES, "rosenbrock", {"sgd": 0.0018})
    dp = demo.demo_problems(names=["rosenbrock"])["rosenbrock"]
    assert demo.learning_rate("sgd", "rosenbrock", dp) == (0.0018, demo.TUNED)
    assert demo.learning_rate("lbfgs", "rosenbrock", dp) == (None, demo.OWN_RULE)
    assert demo.learning_rate("adam", "rosenbrock", dp) == (0.25, demo.SWEPT)
    row = demo.DemoRow("rosenbrock", "adam", 0.25, demo.SWEPT, 3, "max_steps", 0.0, 0.0,
                       0.001, np.zeros(3))
    table = demo.format_table([row])
    assert "2.5e-01*" in table and "picked now by a sweep" in table


@pytest.mark.parametrize("problem_name", ["rosenbrock", "quadratic"])
def test_demo_can_build_every_optimizer_of_the_catalog(problem_name):
    problem = demo.demo_problems()[problem_name].problem
    for variant, factory in jaxgd.OPTIMIZERS.items():
        tuned = demo.LEARNING_RATES[problem_name]
        rate = tuned.get(variant, 1e-3 if demo._rate_argument(factory)[1] is not None else None)
        optimizer = demo.build(variant, rate, problem)
        assert callable(optimizer.init) and callable(optimizer.update), variant


def test_matrix_optimizers_get_their_params_as_a_matrix_with_the_same_loss():
    problem = demo.demo_problems(names=["quadratic"])["quadratic"].problem
    shaped = demo.shaped_for("muon", "quadratic", problem)
    assert shaped.init_params.shape == (4, 5) and shaped.optimum.shape == (4, 5)
    x = np.linspace(-1.0, 1.0, 20, dtype=np.float32)
    assert float(shaped.loss_fn(x.reshape(4, 5))) == float(problem.loss_fn(x))
    assert demo.shaped_for("adam", "quadratic", problem) is problem
