"""A recommender system: matrix factorization of a noisy low-rank ratings matrix, trained by
mini-batch gradient descent. Shows why per-coordinate step sizes matter when updates are
sparse: a batch of ratings touches only a few users' and items' embedding rows, so their
gradients are small and rare next to those of the global parameters that every rating
moves. Plain SGD has one learning rate for both, and whichever it suits, the other stalls
or diverges; AdaGrad and Adam scale each coordinate by its own gradient history.

One ``jaxgd.sweep`` trains SGD, Adam and AdaGrad at 8 learning rates each (24 trials, one
compiled program per optimizer), picks each optimizer's rate on a validation split, and
reports train / validation / held-out RMSE against the noise floor (the RMSE of the true
matrix). The winner is then retrained with ``jaxgd.fit`` on training + validation ratings.

Regularization: an L2 penalty in the loss, per rating, on the rows that rating touches
(Koren et al., 2009), rather than decoupled weight decay (``adamw`` /
``add_decayed_weights``). Decoupled decay shrinks every row at every step, also the rows
that the batch did not touch: a dense update that undoes the sparsity AdaGrad exploits,
and a different regularizer for each optimizer. The penalty in the loss is one objective
for all three, so the sweep compares optimizers, not regularizers.

Run: ``python examples/recommender.py [--out recommender.png]``.
"""

import argparse

import jax
import numpy as np

import jaxgd
from jaxgd import problems
from jaxgd.plot.figure import pyplot

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--out", default="recommender.png", help="where to write the plot")
parser.add_argument("--epochs", type=int, default=25, help="passes over the training set")
args = parser.parse_args()

L2 = 0.02
BATCH = 256
problem = problems.matrix_factorization(num_users=300, num_items=200, density=0.25, l2=L2)
rmse = problem.info["rmse"]
floor = problem.info["test_noise_rmse"]
num_val = len(problem.data[2]) // 10
val = jax.tree.map(lambda x: x[:num_val], problem.data)
train = jax.tree.map(lambda x: x[num_val:], problem.data)

optimizers = {"sgd": jaxgd.sgd, "adam": jaxgd.adam, "adagrad": jaxgd.adagrad}
rates = np.logspace(-3, 0.5, 8)
result = jaxgd.sweep(problem.loss_fn, problem.init_params, optimizers,
                     hyperparams={"learning_rate": rates}, data=train, val_data=val,
                     batch_size=BATCH, num_epochs=args.epochs)

table = result.table()
per_trial = jax.vmap(rmse, in_axes=(0, None))
val_rmse = np.asarray(per_trial(result.fit.params, val))
val_rmse = np.where(result.diverged | ~np.isfinite(val_rmse), np.inf, val_rmse)
print(f"{len(problem.data[2])} training ratings ({num_val} for validation), "
      f"{len(problem.test_data[2])} held out; noise floor (RMSE of the true matrix) "
      f"{floor:.4f}")
print(f"{'optimizer':<9} {'best lr':>8} {'train':>7} {'val':>7} {'held-out':>9} "
      f"{'/ floor':>8} {'diverged':>9}")
best_rows = {}
for name in optimizers:
    rows = np.flatnonzero(table["optimizer"] == name)
    i = rows[np.argmin(val_rmse[rows])]
    best_rows[name] = i
    params = jax.tree.map(lambda x, i=i: x[i], result.fit.params)
    test = float(rmse(params, problem.test_data))
    print(f"{name:<9} {table['learning_rate'][i]:>8.3g} "
          f"{float(rmse(params, train)):>7.4f} {val_rmse[i]:>7.4f} {test:>9.4f} "
          f"{test / floor:>8.2f} {int(result.diverged[rows].sum()):>6} / {len(rows)}")

winner = min(best_rows, key=lambda name: val_rmse[best_rows[name]])
i = best_rows[winner]
epochs = int(table["best_epoch"][i]) + 1
refit = jaxgd.fit(problem.loss_fn, problem.init_params,
                  optimizers[winner](float(table["learning_rate"][i])), problem.data,
                  batch_size=BATCH, num_epochs=epochs, key=0)
heldout = float(rmse(refit.params, problem.test_data))
print(f"refit {winner} (lr {table['learning_rate'][i]:.3g}, {epochs} epochs) on all "
      f"training ratings: train RMSE {float(rmse(refit.params, problem.data)):.4f}")
print(f"held-out RMSE {heldout:.4f}, noise floor {floor:.4f}, ratio {heldout / floor:.3f}")

plt = pyplot()
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
for name, i in best_rows.items():
    rows = np.flatnonzero(table["optimizer"] == name)
    (line,) = left.semilogx(rates, np.where(np.isinf(val_rmse[rows]), np.nan, val_rmse[rows]),
                            "o-", label=name)
    steps_per_epoch = len(train[2]) // BATCH
    batch_losses = np.asarray(result.fit.losses[i])
    epoch_loss = np.nanmean(batch_losses[: args.epochs * steps_per_epoch].reshape(
        args.epochs, steps_per_epoch), axis=1)
    epoch = np.arange(1, args.epochs + 1)
    right.plot(epoch, epoch_loss, color=line.get_color(), label=f"{name} train")
    right.plot(epoch, np.asarray(result.fit.val_losses[i]), "--", color=line.get_color(),
               label=f"{name} validation")
left.axhline(floor, color="k", lw=0.8, ls=":", label="noise floor")
left.set(xlabel="learning rate", ylabel="validation RMSE", ylim=(0.9 * floor, 2.5 * floor),
         title="RMSE against learning rate")
right.set(xlabel="epoch", ylabel="loss (MSE + L2)", yscale="log",
          title="each optimizer's best rate")
left.legend(loc="lower left", fontsize=8)
right.legend(fontsize=7)
fig.tight_layout()
fig.savefig(args.out, dpi=110)
print(f"wrote {args.out}")
assert heldout < 1.3 * floor, (heldout, floor)
