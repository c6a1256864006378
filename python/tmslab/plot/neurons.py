"""Models with a hidden ReLU (a privileged basis: the neurons): the encoder W per neuron for
the best seed of each density, neurons sorted by the feature they weigh most, and how many
are monosemantic. The privileged-basis figure and the |x| computation figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..run import Run
from . import common

MONO = 0.9  # monosemantic: the largest |W_ki|^2 is at least this share of sum_i W_ki^2
DEAD = 0.1  # dead: every |W_ki| below this


def neuron_stats(W: np.ndarray) -> tuple[int, int]:
    """(monosemantic neurons, live neurons) of an encoder W (m, n)."""
    sq = W ** 2
    alive = np.abs(W).max(axis=1) >= DEAD
    share = sq.max(axis=1) / np.maximum(sq.sum(axis=1), 1e-30)
    return int((alive & (share >= MONO)).sum()), int(alive.sum())


def neurons(run: Run, features: int = 0) -> Figure:
    """W per neuron (red +, blue -) for the best seed of each density; `features`: draw
    only the first N features (0: all)."""
    if run.spec["model"]["hidden_activation"] != "relu":
        raise ValueError(f"{run.path} has no hidden ReLU, so no privileged basis to draw")
    densities = common.densities(run)
    nf = features or run.n
    cols = len(densities) if len(densities) <= 5 else 4
    rows = -(-len(densities) // cols)
    width = max(2.3, 0.05 * nf + 0.9)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, (0.05 * run.m + 2.0) * rows), squeeze=False)
    for ax in axes.flat[len(densities):]:
        ax.set_visible(False)
    for ax, p in zip(axes.flat, densities):
        row = common.best_at(run, p)
        W = common.weights(run, int(row.instance))  # (m, n)
        order = np.lexsort((-np.abs(W).max(axis=1), np.abs(W).argmax(axis=1)))
        lim = float(np.abs(W).max())
        ax.imshow(W[order, :nf], cmap=common.GRAM_CMAP, vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
        mono, alive = neuron_stats(W)
        ax.set_title(f"density {p:g}\n{mono}/{alive} live neurons monosemantic\n"
                     f"loss {row.loss_mean_features:.3g} ({row.loss_sum_features:.3g} sum)", fontsize=7)
        ax.set_xlabel("feature (importance decreasing \u2192)", fontsize=6)
        ax.set_xticks([])
        ax.set_yticks([])
    for r in range(rows):
        axes[r, 0].set_ylabel("neurons (sorted by\ntheir largest feature)", fontsize=7)
    what = "computing |x|" if run.spec["data"].get("task") == "abs" else "a privileged basis"
    return common.finish(fig, title=f"Hidden-ReLU model, {what}: encoder weights W per neuron (red +, blue -), best "
                                    f"seed per density; monosemantic: one feature holds \u2265 {MONO:.0%} of the "
                                    f"neuron's squared weight", captions=[common.caption(run)])
