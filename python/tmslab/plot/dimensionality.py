"""Dimensions per feature D* = m / ||W||_F^2 and feature dimensionality D_i against the
density: the paper's uniform-superposition geometry, with the fractions D_i sticks to."""
from __future__ import annotations

from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..run import Run
from . import common

STICKY = [Fraction(1), Fraction(3, 4), Fraction(2, 3), Fraction(1, 2), Fraction(2, 5), Fraction(3, 8)]


def sticky_lines(ax: Axes) -> None:
    """Dashed lines at the fractions 1, 3/4, 2/3, 1/2, 2/5, 3/8, labelled on the right."""
    for f in STICKY:
        ax.axhline(float(f), color="0.75", lw=0.7, ls="--", zorder=0)
        ax.text(1.01, float(f), str(f), transform=ax.get_yaxis_transform(), fontsize=7, va="center", color="0.4")


def uniform(run: Run) -> Figure:
    """Top: D* of the best seed of each density against 1/(1-S) = 1/density (log axis).
    Bottom: every feature's D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2 (a dot each, jittered
    sideways within its density)."""
    best = common.best_rows(run).sort_values("density", ascending=False)
    x = 1.0 / best.density.to_numpy()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6.5), sharex=True)
    top.plot(x, best.dims_per_feature, "o-", color="k", ms=4, lw=1)
    top.set_ylabel("dimensions per feature D* = m / ||W||_F\u00b2", fontsize=8)
    top.set_ylim(0, 1.1)
    sticky_lines(top)
    rng = np.random.default_rng(0)  # jitter only: the dots' x position within a density
    feats = run.features.merge(best[["instance", "density"]], on="instance")
    fx = (1.0 / feats.density.to_numpy()) * np.exp(rng.uniform(-0.06, 0.06, len(feats)))
    bottom.scatter(fx, feats.dimensionality, s=3, alpha=0.35, color="tab:blue", lw=0)
    bottom.set_ylabel("feature dimensionality D_i", fontsize=8)
    bottom.set_ylim(-0.05, 1.1)
    sticky_lines(bottom)
    bottom.set_xscale("log")
    bottom.set_xlabel("1 / (1 - S) = 1 / density (log scale)", fontsize=8)
    for ax in (top, bottom):
        ax.tick_params(labelsize=7)
    return common.finish(fig, title=f"Uniform superposition: {run.n} features of importance 1 in {run.m} dimensions, "
                                    f"{len(best)} densities", captions=[common.caption(run)])
