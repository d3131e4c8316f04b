"""Schedules in jaxgd.schedules against optax's at sampled steps, under jit/vmap, and errors."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgd import schedules

RTOL, ATOL = 1e-6, 1e-7

# Covers warmups, decays and tails below 2000, every step below 200 (short warmups and
# staircases), a negative count, a count past every horizon, and a few random ints.
STEPS = jnp.concatenate(
    [
        jnp.arange(0, 2000, 10),
        jnp.arange(1, 200, 2),
        jnp.array([-5, 249, 251, 999, 1001, 2500]),
        jnp.asarray(np.random.default_rng(0).integers(0, 2000, size=8)),
    ]
).astype(jnp.int32)
# XLA may compute `x / c` as `x * (1 / c)` (always under jit, and for arrays on CPU), which
# moves values by a few ulps where a formula cancels (e.g. `1 + cos(pi * t / T)` near t = T
# or `(1 - t / T) ** 0.5`), so results that cross that path get this much slack.
XLA_RTOL, XLA_ATOL = 1e-5, 1e-6

V = object()  # Stands for the argument swept by `jax.vmap` in `test_jit_and_vmap`.


class Spec(NamedTuple):
    """A schedule by name and kwargs, buildable from either library."""

    name: str
    kwargs: dict[str, Any]

    def build(self, module: Any, v: Any = None) -> Any:
        return getattr(module, self.name)(**_resolve(self.kwargs, module, v))


def _resolve(obj: Any, module: Any, v: Any) -> Any:
    if obj is V:
        return v
    if isinstance(obj, Spec):
        return obj.build(module, v)
    if isinstance(obj, dict):
        return {key: _resolve(value, module, v) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_resolve(value, module, v) for value in obj]
    return obj


def _on_steps(schedule: Any, steps: jax.Array) -> np.ndarray:
    return np.broadcast_to(np.asarray(schedule(steps), dtype=np.float32), steps.shape)


def _optax_on_steps(schedule: Any, steps: jax.Array) -> np.ndarray:
    # Some optax schedules (piecewise_interpolate, onecycle) only take a scalar count.
    return _on_steps(jax.vmap(schedule), steps)


def S(name: str, **kwargs: Any) -> Spec:
    return Spec(name, kwargs)


CYCLE_A = {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 50, "decay_steps": 500}
CYCLE_B = {"init_value": 0.1, "peak_value": 0.5, "warmup_steps": 0, "decay_steps": 700}
CYCLE_C = {"init_value": 0.2, "peak_value": 0.3, "warmup_steps": 25, "decay_steps": 250}

CASES = [
    S("constant_schedule", value=0.3),
    S("constant_schedule", value=-2.5),
    S("polynomial_schedule", init_value=1.0, end_value=0.01, power=2, transition_steps=1000),
    S(
        "polynomial_schedule",
        init_value=0.5,
        end_value=2.0,
        power=0.5,
        transition_steps=333,
        transition_begin=250,
    ),
    S("polynomial_schedule", init_value=0.7, end_value=0.0, power=3, transition_steps=0),
    S("linear_schedule", init_value=1.0, end_value=0.01, transition_steps=1000),
    S("linear_schedule", init_value=0.0, end_value=1e-3, transition_steps=150, transition_begin=75),
    S("exponential_decay", init_value=1.0, transition_steps=100, decay_rate=0.9),
    S(
        "exponential_decay",
        init_value=0.5,
        transition_steps=250,
        decay_rate=0.5,
        transition_begin=100,
        staircase=True,
        end_value=0.05,
    ),
    S("exponential_decay", init_value=1e-3, transition_steps=200, decay_rate=1.5, end_value=5e-3),
    S("exponential_decay", init_value=0.4, transition_steps=100, decay_rate=0.0, end_value=0.1),
    S("cosine_decay_schedule", init_value=1.0, decay_steps=1000),
    S("cosine_decay_schedule", init_value=0.1, decay_steps=1500, alpha=0.1, exponent=2.0),
    S("cosine_decay_schedule", init_value=2.0, decay_steps=7, alpha=0.5),
    S(
        "piecewise_constant_schedule",
        init_value=1.0,
        boundaries_and_scales={500: 0.5, 100: 0.1, 1500: 2.0},
    ),
    S("piecewise_constant_schedule", init_value=0.3, boundaries_and_scales={0: 0.5, 10: 0.0}),
    S("piecewise_constant_schedule", init_value=0.3),
    S(
        "join_schedules",
        schedules=[
            S("constant_schedule", value=1.0),
            S("linear_schedule", init_value=1.0, end_value=0.0, transition_steps=500),
            S("cosine_decay_schedule", init_value=0.5, decay_steps=300),
        ],
        boundaries=[100, 700],
    ),
    S(
        "join_schedules",
        schedules=[S("exponential_decay", init_value=1.0, transition_steps=50, decay_rate=0.8)],
        boundaries=[],
    ),
    S("warmup_constant_schedule", init_value=0.0, peak_value=1.0, warmup_steps=100),
    S("warmup_constant_schedule", init_value=0.5, peak_value=0.1, warmup_steps=0),
    S(
        "warmup_cosine_decay_schedule",
        init_value=0.0,
        peak_value=1.0,
        warmup_steps=100,
        decay_steps=1000,
    ),
    S(
        "warmup_cosine_decay_schedule",
        init_value=0.1,
        peak_value=0.5,
        warmup_steps=0,
        decay_steps=1500,
        end_value=0.01,
        exponent=2.0,
    ),
    S(
        "warmup_cosine_decay_schedule",
        init_value=0.2,
        peak_value=0.0,
        warmup_steps=10,
        decay_steps=100,
        end_value=0.1,
    ),
    S(
        "warmup_exponential_decay_schedule",
        init_value=0.0,
        peak_value=1.0,
        warmup_steps=100,
        transition_steps=200,
        decay_rate=0.5,
    ),
    S(
        "warmup_exponential_decay_schedule",
        init_value=0.1,
        peak_value=1.0,
        warmup_steps=50,
        transition_steps=100,
        decay_rate=0.9,
        transition_begin=100,
        staircase=True,
        end_value=0.2,
    ),
    S("sgdr_schedule", cosine_kwargs=[CYCLE_A, CYCLE_B]),
    S("sgdr_schedule", cosine_kwargs=[CYCLE_C, CYCLE_A, CYCLE_C]),
    S(
        "piecewise_interpolate_schedule",
        interpolate_type="linear",
        init_value=1.0,
        boundaries_and_scales={100: 0.5, 400: 0.1, 1200: 2.0},
    ),
    S(
        "piecewise_interpolate_schedule",
        interpolate_type="cosine",
        init_value=0.5,
        boundaries_and_scales={0: 2.0, 300: 0.01, 301: 3.0},
    ),
    S("piecewise_interpolate_schedule", interpolate_type="linear", init_value=1.0),
    S("linear_onecycle_schedule", transition_steps=1000, peak_value=1.0),
    S(
        "linear_onecycle_schedule",
        transition_steps=1500,
        peak_value=0.1,
        pct_start=0.25,
        pct_final=0.9,
        div_factor=10.0,
        final_div_factor=100.0,
    ),
    S("cosine_onecycle_schedule", transition_steps=1000, peak_value=1.0),
    S(
        "cosine_onecycle_schedule",
        transition_steps=1800,
        peak_value=0.3,
        pct_start=0.1,
        div_factor=5.0,
        final_div_factor=50.0,
    ),
]


def _case_id(spec: Spec) -> str:
    return spec.name


def test_every_public_schedule_is_covered():
    public = {name for name in dir(schedules) if not name.startswith("_")} - {
        "decay",
        "join",
        "interpolate",
    }
    assert public <= {spec.name for spec in CASES}
    for name in public:
        assert sum(spec.name == name for spec in CASES) >= 2, name


@pytest.mark.parametrize("spec", CASES, ids=_case_id)
def test_matches_optax(spec: Spec):
    ours, theirs = spec.build(schedules), spec.build(optax.schedules)
    np.testing.assert_allclose(
        _on_steps(ours, STEPS), _optax_on_steps(theirs, STEPS), rtol=RTOL, atol=ATOL
    )
    for step in (0, 137, 1999):  # plain Python ints as counts
        np.testing.assert_allclose(
            np.asarray(ours(step)), np.asarray(theirs(step)), rtol=RTOL, atol=ATOL
        )


VMAP_CASES = [
    (S("constant_schedule", value=V), [0.0, 0.3, -1.0]),
    (
        S("polynomial_schedule", init_value=1.0, end_value=0.1, power=V, transition_steps=500),
        [1.0, 0.5, 3.0],
    ),
    (
        S(
            "linear_schedule",
            init_value=1.0,
            end_value=V,
            transition_steps=500,
            transition_begin=100,
        ),
        [0.0, 0.5, 2.0],
    ),
    (
        S("exponential_decay", init_value=1.0, transition_steps=100, decay_rate=V, end_value=0.3),
        [0.0, 0.5, 1.2],
    ),
    (
        S("exponential_decay", init_value=V, transition_steps=100, decay_rate=0.7, staircase=True),
        [0.1, 1.0, 3.0],
    ),
    (
        S("cosine_decay_schedule", init_value=1.0, decay_steps=1000, alpha=V, exponent=1.5),
        [0.0, 0.1, 0.9],
    ),
    (S("cosine_decay_schedule", init_value=V, decay_steps=100), [0.1, 1.0, 3.0]),
    (
        S("piecewise_constant_schedule", init_value=1.0, boundaries_and_scales={100: V, 500: 0.5}),
        [0.0, 0.1, 3.0],
    ),
    (
        S(
            "join_schedules",
            schedules=[
                S("constant_schedule", value=V),
                S("linear_schedule", init_value=V, end_value=0.0, transition_steps=500),
            ],
            boundaries=[300],
        ),
        [0.1, 1.0, 2.0],
    ),
    (
        S("warmup_constant_schedule", init_value=0.0, peak_value=V, warmup_steps=100),
        [0.0, 0.5, 1.0],
    ),
    (
        S(
            "warmup_cosine_decay_schedule",
            init_value=0.1,
            peak_value=V,
            warmup_steps=100,
            decay_steps=1000,
            end_value=0.05,
        ),
        [0.0, 0.5, 1.0],
    ),
    (
        S(
            "warmup_exponential_decay_schedule",
            init_value=0.0,
            peak_value=1.0,
            warmup_steps=100,
            transition_steps=100,
            decay_rate=V,
            end_value=0.1,
        ),
        [0.0, 0.5, 1.5],
    ),
    (S("sgdr_schedule", cosine_kwargs=[CYCLE_A, {**CYCLE_B, "end_value": V}]), [0.0, 0.05, 0.2]),
    (
        S(
            "piecewise_interpolate_schedule",
            interpolate_type="cosine",
            init_value=V,
            boundaries_and_scales={100: 0.5, 900: 0.1},
        ),
        [0.1, 1.0, 2.0],
    ),
    (S("linear_onecycle_schedule", transition_steps=1000, peak_value=V), [0.1, 1.0, 2.0]),
    (S("cosine_onecycle_schedule", transition_steps=1000, peak_value=V), [0.1, 1.0, 2.0]),
]


def test_every_public_schedule_is_vmapped():
    assert {spec.name for spec, _ in VMAP_CASES} == {spec.name for spec in CASES}


@pytest.mark.parametrize(("spec", "values"), VMAP_CASES, ids=[s.name for s, _ in VMAP_CASES])
def test_jit_and_vmap(spec: Spec, values: list[float]):
    # Reference: optax built separately with each concrete value, run eagerly (jitted optax
    # can be NaN at the end of a fractional-power transition; see test_exact_at_transitions).
    expected = np.stack([_optax_on_steps(spec.build(optax.schedules, v), STEPS) for v in values])

    ours = jax.jit(spec.build(schedules, values[1]))
    np.testing.assert_allclose(_on_steps(ours, STEPS), expected[1], rtol=XLA_RTOL, atol=XLA_ATOL)
    np.testing.assert_allclose(ours(STEPS[7]), expected[1][7], rtol=XLA_RTOL, atol=XLA_ATOL)

    def sweep(v: jax.Array) -> jax.Array:
        return jnp.broadcast_to(spec.build(schedules, v)(STEPS), STEPS.shape)

    sweep_values = jnp.asarray(values, jnp.float32)
    np.testing.assert_allclose(jax.vmap(sweep)(sweep_values), expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        jax.jit(jax.vmap(sweep))(sweep_values), expected, rtol=XLA_RTOL, atol=XLA_ATOL
    )


def _around(period: int, periods: int = 4) -> list[int]:
    return [period * k + d for k in range(1, periods + 1) for d in (-1, 0, 1)]


EXACT_CASES = [
    (
        S("exponential_decay", init_value=1.0, transition_steps=41, decay_rate=0.7, staircase=True),
        _around(41),
    ),
    (
        S(
            "exponential_decay",
            init_value=1.0,
            transition_steps=61,
            decay_rate=0.7,
            staircase=True,
            transition_begin=5,
        ),
        [c + 5 for c in _around(61)],
    ),
    (
        S(
            "warmup_exponential_decay_schedule",
            init_value=0.0,
            peak_value=1.0,
            warmup_steps=10,
            transition_steps=47,
            decay_rate=0.5,
            staircase=True,
        ),
        [c + 10 for c in _around(47)],
    ),
    (
        S("polynomial_schedule", init_value=1.0, end_value=0.1, power=0.5, transition_steps=500),
        list(range(495, 506)),
    ),
    (
        S(
            "warmup_cosine_decay_schedule",
            init_value=0.0,
            peak_value=1.0,
            warmup_steps=500,
            decay_steps=1000,
            exponent=0.5,
        ),
        list(range(495, 506)) + list(range(995, 1006)),
    ),
]


@pytest.mark.parametrize(("spec", "counts"), EXACT_CASES, ids=[s.name for s, _ in EXACT_CASES])
def test_exact_at_transitions(spec: Spec, counts: list[int]):
    """Arrays of counts, eager or jitted, agree with optax fed one Python int at a time.

    XLA divides arrays by a scalar via its reciprocal, so `floor(t / T)` can come out one
    short at multiples of T and `1 - t / T` slightly negative at t = T. optax then decays a
    step late or returns NaN for array counts; its Python-int path does neither.
    """
    theirs = spec.build(optax.schedules)
    expected = np.array([float(theirs(count)) for count in counts], dtype=np.float32)
    ours = spec.build(schedules)
    counts_array = jnp.asarray(counts, jnp.int32)
    for run in (ours, jax.jit(ours)):
        np.testing.assert_allclose(
            _on_steps(run, counts_array), expected, rtol=XLA_RTOL, atol=XLA_ATOL
        )


CYCLE = {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 10, "decay_steps": 100}

ERROR_CASES = [
    (
        S(
            "polynomial_schedule",
            init_value=1.0,
            end_value=0.0,
            power=1,
            transition_steps=10,
            transition_begin=-3,
        ),
        "transition_begin=-3",
    ),
    (
        S(
            "linear_schedule",
            init_value=1.0,
            end_value=0.0,
            transition_steps=10,
            transition_begin=-1,
        ),
        "transition_begin=-1",
    ),
    (
        S(
            "exponential_decay",
            init_value=1.0,
            transition_steps=10,
            decay_rate=0.5,
            transition_begin=-2,
        ),
        "transition_begin=-2",
    ),
    (S("cosine_decay_schedule", init_value=1.0, decay_steps=0), "decay_steps=0"),
    (S("cosine_decay_schedule", init_value=1.0, decay_steps=-10), "decay_steps=-10"),
    (
        S("piecewise_constant_schedule", init_value=1.0, boundaries_and_scales={10: -0.5}),
        "non-negative scales.*-0.5",
    ),
    (S("join_schedules", schedules=[], boundaries=[]), "at least one schedule"),
    (
        S("join_schedules", schedules=[S("constant_schedule", value=1.0)] * 2, boundaries=[10, 20]),
        "len\\(boundaries\\)=2 and len\\(schedules\\)=2",
    ),
    (
        S("join_schedules", schedules=[S("constant_schedule", value=1.0)] * 3, boundaries=[20, 10]),
        "strictly increasing.*\\[20, 10\\]",
    ),
    (
        S("join_schedules", schedules=[S("constant_schedule", value=1.0)] * 3, boundaries=[20, 20]),
        "strictly increasing.*\\[20, 20\\]",
    ),
    (
        S("warmup_constant_schedule", init_value=0.0, peak_value=1.0, warmup_steps=-1),
        "warmup_steps=-1",
    ),
    (
        S(
            "warmup_cosine_decay_schedule",
            init_value=0.0,
            peak_value=1.0,
            warmup_steps=-1,
            decay_steps=100,
        ),
        "warmup_steps=-1",
    ),
    (
        S(
            "warmup_cosine_decay_schedule",
            init_value=0.0,
            peak_value=1.0,
            warmup_steps=100,
            decay_steps=100,
        ),
        "decay_steps=100 and warmup_steps=100",
    ),
    (
        S(
            "warmup_exponential_decay_schedule",
            init_value=0.0,
            peak_value=1.0,
            warmup_steps=-4,
            transition_steps=10,
            decay_rate=0.5,
        ),
        "warmup_steps=-4",
    ),
    (S("sgdr_schedule", cosine_kwargs=[]), "at least one cycle"),
    (
        S("sgdr_schedule", cosine_kwargs=[CYCLE, {"init_value": 0.0, "peak_value": 1.0}]),
        "cosine_kwargs\\[1\\].*decay_steps",
    ),
    (
        S("sgdr_schedule", cosine_kwargs=[{**CYCLE, "decay_steps": 10}]),
        "decay_steps=10 and warmup_steps=10",
    ),
    (
        S("piecewise_interpolate_schedule", interpolate_type="quadratic", init_value=1.0),
        "interpolate_type='quadratic'",
    ),
    (
        S(
            "piecewise_interpolate_schedule",
            interpolate_type="linear",
            init_value=1.0,
            boundaries_and_scales={5: 1.0, 10: float("nan")},
        ),
        "non-negative scales.*nan",
    ),
    (S("linear_onecycle_schedule", transition_steps=0, peak_value=1.0), "transition_steps=0"),
    (
        S(
            "linear_onecycle_schedule",
            transition_steps=100,
            peak_value=1.0,
            pct_start=0.9,
            pct_final=0.5,
        ),
        "pct_start=0.9 and pct_final=0.5",
    ),
    (S("cosine_onecycle_schedule", transition_steps=-5, peak_value=1.0), "transition_steps=-5"),
    (
        S("cosine_onecycle_schedule", transition_steps=100, peak_value=1.0, pct_start=1.5),
        "pct_start=1.5",
    ),
]


@pytest.mark.parametrize(("spec", "match"), ERROR_CASES, ids=[s.name for s, _ in ERROR_CASES])
def test_bad_input_raises_at_build(spec: Spec, match: str):
    with pytest.raises(ValueError, match=match):
        spec.build(schedules)


NO_TRANSITION = [
    S("polynomial_schedule", init_value=0.7, end_value=0.0, power=2, transition_steps=-1),
    S("linear_schedule", init_value=0.7, end_value=0.0, transition_steps=-5),
    S("exponential_decay", init_value=0.7, transition_steps=0, decay_rate=0.5),
    S("exponential_decay", init_value=0.7, transition_steps=-3, decay_rate=0.5),
    S("warmup_exponential_decay_schedule", init_value=0.0, peak_value=0.7, warmup_steps=10,
      transition_steps=0, decay_rate=0.5),
]


@pytest.mark.parametrize("spec", NO_TRANSITION, ids=[s.name for s in NO_TRANSITION])
def test_a_transition_of_no_length_is_constant_like_optax_with_a_warning(spec: Spec):
    with pytest.warns(UserWarning, match=r"transition_steps=(0|-\d).*constant schedule"):
        ours = spec.build(schedules)
    theirs = spec.build(optax.schedules)
    np.testing.assert_allclose(
        _on_steps(ours, STEPS), _optax_on_steps(theirs, STEPS), rtol=RTOL, atol=ATOL
    )
