"""W^T W maps and feature-norm bars: the paper's basic results (the ReLU model and its
linear baseline, one column per density)."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..run import Run
from . import common


def draw_gram(ax: Axes, W: np.ndarray, b: np.ndarray | None = None, title: str | None = None) -> None:
    """W^T W (n, n) of W (m, n) as a blue-white-red map, with b as a column beside it."""
    gram = W.T @ W
    n = gram.shape[0]
    lim = max(1e-9, float(np.abs(gram).max()), float(np.abs(b).max()) if b is not None else 0.0)
    ax.imshow(gram, cmap=common.GRAM_CMAP, vmin=-lim, vmax=lim, extent=(-0.5, n - 0.5, n - 0.5, -0.5))
    if b is not None:
        ax.imshow(b[:, None], cmap=common.GRAM_CMAP, vmin=-lim, vmax=lim, extent=(n + 0.5, n + 1.5, n - 0.5, -0.5))
        ax.set_xlim(-0.5, n + 1.5)
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title, fontsize=8)


def draw_norm_bars(ax: Axes, table: pd.DataFrame, title: str | None = None) -> None:
    """Horizontal bars of ||W_i|| per feature (feature 0 on top) from features.csv rows,
    coloured by sqrt(superposition) clipped to [0, 1] as in the notebook: black = alone,
    yellow = shared."""
    norms = table.norm.to_numpy()
    sup = np.clip(np.sqrt(table.superposition.to_numpy()), 0, 1)
    cmap = plt.get_cmap("plasma")
    y = np.arange(len(norms))
    ax.barh(y, norms, color=[cmap(0.05 + 0.9 * s) for s in sup], height=0.8)
    ax.set_ylim(len(norms) - 0.5, -0.5)
    ax.set_xlim(0, max(1.1, float(norms.max()) * 1.05))
    ax.set_yticks([])
    ax.tick_params(axis="x", labelsize=6)
    if title:
        ax.set_title(title, fontsize=8)


def run_label(run: Run) -> str:
    """'linear model (no output ReLU)' or 'ReLU output model'"""
    out = run.spec["model"]["output_activation"]
    return "linear model (no output ReLU)" if out == "none" else "ReLU output model"


def basic(runs: Sequence[Run]) -> Figure:
    """One row pair per run (e.g. the ReLU model and its linear baseline: the same spec with
    output_activation none, placed first as the paper does), one column per density: W^T W
    with b beside it, and ||W_i|| per feature coloured by superposition."""
    runs = sorted(runs, key=lambda r: r.spec["model"]["output_activation"] != "none")
    densities = common.densities(runs[0])
    for r in runs[1:]:
        if common.densities(r) != densities:
            raise ValueError("basic: the runs have different densities")
    cols = len(densities)
    fig, axes = plt.subplots(2 * len(runs), cols, figsize=(1.55 * cols, 3.9 * len(runs)),
                             gridspec_kw={"height_ratios": [1.0, 0.9] * len(runs)}, squeeze=False)
    for k, run in enumerate(runs):
        for c, p in enumerate(densities):
            row = common.best_at(run, p)
            i = int(row.instance)
            b = common.weights(run, i, "b") if "b" in run else None
            draw_gram(axes[2 * k, c], common.weights(run, i), b,
                      title=f"density {p:g}\nloss {row.loss_mean_features:.3g}\n({row.loss_sum_features:.3g} sum)")
            draw_norm_bars(axes[2 * k + 1, c], common.feature_table(run, i))
        axes[2 * k, 0].set_ylabel(f"{run_label(run)}\nW\u1d40W | b", fontsize=7)
        axes[2 * k + 1, 0].set_ylabel("||W_i||\n(feature 0 on top)", fontsize=7)
    return common.finish(fig, title="Basic results: W\u1d40W and b (red +, blue -), and feature norms coloured by "
                                    "superposition (dark: alone, yellow: shared), best seed per density",
                         captions=[common.caption(r) for r in runs])
