"""The matplotlib import that every plot shares."""

from __future__ import annotations


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend, or a clear error."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(
            "plotting needs matplotlib: pip install 'jaxgd[plot]' (or matplotlib)."
        ) from err
    return plt
