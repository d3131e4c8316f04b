"""Mistakes a new user makes get an error naming the argument at fault (not a raw JAX one),
and the corners of the API say what they do."""

from __future__ import annotations

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd.train import fit, progress, trace_count
from jaxgd.transforms.sign import scale_by_rprop

X = jnp.linspace(-1.0, 1.0, 16).reshape(8, 2)
Y = X @ jnp.array([1.0, -2.0])


def _mse(params, batch):
    x, y = batch
    return jnp.mean((x @ params - y) ** 2)


def _bowl(params):
    return jnp.sum(params**2)


# --- Hyperparameters of the wrong kind --------------------------------------------------


@pytest.mark.parametrize(
    "make", [jaxgd.adam, jaxgd.sgd, jaxgd.rmsprop, jaxgd.scale_by_learning_rate],
    ids=lambda f: f.__name__,
)
def test_a_string_learning_rate_is_a_type_error_naming_it(make):
    with pytest.raises(TypeError, match=r"learning_rate must be a number.*'0\.1'"):
        make("0.1")


def test_set_hyperparams_refuses_a_string_too():
    state = jaxgd.adam(1e-3).init(jnp.ones(2))
    with pytest.raises(TypeError, match="learning_rate must be a number"):
        jaxgd.set_hyperparams(state, learning_rate="3e-4")


def test_a_string_for_another_hyperparameter_names_it():
    with pytest.raises(TypeError, match=r"b1 must be a number, got the string '0\.9'"):
        jaxgd.adam(1e-3, b1="0.9")


@pytest.mark.parametrize("make", [jaxgd.rprop, scale_by_rprop], ids=lambda f: f.__name__)
def test_rprop_refuses_a_schedule_when_built(make):
    schedule = jaxgd.schedules.linear_schedule(0.1, 0.01, transition_steps=100)
    with pytest.raises(TypeError, match="initial step size.*cannot be a schedule"):
        make(learning_rate=schedule)


# --- The line search's keyword arguments ------------------------------------------------


def _line_search_step(**extra):
    opt = jaxgd.chain(jaxgd.sgd(1.0), jaxgd.scale_by_backtracking_linesearch())
    params = jnp.array([1.0, -2.0])
    return opt.update(2 * params, opt.init(params), params, **extra)


def test_line_search_rejects_a_misspelt_keyword_naming_it_and_the_valid_ones():
    with pytest.raises(TypeError, match=r"\['vlaue'\].*\['grad', 'value', 'value_fn'\]"):
        _line_search_step(value_fn=_bowl, vlaue=5.0)


def test_line_search_takes_the_keywords_of_its_loss():
    def loss(params, *, scale):
        return scale * jnp.sum(params**2)

    updates, _ = _line_search_step(value_fn=loss, scale=2.0)
    assert np.all(np.isfinite(np.asarray(updates)))
    with pytest.raises(TypeError, match=r"\['sacle'\].*'scale'"):
        _line_search_step(value_fn=loss, scale=2.0, sacle=2.0)


def test_line_search_passes_any_keyword_to_a_loss_with_kwargs():
    updates, _ = _line_search_step(value_fn=lambda p, **data: jnp.sum(p**2), batch=1)
    assert np.all(np.isfinite(np.asarray(updates)))


# --- fit and sweep arguments ----------------------------------------------------------


@pytest.mark.parametrize("key", ["abc", 1.5, jnp.zeros(3)], ids=["str", "float", "floats"])
def test_fit_key_that_is_not_a_key_is_named_before_compiling(key):
    before = trace_count()
    with pytest.raises(TypeError, match="key must be an int seed or one PRNG key"):
        fit(_mse, jnp.zeros(2), jaxgd.sgd(0.1), (X, Y), batch_size=4, max_steps=4, key=key)
    with pytest.raises(TypeError, match="key must be an int seed"):  # full batch: unused
        fit(_mse, jnp.zeros(2), jaxgd.sgd(0.1), (X, Y), max_steps=4, key=key)
    assert trace_count() == before


def test_fit_takes_typed_and_raw_keys_alike():
    def run(key):
        return fit(_mse, jnp.zeros(2), jaxgd.sgd(0.1), (X, Y), batch_size=4, max_steps=4,
                   key=key).params

    np.testing.assert_array_equal(run(jax.random.PRNGKey(3)), run(3))
    assert np.all(np.isfinite(np.asarray(run(jax.random.key(3)))))


def test_sweep_names_itself_and_its_keywords_for_an_unknown_one():
    with pytest.raises(TypeError) as info:
        jaxgd.sweep(_bowl, jnp.ones(2), jaxgd.sgd, hyperparams={"learning_rate": [0.1]},
                    max_step=5)
    message = str(info.value)
    assert message.startswith("sweep() got unexpected keyword argument(s) ['max_step']")
    assert "'max_steps'" in message and "'seeds'" in message
    assert "lower_fit" not in message


def test_sweep_result_repr_when_every_trial_diverged():
    res = jaxgd.sweep(_bowl, jnp.array([1.0, -2.0]), jaxgd.sgd,
                      hyperparams={"learning_rate": [5.0, 10.0]}, max_steps=200)
    assert res.diverged.all()
    assert "2 diverged; best: none, every trial diverged" in repr(res)
    with pytest.raises(ValueError, match="every trial diverged"):
        _ = res.best_index


# --- apply_if_finite after max_consecutive_errors ---------------------------------------


def test_apply_if_finite_lets_bad_steps_through_after_max_consecutive_errors():
    opt = jaxgd.apply_if_finite(jaxgd.adam(0.1), max_consecutive_errors=2)
    params = jnp.ones(2)
    state = opt.init(params)
    bad = jnp.array([jnp.nan, 1.0])
    for _ in range(2):  # skipped: zero updates, the inner state kept bit for bit
        updates, new_state = opt.update(bad, state, params)
        np.testing.assert_array_equal(updates, 0.0)
        jax.tree.map(np.testing.assert_array_equal, new_state.inner_state, state.inner_state)
        state = new_state
    updates, state = opt.update(bad, state, params)  # the third in a row goes through
    assert np.isnan(np.asarray(updates)[0])
    assert np.isnan(np.asarray(state.inner_state.inner_state[0].mu)[0])
    updates, state = opt.update(jnp.ones(2), state, params)  # a finite step resets the count
    assert int(state.notfinite_count) == 0 and int(state.total_notfinite) == 3


def test_readme_says_what_apply_if_finite_does_after_max_consecutive_errors():
    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    item = re.search(r"`apply_if_finite\(tx, max_consecutive_errors\)` \((.*?)\),\n`",
                     readme, re.S)
    assert item is not None
    text = " ".join(item.group(1).split())
    assert "nothing lost" not in text
    assert "after `max_consecutive_errors` skipped steps in a row" in text
    assert "go through to `tx`, NaN and all" in text


# --- The progress bar's clock -----------------------------------------------------------


class FakeTqdm:
    """Records how the bar is made and moved; ``made`` lists every bar."""

    made: list[FakeTqdm] = []

    def __init__(self, total=None, initial=0, **kwargs):
        self.total, self.initial, self.n, self.moves = total, initial, initial, []
        self.closed = False
        FakeTqdm.made.append(self)

    def update(self, n):
        self.n += n
        self.moves.append(n)

    def set_postfix(self, refresh=True, **kwargs):
        self.postfix = kwargs

    def close(self):
        self.closed = True


@pytest.fixture
def fake_tqdm(monkeypatch):
    FakeTqdm.made = []
    monkeypatch.setattr(progress, "require_tqdm", lambda: FakeTqdm)
    return FakeTqdm


def test_progress_bar_clock_starts_at_the_first_report_not_at_open(fake_tqdm):
    bar = progress.TqdmBar()
    bar.open(100)  # before compiling: no bar yet, so no clock running
    assert fake_tqdm.made == []
    bar(np.int32(10), np.float32(1.0))
    (made,) = fake_tqdm.made
    assert (made.total, made.initial, made.n) == (100, 10, 10)
    bar(np.int32(20), np.float32(0.5))
    assert made.moves == [0, 10] and made.postfix == {"loss": "0.5"}
    bar.close()
    assert made.closed


def test_fit_progress_bar_starts_from_the_first_reported_step(fake_tqdm):
    fit(_bowl, jnp.ones(2), jaxgd.sgd(0.01), max_steps=50, progress=True, progress_every=10)
    (made,) = fake_tqdm.made
    assert (made.total, made.initial, made.n) == (50, 10, 50) and made.closed


def test_an_update_given_another_optimizers_state_says_so():
    params = {"w": jnp.ones(3)}
    state = jaxgd.sgd(0.1, momentum=0.9).init(params)
    with pytest.raises(ValueError, match=r"not made by this optimizer's init: adam keeps"):
        jaxgd.adam(1e-3).update(params, state, params)
