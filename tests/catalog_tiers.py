"""The tiers of the checks that run on every catalog optimizer: a representative few in
the default run (which must stay under 4 minutes on 2 CPU cores), all of them with
``-m slow``. A module of its own, not ``conftest``, so that ``tests/sharded`` (which has
its own conftest) imports the same table."""

import pytest

#: One catalog optimizer of each family and kind of state, for the checks that run on
#: every optimizer: the default run keeps these, the rest of the catalog runs with
#: ``-m slow``. Plain and momentum SGD, a diagonal accumulator, Adam and a variant with
#: Nesterov momentum and decoupled weight decay, a sign rule, a layerwise trust ratio, a
#: factored second moment, a PRNG key in the state, the value / value_fn readers (a
#: step-size rule, a line search, a Hessian), a schedule-free, a parameter-free and a
#: matrix (Newton-Schulz) rule.
REPRESENTATIVE = frozenset({
    "sgd", "nesterov", "adagrad", "adam", "nadamw", "lion", "lamb", "adafactor",
    "noisy_sgd", "polyak_sgd", "lbfgs", "newton", "schedule_free_adamw", "prodigy", "muon",
})


def catalog_params(names, default=REPRESENTATIVE):
    """``names`` as parameters of a test (in the order given), those not in ``default``
    marked ``slow``: a check that runs on every optimizer costs the default run only a
    representative few, and ``-m slow`` runs it on all of them."""
    return [pytest.param(name, id=str(name),
                         marks=() if name in default else pytest.mark.slow)
            for name in names]
