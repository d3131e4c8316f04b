"""Vectorized sweeps: many trials of :func:`jaxgd.fit` in one compiled program."""

from jaxgd.sweep.lr_find import LRFindError as LRFindError
from jaxgd.sweep.lr_find import LRFindResult as LRFindResult
from jaxgd.sweep.lr_find import lr_find as lr_find
from jaxgd.sweep.paths import PathsResult as PathsResult
from jaxgd.sweep.paths import Trajectory as Trajectory
from jaxgd.sweep.paths import optimizer_paths as optimizer_paths
from jaxgd.sweep.result import SweepResult as SweepResult
from jaxgd.sweep.run import sweep as sweep
from jaxgd.sweep.run import trial_keys as trial_keys
from jaxgd.sweep.trials import Trials as Trials
