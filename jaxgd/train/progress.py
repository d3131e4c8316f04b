"""Progress reports from inside the compiled training loop.

The loop calls ``jax.debug.callback(sink, step, loss)`` every ``progress_every`` steps
and at its last step. A *sink* is any callable ``sink(step, loss)`` (NumPy scalars: the
number of steps done and the loss of the latest one), optionally with ``open(total)`` and
``close()`` methods that :func:`jaxgd.fit` calls around an eager run. The sink is a static
argument of the compiled loop, so it must be the same object from call to call to reuse
the compiled program: :data:`TQDM_BAR` is the one used by ``progress=True``.

With ``progress=False`` no callback is staged at all, so the compiled program is the same
as without this feature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

ProgressSink = Callable[[Any, Any], None]


def require_tqdm() -> Any:
    """Import tqdm, or explain how to install it."""
    try:
        from tqdm.auto import tqdm
    except ImportError as e:
        raise ImportError(
            "progress=True needs tqdm, an optional dependency: pip install tqdm "
            "(or pip install 'jaxgd[progress]'), or pass progress=False."
        ) from e
    return tqdm


class TqdmBar:
    """A tqdm bar showing the step, the loss and (tqdm's own) steps per second.

    The bar, and so its clock, starts at the first report, from the step reached then:
    the time before it is spent compiling, and counting it would make the first rate
    and ETA far too pessimistic. Under ``jax.vmap`` the callback receives one value per
    lane: the bar shows the most advanced lane's step and the mean loss.
    """

    def __init__(self) -> None:
        self._bar: Any = None
        self._total: int | None = None

    def open(self, total: int) -> None:
        self.close()
        self._total = int(total)

    def __call__(self, step: Any, loss: Any) -> None:
        done, first = int(np.max(step)), self._bar is None
        if first:  # (without open when fit was traced by an outer jit: no total)
            self._bar = require_tqdm()(total=self._total, initial=done, desc="fit",
                                       unit="step")
        self._bar.update(max(done - self._bar.n, 0))
        self._bar.set_postfix(loss=f"{float(np.mean(loss)):.6g}", refresh=first)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar, self._total = None, None


TQDM_BAR = TqdmBar()


def resolve_sink(progress: bool | ProgressSink) -> ProgressSink | None:
    """``False`` -> no sink; ``True`` -> the tqdm bar (checked importable now, before
    compiling); a callable -> itself."""
    if progress is False or progress is None:
        return None
    if progress is True:
        require_tqdm()
        return TQDM_BAR
    if callable(progress):
        return progress
    raise TypeError(
        f"progress must be True, False or a callable sink(step, loss), got {progress!r}."
    )
