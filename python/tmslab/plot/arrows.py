"""Columns W_i as arrows in a 2-dimensional hidden space: the paper's intro figure (each
density's best seed) and the research note's three pictures (tied W, untied W and W2)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..run import Run
from . import common


def draw_arrows(ax: Axes, vectors: np.ndarray, colors: Sequence[Any], labels: Sequence[str] | None = None,
                title: str | None = None) -> None:
    """2-D vectors (k, 2) as arrows from the origin, with the unit circle."""
    circle = plt.Circle((0, 0), 1, fill=False, color="0.8", lw=0.8)
    ax.add_patch(circle)
    lim = max(1.2, float(np.abs(vectors).max()) * 1.15) if len(vectors) else 1.2
    for k, v in enumerate(vectors):
        ax.annotate("", xy=(v[0], v[1]), xytext=(0, 0),
                    arrowprops=dict(arrowstyle="-|>", color=colors[k], lw=1.6, shrinkA=0, shrinkB=0))
        if labels is not None and np.hypot(*v) > 0.15:
            ax.text(v[0] * 1.12, v[1] * 1.12, labels[k], fontsize=7, ha="center", va="center", color=colors[k])
    ax.axhline(0, color="0.9", lw=0.6, zorder=0)
    ax.axvline(0, color="0.9", lw=0.6, zorder=0)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def intro(run: Run, densities: Sequence[float] | None = None) -> Figure:
    """For each density of `run` (an m = 2 model; default: all of the spec's), the columns
    W_i of the best seed as arrows, coloured by importance (darkest = most important)."""
    if run.m != 2:
        raise ValueError(f"{run.path} has m={run.m}; the arrows need m=2")
    densities = list(densities) if densities is not None else common.densities(run)
    fig, axes = plt.subplots(1, len(densities), figsize=(3.2 * len(densities), 3.4), squeeze=False)
    for ax, p in zip(axes[0], densities):
        row = common.best_at(run, p)
        i = int(row.instance)
        colors = common.importance_colors(common.importance(run, i))
        draw_arrows(ax, common.weights(run, i).T, colors, labels=[str(f) for f in range(run.n)],
                    title=f"{common.density_text(p)}\n{int(row.n_represented)} of {run.n} features "
                          f"with ||W_i|| > 0.5\n{common.loss_text(row)}")
    return common.finish(fig, title="Columns W_i of the best seed at each density "
                         "(colour: importance, darkest = most important)", captions=[common.caption(run)])


def note(tied: Run, untied: Run, density: float) -> Figure:
    """The research note's three pictures for the best seed at `density` of each run
    (m = 2): the tied model's columns W_i, the untied model's columns W_i (its encoder) and
    its rows of W2 (its decoder: row i is where feature i is read from)."""
    if tied.spec["model"]["decoder"] != "tied" or untied.spec["model"]["decoder"] != "untied":
        raise ValueError("note: give a tied run, then an untied run")
    if tied.m != 2 or untied.m != 2:
        raise ValueError("note: the pictures need m = 2")
    fig, axes = plt.subplots(1, 3, figsize=(9.6, 3.6))
    t, u = common.best_at(tied, density), common.best_at(untied, density)
    ti, ui = int(t.instance), int(u.instance)
    labels = [str(f) for f in range(tied.n)]
    draw_arrows(axes[0], common.weights(tied, ti).T, common.importance_colors(common.importance(tied, ti)), labels,
                title=f"tied: columns of W\n{common.loss_text(t)}".replace(" (mean", "\n(mean"))
    colors = common.importance_colors(common.importance(untied, ui))
    draw_arrows(axes[1], common.weights(untied, ui).T, colors, labels,
                title=f"untied: columns of W (encoder)\n{common.loss_text(u)}".replace(" (mean", "\n(mean"))
    draw_arrows(axes[2], common.weights(untied, ui, "W2"), colors, labels,
                title="untied: rows of W2 (decoder)\nsame instance")
    return common.finish(fig, title=f"The research note's pictures: {tied.n} features in {tied.m} dimensions, "
                                    f"density {density:g}, best seed of each run",
                         captions=[common.caption(tied), common.caption(untied)])
