"""Robust ratios of interleaved timings on a shared machine (used by the suites that
report jaxgd / optax ratios: ``update_step``, ``many_leaf``, ``scaling``).

Two estimators of a ratio ``a / b`` from :func:`benchmarks.timing.time_interleaved`:

* the median of the per-round ratios (:func:`benchmarks.timing.paired_ratio`), which
  cancels drift slower than one round;
* the ratio of the low (10th) percentiles: a round preempted by another process only gets
  slower, so the low quantile estimates the uncontended time.

A target counts as met when both estimators meet it, missed when both miss it, and is
reported as unclear otherwise (the same rule as ``benchmarks/fit_loop.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from benchmarks import timing

LOW_PERCENTILE = 10


def low(t: timing.Timing) -> float:
    """The 10th percentile of the per-round times (seconds)."""
    return float(np.percentile(t.samples, LOW_PERCENTILE))


@dataclass(frozen=True)
class Ratio:
    """``a / b`` by both estimators."""

    paired: timing.Timing  # per-round ratios
    low: float  # ratio of the low percentiles

    @classmethod
    def of(cls, timings: Mapping[str, timing.Timing], a: str, b: str) -> Ratio:
        return cls(timing.paired_ratio(timings, a, b), low(timings[a]) / low(timings[b]))

    @property
    def median(self) -> float:
        return self.paired.median

    def scaled(self, factor: float) -> Ratio:
        return Ratio(timing.Timing(self.paired.samples * factor), self.low * factor)

    def text(self, digits: int = 3, iqr: bool = True) -> str:
        """``median [IQR] / low-percentile ratio``."""
        p = self.paired
        spread = f" [{p.q1:.{digits}f}-{p.q3:.{digits}f}]" if iqr else ""
        return f"{p.median:.{digits}f}{spread} / {self.low:.{digits}f}"

    def judge(self, ok: Callable[[float], bool]) -> str:
        return judge(self.median, self.low, ok)

    def worst(self, larger_is_worse: bool = True) -> float:
        return max(self.median, self.low) if larger_is_worse else min(self.median, self.low)


def judge(paired: float, low_quantile: float, ok: Callable[[float], bool]) -> str:
    """``met`` when both estimators meet the target, ``NOT met`` when both miss it."""
    a, b = ok(paired), ok(low_quantile)
    if a and b:
        return "met"
    if not (a or b):
        return "NOT met"
    return "unclear (the estimators disagree: contention; re-run)"


@dataclass(frozen=True)
class Target:
    """One line of the summary: what the issue asks, what was measured, the verdict."""

    name: str
    target: str
    measured: str
    verdict: str
    note: str = ""

    def line(self) -> str:
        note = f" {self.note}" if self.note else ""
        return f"{self.name}: {self.measured} ({self.verdict}, target {self.target}).{note}"
