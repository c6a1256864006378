"""Correlated and anticorrelated feature sets: one row per (kind of sets, density), one
column per model shape. m = 2: the columns W_i of the best seed as arrows, coloured by set;
larger m: W^T W with the sets outlined. Correlated: a set's features are all active
together; anticorrelated: at most one feature of a set is active at a time (tms_math.h)."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..run import Run
from . import common
from .arrows import draw_arrows
from .gram import draw_gram


def correlated(runs: Sequence[Run]) -> Figure:
    """The feature-set figure of runs with data.feature_sets."""
    kinds = sorted({r.spec["data"]["feature_sets"]["kind"] for r in runs}, key=lambda k: k != "correlated")
    shapes = sorted({(r.n, r.m) for r in runs})
    rows = [(k, p) for k in kinds for p in sorted({p for r in runs for p in common.densities(r)}, reverse=True)]
    fig, axes = plt.subplots(len(rows), len(shapes), figsize=(2.9 * len(shapes), 3.0 * len(rows)), squeeze=False)
    set_colors = plt.get_cmap("tab10")
    for r_idx, (kind, p) in enumerate(rows):
        for c_idx, shape in enumerate(shapes):
            ax = axes[r_idx, c_idx]
            match = [r for r in runs if (r.n, r.m) == shape and r.spec["data"]["feature_sets"]["kind"] == kind
                     and p in common.densities(r)]
            if not match:
                ax.set_visible(False)
                continue
            run = match[0]
            k = run.spec["data"]["feature_sets"]["size"]
            row = common.best_at(run, p)
            i = int(row.instance)
            title = (f"{kind}, {run.n // k} sets of {k}: {run.n} \u2192 {run.m}\ndensity {p:g}, "
                     f"loss {row.loss_mean_features:.3g} ({row.loss_sum_features:.3g} sum)")
            if run.m == 2:
                colors = [set_colors((f // k) % 10) for f in range(run.n)]
                draw_arrows(ax, common.weights(run, i).T, colors, labels=[str(f) for f in range(run.n)], title=title)
            else:
                draw_gram(ax, common.weights(run, i), None, title=title)
                for g in range(run.n // k):
                    ax.add_patch(Rectangle((g * k - 0.5, g * k - 0.5), k, k, fill=False, lw=1.0, ec="k"))
    return common.finish(fig, title="Feature sets: columns W_i coloured by set (m = 2), or W\u1d40W with the sets "
                                    "outlined; best seed per density",
                         captions=sorted({common.caption(r) for r in runs}))
