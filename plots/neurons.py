"""neurons.py RUN --out PNG: models with a hidden ReLU (a privileged basis: the neurons).
For the best seed of each density, the encoder W (neurons x features) as a blue-white-red
map, neurons sorted by the feature they weigh most, and how many neurons are
monosemantic: their largest |W_ki|^2 is at least MONO of sum_i W_ki^2. A neuron whose
weights are all below DEAD (max |W_ki|) is counted as dead, not monosemantic.
Used for the privileged-basis figure and the |x| computation figure."""
import argparse

import matplotlib.pyplot as plt
import numpy as np

import tmsplot

MONO = 0.9
DEAD = 0.1


def neuron_stats(W):
    sq = W ** 2
    alive = np.abs(W).max(axis=1) >= DEAD
    share = sq.max(axis=1) / np.maximum(sq.sum(axis=1), 1e-30)
    return int((alive & (share >= MONO)).sum()), int(alive.sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run")
    ap.add_argument("--out", required=True)
    ap.add_argument("--features", type=int, default=0, help="draw only the first N features (0: all)")
    args = ap.parse_args()
    run = tmsplot.Run(args.run)
    if run.spec["model"]["hidden_activation"] != "relu":
        raise SystemExit(f"neurons.py: {args.run} has no hidden ReLU, so no privileged basis to draw")
    densities = run.densities()
    nf = args.features or run.n
    cols = len(densities) if len(densities) <= 5 else 4
    rows = -(-len(densities) // cols)
    width = max(2.3, 0.05 * nf + 0.9)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, (0.05 * run.m + 2.0) * rows), squeeze=False)
    for ax in axes.flat[len(densities):]:
        ax.set_visible(False)
    for ax, p in zip(axes.flat, densities):
        row = run.best_at(p)
        i = int(row.instance)
        W = run.W[i]  # (m, n)
        order = np.lexsort((-np.abs(W).max(axis=1), np.abs(W).argmax(axis=1)))
        lim = float(np.abs(W).max())
        ax.imshow(W[order, :nf], cmap=tmsplot.GRAM_CMAP, vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
        mono, alive = neuron_stats(W)
        ax.set_title(f"density {p:g}\n{mono}/{alive} live neurons monosemantic\n"
                     f"loss {row.loss_mean_features:.3g} ({row.loss_sum_features:.3g} sum)", fontsize=7)
        ax.set_xlabel("feature (importance decreasing \u2192)", fontsize=6)
        ax.set_xticks([])
        ax.set_yticks([])
    for r in range(rows):
        axes[r, 0].set_ylabel("neurons (sorted by\ntheir largest feature)", fontsize=7)
    what = "computing |x|" if run.spec["data"].get("task") == "abs" else "a privileged basis"
    tmsplot.save(fig, args.out,
                 title=f"Hidden-ReLU model, {what}: encoder weights W per neuron (red +, blue -), best seed per density; "
                       f"monosemantic: one feature holds \u2265 {MONO:.0%} of the neuron's squared weight",
                 captions=[run.caption()])


if __name__ == "__main__":
    main()
