"""Plots (matplotlib, the optional ``plot`` extra: ``pip install jaxgd[plot]``).

Each function takes a result (of :func:`jaxgd.sweep`, the demo, ...) and draws it; the
results themselves never import plotting.
"""

from jaxgd.plot.lr_curve import plot_lr_find as plot_lr_find
from jaxgd.plot.sweeps import loss_curves as loss_curves
from jaxgd.plot.sweeps import plot_demo as plot_demo
from jaxgd.plot.sweeps import plot_sweep as plot_sweep
from jaxgd.plot.trajectories import paths as paths
