"""Word embeddings: skip-gram with negative sampling (Mikolov et al., 2013) on a small
built-in corpus, trained by mini-batch gradient descent. Like a recommender's, the
gradient of a batch is sparse: it touches only the rows of the words in it, and rare
words get few updates, which adaptive per-coordinate steps (AdaGrad, Adam) make up for.
The objective is non-convex (it only sees products of the two embedding tables), and
where it ends depends on the learning rate.

The corpus is generated here, offline: a few hundred short sentences, each about one of
five topics (animals, food, vehicles, weather, music), built from shared function words
and the topic's nouns, verbs, places and adjectives. Words of one topic share their
contexts, so a good embedding puts them close together, which the script checks: the
nearest neighbours (by cosine) of every topic word should be words of the same topic.

One ``jaxgd.sweep`` trains SGD, Adam and AdaGrad at 7 learning rates each; every
optimizer's best rate (lowest final loss) is scored by that neighbour purity, and the
overall best's neighbours of a few words are printed. The plot shows the loss curves
and a 2-D projection (PCA) of the embeddings, coloured by topic.

Run: ``python examples/word_embeddings.py [--out word_embeddings.png]``.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import jaxgd
from jaxgd.plot.figure import pyplot

TOPICS = {
    "animals": {"N": "dog cat horse cow sheep goat", "V": "runs sleeps grazes barks",
                "P": "farm barn field meadow", "A": "furry hungry wild"},
    "food": {"N": "bread cheese apple soup rice cake", "V": "cooks bakes tastes boils",
             "P": "kitchen oven plate market", "A": "sweet fresh salty"},
    "vehicles": {"N": "car bus train truck bike boat", "V": "drives stops rolls parks",
                 "P": "road station garage bridge", "A": "fast heavy electric"},
    "weather": {"N": "rain snow wind storm cloud fog", "V": "falls blows drifts clears",
                "P": "sky valley hills coast", "A": "cold grey wet"},
    "music": {"N": "piano guitar violin drum flute trumpet", "V": "plays sounds rings hums",
              "P": "concert hall studio stage", "A": "loud soft tuned"},
}
TEMPLATES = [
    "the {A} {N} {V} in the {P}",
    "a {N} and a {N} {V} near the {P}",
    "the {N} {V} with the {A} {N}",
    "every {A} {N} {V} by the {P}",
    "in the {P} the {N} {V}",
    "the {N} {V} and the {N} {V}",
]
QUERIES = ["dog", "bread", "train", "rain", "piano"]
NUM_SENTENCES, WINDOW, NEGATIVES, DIM, BATCH, NEIGHBOURS = 400, 2, 5, 16, 256, 5


def corpus(rng: np.random.Generator) -> list[list[str]]:
    """Sentences of one topic each, every slot filled independently from its topic."""
    names = list(TOPICS)
    sentences = []
    for _ in range(NUM_SENTENCES):
        words = {slot: s.split() for slot, s in TOPICS[names[rng.integers(len(names))]].items()}
        template = TEMPLATES[rng.integers(len(TEMPLATES))].split()
        sentences.append([rng.choice(words[t[1]]) if t.startswith("{") else t
                          for t in template])
    return sentences


def skipgram_data(sentences, vocab, rng):
    """``(center, context, negatives)``: every (word, neighbour within WINDOW) pair, with
    NEGATIVES words drawn from the unigram distribution to the power 3/4, as word2vec
    does. The negatives are drawn once, here: the loss is then a fixed function of the
    data, which fit's mini-batches and reshuffles need."""
    index = {w: i for i, w in enumerate(vocab)}
    pairs = [(index[s[i]], index[s[j]]) for s in sentences for i in range(len(s))
             for j in range(max(0, i - WINDOW), min(len(s), i + WINDOW + 1)) if j != i]
    counts = np.bincount([index[w] for s in sentences for w in s], minlength=len(vocab))
    noise = counts ** 0.75 / np.sum(counts ** 0.75)
    center, context = np.asarray(pairs, np.int32).T
    negatives = rng.choice(len(vocab), size=(len(pairs), NEGATIVES), p=noise).astype(np.int32)
    return jnp.asarray(center), jnp.asarray(context), jnp.asarray(negatives)


def loss_fn(params, batch):
    r"""Mean over the pairs of :math:`-\log\sigma(u_c^\top v_o)
    - \sum_{n} \log\sigma(-u_c^\top v_n)`, with input vectors :math:`u` and output
    vectors :math:`v`."""
    center, context, negatives = batch
    u = params["in"][center]
    positive = jnp.sum(u * params["out"][context], axis=-1)
    negative = jnp.einsum("bd,bkd->bk", u, params["out"][negatives])
    return -jnp.mean(jax.nn.log_sigmoid(positive)
                     + jnp.sum(jax.nn.log_sigmoid(-negative), axis=-1))


def neighbours(embeddings: np.ndarray, k: int) -> np.ndarray:
    """``(V, k)``: each word's k nearest other words by cosine similarity."""
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return np.argsort(-similarity, axis=1)[:, :k]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="word_embeddings.png", help="where to write the plot")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the pairs")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    sentences = corpus(rng)
    vocab = sorted({w for s in sentences for w in s})
    topic_of = {w: t for t, slots in TOPICS.items() for s in slots.values() for w in s.split()}
    topic = np.array([topic_of.get(w, "") for w in vocab])  # "" for the function words
    data = skipgram_data(sentences, vocab, rng)
    print(f"{len(sentences)} sentences, e.g. {' '.join(sentences[0])!r}; {len(vocab)} words, "
          f"{len(data[0])} (center, context) pairs, {NEGATIVES} negatives each")

    init = {"in": jax.random.uniform(jax.random.PRNGKey(0), (len(vocab), DIM),
                                     minval=-0.5 / DIM, maxval=0.5 / DIM),
            "out": jnp.zeros((len(vocab), DIM))}  # word2vec's start
    optimizers = {"sgd": jaxgd.sgd, "adam": jaxgd.adam, "adagrad": jaxgd.adagrad}
    rates = np.logspace(-2, 1, 7)
    result = jaxgd.sweep(loss_fn, init, optimizers, hyperparams={"learning_rate": rates},
                         data=data, batch_size=BATCH, num_epochs=args.epochs)
    table = result.table()
    final = np.where(result.diverged, np.inf, result.final_loss)

    content = np.flatnonzero(topic != "")
    best_rows, purity = {}, {}
    print(f"{'optimizer':<9} {'best lr':>8} {'final loss':>11} {'neighbour purity':>17}")
    for name in optimizers:
        rows = np.flatnonzero(table["optimizer"] == name)
        i = best_rows[name] = rows[np.argmin(final[rows])]
        near = neighbours(np.asarray(result.fit.params["in"][i]), NEIGHBOURS)
        purity[name] = float(np.mean(topic[near[content]] == topic[content][:, None]))
        print(f"{name:<9} {table['learning_rate'][i]:>8.3g} {final[i]:>11.4f} "
              f"{purity[name]:>17.3f}")
    print(f"(neighbour purity: the share of the {NEIGHBOURS} nearest neighbours of each of "
          f"the {len(content)} topic words that are of its topic)")

    best = min(best_rows, key=lambda name: final[best_rows[name]])
    embeddings = np.asarray(result.fit.params["in"][best_rows[best]])
    near = neighbours(embeddings, NEIGHBOURS)
    print(f"nearest neighbours with {best}:")
    for word in QUERIES:
        w = vocab.index(word)
        shown = ", ".join(f"{vocab[j]} ({topic[j] or '-'})" for j in near[w])
        print(f"  {word} ({topic[w]}): {shown}")

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    steps_per_epoch = len(data[0]) // BATCH
    for name, i in best_rows.items():
        curve = np.asarray(result.fit.losses[i])[: args.epochs * steps_per_epoch]
        left.plot(np.arange(1, args.epochs + 1),
                  np.nanmean(curve.reshape(args.epochs, steps_per_epoch), axis=1), "o-",
                  ms=3, label=f"{name}, lr {table['learning_rate'][i]:.3g}")
    left.set(xlabel="epoch", ylabel="mean batch loss", title="skip-gram loss, best rate each")
    left.legend()
    centred = embeddings - embeddings.mean(axis=0)
    xy = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
    for name in TOPICS:
        rows = topic == name
        right.scatter(*xy[rows].T, s=12, label=name)
    for word in QUERIES:
        right.annotate(word, xy[vocab.index(word)], fontsize=8)
    right.set(title=f"{best} embeddings, first two principal components")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")

    assert purity[best] >= 0.9, purity
    assert all(topic[j] == topic_of[q] for q in QUERIES for j in near[vocab.index(q)])


if __name__ == "__main__":
    main()
