"""Shared test helpers: random nested pytrees, side-by-side runs against optax, and a
hand-written training loop to check fit against."""

import os

# The tests compile thousands of small programs, so they compile them the cheap way:
# XLA's backend (LLVM) optimisation is off, and XLA:CPU emits fused kernels with its
# elemental emitter instead of the MLIR fusion emitters. Together these halve the
# compile time and change no operation (every check compares numbers within float
# tolerances). Set before any backend starts; children that copy os.environ inherit it.
os.environ["XLA_FLAGS"] = " ".join([
    os.environ.get("XLA_FLAGS", ""),
    "--xla_backend_optimization_level=0",
    "--xla_cpu_use_fusion_emitters=false",
]).strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from jaxgd import apply_updates, global_norm  # noqa: E402

# The 4-device tests run in a child process of their own (tests/test_sharding.py).
collect_ignore = ["sharded"] if jax.device_count() < 4 else []

#: The longest tests of the default run (10 to 35 s each: child processes, long runs
#: side by side with optax), started first, so that pytest-xdist's two workers do not
#: end the run waiting on one of them.
LONGEST = (
    "test_sharding.py::test_the_4_device_tests_pass",
    "test_multihost.py::test_two_processes_give_the_one_device_results",
    "test_more_aliases.py::test_matches_optax_over_100_steps",
    "test_readme.py::test_the_readme_examples_run",
)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: not item.nodeid.endswith(LONGEST))  # stable


def nested_params(key=0):
    """Dicts, tuples, lists, a scalar and a 3-D leaf: the shapes real models mix."""
    shapes = {
        "dense": {"w": (3, 4), "b": (4,)},
        "pair": ((), (2, 3, 2)),
        "stack": [(5,), (1, 1)],
    }
    leaves, treedef = jax.tree.flatten(shapes, is_leaf=lambda x: isinstance(x, tuple) and (
        len(x) == 0 or isinstance(x[0], int)))
    keys = jax.random.split(jax.random.PRNGKey(key), len(leaves))
    return treedef.unflatten([jax.random.normal(k, s) for k, s in zip(keys, leaves, strict=True)])


def random_like(tree, key):
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    noise = [jax.random.normal(k, jnp.shape(x)) for k, x in zip(keys, leaves, strict=True)]
    return treedef.unflatten(noise)


@jax.jit
def gradient_draws(tree, keys):
    """``random_like(tree, key)`` for each of ``keys``, stacked: compiled once per tree
    shape and number of keys, and shared by every test that draws the same."""
    return jax.vmap(random_like, in_axes=(None, 0))(tree, keys)


def updates_side_by_side(ours, theirs, params, num_steps=100, seed=1):
    """Feed both transformations the same gradients and params for ``num_steps`` steps.

    The params follow the reference's trajectory, so every step compares like with like.
    The gradients are drawn before the run, in a program of their own: drawing inside the
    scan would make every pair compile the generator again, most of a pair's cost.
    Returns the stacked updates of each, as two lists of leaves.
    """
    def step(carry, grads):
        p, s_ours, s_theirs = carry
        u_ours, s_ours = ours.update(grads, s_ours, p)
        u_theirs, s_theirs = theirs.update(grads, s_theirs, p)
        p = jax.tree.map(lambda x, u: x + u, p, u_theirs)
        return (p, s_ours, s_theirs), (u_ours, u_theirs)

    grads = gradient_draws(params, jax.random.split(jax.random.PRNGKey(seed), num_steps))
    run = jax.jit(lambda p, g: jax.lax.scan(step, (p, ours.init(p), theirs.init(p)), g)[1])
    u_ours, u_theirs = run(params, grads)
    return jax.tree.leaves(u_ours), jax.tree.leaves(u_theirs)


def hand_loop(loss_fn, params, opt, data, num_steps):
    """The reference: a plain Python loop of full-batch steps. Returns the params and opt
    state after each step (index t = after t updates) and the losses / grad norms."""
    call = (lambda p: loss_fn(p, data)) if data is not None else loss_fn

    @jax.jit
    def step(p, s):
        loss, g = jax.value_and_grad(call)(p)
        u, s = opt.update(g, s, p)
        return apply_updates(p, u), s, loss, global_norm(g)

    state = opt.init(params)
    trajectory, losses, norms = [(params, state)], [], []
    for _ in range(num_steps):
        params, state, loss, norm = step(params, state)
        trajectory.append((params, state))
        losses.append(loss)
        norms.append(norm)
    return trajectory, np.array(losses), np.array(norms)


@pytest.fixture
def params():
    return nested_params()
