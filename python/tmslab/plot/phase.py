"""The paper's phase diagrams: over a density x importance grid whose importance vectors
differ only in the last ("extra") feature's, what the best seed does with that feature
(tmslab.geometry.phase): not represented (||W_extra|| <= 0.5), a dedicated dimension
(superposition < 0.25), or superposition (sharing its direction)."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .. import geometry
from ..run import Run
from . import common

CLASSES = ["not represented", "dedicated dimension", "superposition"]  # geometry.PHASES, in words
COLORS = ["#e8e8e8", "#4c72b0", "#dd8452"]


def classify(norm: float, superposition: float) -> int:
    """0 not represented, 1 dedicated dimension, 2 superposition (geometry.phase)."""
    return geometry.PHASES.index(str(geometry.phase(norm, superposition)))


def phase_grid(run: Run) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(densities, the extra feature's importance relative to the mean of the others',
    class grid [density, importance]: classify() of the best seed, -1 where missing),
    from instances.csv and features.csv."""
    best = common.best_rows(run)
    extra = run.n - 1
    feats = run.features[run.features.feature == extra].set_index("instance")
    others = run.features[run.features.feature != extra].groupby("instance").importance.mean()
    dens = sorted(best.density.unique(), reverse=True)
    rel = {}
    for _, row in best.iterrows():
        i = int(row.instance)
        rel[int(row.importance_index)] = feats.loc[i, "importance"] / others.loc[i]
    imps = [rel[k] for k in sorted(rel)]
    grid = np.full((len(dens), len(imps)), -1)
    for _, row in best.iterrows():
        i = int(row.instance)
        d = dens.index(row.density)
        grid[d, int(row.importance_index)] = classify(feats.loc[i, "norm"], feats.loc[i, "superposition"])
    return np.array(dens), np.array(imps), grid


def edges(values: np.ndarray) -> np.ndarray:
    """Cell edges of log-spaced centres."""
    v = np.log10(values)
    mid = (v[1:] + v[:-1]) / 2
    return 10 ** np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])


def phase(runs: Sequence[Run]) -> Figure:
    """One phase diagram per run: x the extra feature's relative importance (log), y the
    density (log), coloured by what the best seed does with the extra feature."""
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 4.0), squeeze=False)
    cmap = ListedColormap(COLORS)
    for ax, run in zip(axes[0], runs):
        dens, imps, grid = phase_grid(run)
        if (grid < 0).any():
            raise ValueError(f"phase: {run.path}: the grid has gaps")
        order = np.argsort(imps)
        ax.pcolormesh(edges(imps[order]), edges(dens), grid[:, order], cmap=cmap, vmin=0, vmax=2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(ax.get_ylim()[::-1] if dens[0] < dens[-1] else ax.get_ylim())
        ax.set_xlabel(f"relative importance of the extra feature (feature {run.n - 1})", fontsize=8)
        ax.set_ylabel("feature density 1 - S (log)", fontsize=8)
        ax.tick_params(labelsize=7)
        counts = ", ".join(f"{(grid == k).sum()} {c}" for k, c in enumerate(CLASSES))
        ax.set_title(f"{run.n} features \u2192 {run.m} dimension{'s' if run.m > 1 else ''}: "
                     f"{grid.size} grid points, best of {run.spec['train']['seeds']} seeds\n({counts})", fontsize=8)
    fig.legend(handles=[Patch(color=c, label=f"extra feature: {k}") for k, c in zip(CLASSES, COLORS)],
               loc="upper center", ncol=3, fontsize=7, bbox_to_anchor=(0.5, 0.0), frameon=False)
    return common.finish(fig, title=f"Phase diagrams: what the best model does with the extra feature "
                                    f"(not represented: ||W|| < {geometry.REPRESENTED_NORM}; superposition: "
                                    f"sum_j (W^_e . W_j)^2 >= {geometry.SUPERPOSITION_SHARED})",
                         captions=[common.caption(r) for r in runs])
