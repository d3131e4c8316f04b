"""Every example runs to completion (each asserts its own result); the seed applications'
printed metrics are checked here too."""

import pathlib
import re
import subprocess
import sys

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).parent.parent / "examples").glob("*.py"))
#: The longest to run, or checked in the default run by a test of the same use
#: (flax_trainstate.py: tests/test_interop.py; linear_regression.py: tests/test_fit.py).
SLOW = {"mlp_digits.py", "lr_sweep.py", "multistart.py", "flax_trainstate.py",
        "linear_regression.py"}
#: Run (and their output checked) by tests of their own below.
CHECKED = {"recommender.py", "word_embeddings.py"}


def _run(path, *args):
    done = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True,
                          timeout=300, cwd=path.parent)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=pytest.mark.slow) if p.name in SLOW else p for p in EXAMPLES
     if p.name not in CHECKED],
    ids=lambda p: p.name,
)
def test_example_runs(path):
    _run(path)


def _example(name):
    return next(p for p in EXAMPLES if p.name == name)


@pytest.mark.slow
def test_recommender_reaches_noise_floor(tmp_path):
    out = tmp_path / "recommender.png"
    stdout = _run(_example("recommender.py"), "--out", str(out))
    heldout, floor = map(float, re.search(
        r"held-out RMSE ([\d.]+), noise floor ([\d.]+)", stdout).groups())
    assert 0.4 < floor < 0.6  # the problem's noise is 0.5
    assert heldout < 1.3 * floor, stdout
    # the adaptive methods beat plain SGD on the sparse embedding rows
    rows = dict(re.findall(r"^(sgd|adam|adagrad)\s+\S+\s+\S+\s+\S+\s+([\d.]+)", stdout,
                           flags=re.MULTILINE))
    assert set(rows) == {"sgd", "adam", "adagrad"}, stdout
    assert float(rows["adagrad"]) < float(rows["sgd"]), stdout
    assert out.stat().st_size > 0


@pytest.mark.slow
def test_word_embeddings_group_topics(tmp_path):
    out = tmp_path / "embeddings.png"
    stdout = _run(_example("word_embeddings.py"), "--out", str(out))
    queries = re.findall(r"^  (\w+) \((\w+)\): (.+)$", stdout, flags=re.MULTILINE)
    assert len(queries) == 5, stdout
    for word, topic, shown in queries:
        topics = re.findall(r"\w+ \(([\w-]+)\)", shown)
        assert len(topics) == 5 and set(topics) == {topic}, (word, shown)
    purity = {name: float(v) for name, v in re.findall(
        r"^(sgd|adam|adagrad)\s+\S+\s+\S+\s+([\d.]+)$", stdout, flags=re.MULTILINE)}
    assert len(purity) == 3 and max(purity.values()) >= 0.9, stdout
    assert out.stat().st_size > 0
