"""Vectorized sweeps: many trials of :func:`jaxgd.fit` in one compiled program."""

from jaxgd.sweep.result import SweepResult as SweepResult
from jaxgd.sweep.run import sweep as sweep
from jaxgd.sweep.run import trial_keys as trial_keys
from jaxgd.sweep.trials import Trials as Trials
