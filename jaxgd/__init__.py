"""jaxgd: gradient-descent optimizers for JAX.

Every optimizer is a pure ``init`` / ``update`` pair, structurally the same as optax's,
assembled from small building blocks; hyperparameters live in the optimizer state so
that they can be swept with ``jax.vmap`` and changed without recompiling.
"""

import lazy_loader

# The public names are those of ``__init__.pyi``, imported when first used, so that
# ``import jaxgd`` (and ``jaxgd --help``) does not import jax until a name needs it.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)

__version__ = "0.1.0"
