"""What the figures share: captions built from a run's manifest (never typed by hand, so a
label cannot disagree with the run it describes), the best replicate's rows, colours, and
the layout that puts a title above and the runs' captions below.

Figure functions return a matplotlib Figure already titled and captioned (`finish`);
`save(fig, out)` writes it. In a notebook the Figure displays as it is.
"""
from __future__ import annotations

import argparse
import os
import textwrap
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..run import Run, RunError, load

# The paper's palette: importance from dark (most important) to light.
IMPORTANCE_CMAP = "viridis"
GRAM_CMAP = "RdBu_r"  # blue-white-red, 0 white


# ----------------------------------------------------------------------------
# the spec, in words

def model_text(run: Run) -> str:
    """e.g. 'n=5, m=2, tied: x\u2032 = ReLU(W\u1d40Wx + b)'"""
    model = run.spec["model"]
    dec = "W\u1d40" if model["decoder"] == "tied" else "W\u2082"
    b = " + b" if model["bias"] else ""
    b1 = " + b\u2081" if model["bias"] and model.get("hidden_bias", True) else ""
    h = f"ReLU(Wx{b1})" if model["hidden_activation"] == "relu" else "Wx"
    out = f"{dec}{h}{b}"
    if model["output_activation"] == "relu":
        out = f"ReLU({out})"
    return f"n={run.n}, m={run.m}, {model['decoder']}: x\u2032 = {out}"


def importance_text(run: Run) -> str:
    """The importance setting(s): 'importance 1', 'importance 0.9^i', vectors."""
    data = run.spec["data"]
    if "importance_decay" in data:
        decay = data["importance_decay"]
        if isinstance(decay, list):
            return "importance r^i, r in " + ", ".join(f"{r:g}" for r in decay)
        return "importance 1" if decay == 1 else f"importance {decay:g}^i"
    rows = data["importance"]
    if rows and not isinstance(rows[0], list):
        rows = [rows]

    def fmt(v: Sequence[float]) -> str:
        return "[" + ", ".join(f"{x:g}" for x in v) + "]"

    if len(rows) == 1:
        return f"importance {fmt(rows[0])}"
    return f"importance vectors {fmt(rows[0])} .. {fmt(rows[-1])} ({len(rows)})"


def data_text(run: Run) -> str:
    """The task and feature sets, when not the defaults ('' otherwise)."""
    data = run.spec["data"]
    parts = []
    if data.get("task", "sparse") == "abs":
        parts.append("task |x|: x uniform on [-1, 1] where active, target |x|")
    sets = data.get("feature_sets", {"kind": "independent"})
    if sets["kind"] != "independent":
        parts.append(f"{sets['kind']} sets of {sets['size']}")
    return ", ".join(parts)


def recipe_text(run: Run, seeds: bool = True) -> str:
    """Optimizer, learning rate, batch, steps (and the seeds the best is chosen from)."""
    opt, train = run.spec["optimizer"], run.spec["train"]
    lr = opt["lr"] if not isinstance(opt["lr"], list) else "/".join(f"{x:g}" for x in opt["lr"])
    best = f", best of {train['seeds']} seeds" if seeds and train["seeds"] > 1 else ""
    return (f"{opt['name']} lr {lr}, batch {run.spec['data']['batch_size']}, "
            f"{train['steps']} steps{best}")


def caption(run: Run) -> str:
    """One line saying what was trained, from the spec."""
    bits = [model_text(run), importance_text(run)]
    if data_text(run):
        bits.append(data_text(run))
    bits.append(recipe_text(run))
    return "; ".join(bits) + f"  [{run.spec['name']}, {run.manifest['backend']}]"


def density_text(p: float) -> str:
    """'density 0.1 (S = 0.9)'"""
    return f"density {p:g} (S = {1 - p:.3g})"


def loss_text(row: Any) -> str:
    """An instances.csv row's final loss in both normalisations, labelled."""
    return f"loss {row.loss_mean_features:.3g} (mean over features) / {row.loss_sum_features:.3g} (sum)"


# ----------------------------------------------------------------------------
# instances

def densities(run: Run) -> list[float]:
    """The spec's densities, in its order."""
    d = run.spec["data"]["density"]
    return list(d) if isinstance(d, list) else [d]


def best_rows(run: Run) -> pd.DataFrame:
    """instances.csv rows of the best replicate of every grid point."""
    return run.instances[run.instances.best_of_replicates == 1]


def best_at(run: Run, density: float, importance_index: int = 0) -> Any:
    """The instances.csv row of the best replicate at this density (and importance)."""
    rows = best_rows(run)
    rows = rows[np.isclose(rows.density, density, rtol=1e-6) & (rows.importance_index == importance_index)]
    if len(rows) != 1:
        raise ValueError(f"{run.path}: {len(rows)} best instances at density {density}")
    return rows.iloc[0]


def feature_table(run: Run, instance: int) -> pd.DataFrame:
    """features.csv rows of one instance, feature 0 first."""
    return run.features[run.features.instance == instance].sort_values("feature")


def importance(run: Run, instance: int) -> np.ndarray:
    """I_i of one instance's features."""
    return feature_table(run, instance).importance.to_numpy()


def weights(run: Run, instance: int, name: str = "W") -> np.ndarray:
    """One instance's parameter as float64, in the .npy file's layout: W (m, n), W2 (n, m),
    b (n), b1 (m)."""
    at = run.at(instance)[name]
    order = {"W": ("hidden", "feature"), "W2": ("feature", "hidden")}.get(name)
    return np.asarray((at.transpose(*order) if order else at).values, dtype=np.float64)


def importance_colors(imp: Sequence[float] | np.ndarray) -> list[Any]:
    """Colour per feature by importance: the most important darkest. With every importance
    equal there is nothing to show, so each feature gets its own colour instead."""
    imp = np.asarray(imp, dtype=float)
    span = imp.max() - imp.min()
    if span == 0:
        return [plt.get_cmap("tab10")(k % 10) for k in range(len(imp))]
    cmap = plt.get_cmap(IMPORTANCE_CMAP)
    return [cmap(0.05 + 0.8 * (imp.max() - x) / span) for x in imp]


# ----------------------------------------------------------------------------
# layout and files

def finish(fig: Figure, title: str | None = None, captions: Sequence[str] = ()) -> Figure:
    """Lay out, put `title` above and the runs' captions below (wrapped), above and below
    everything already placed (axes, their labels, figure legends, which may reach past the
    figure's edges). Returns fig."""
    fig.tight_layout()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    inverse = fig.transFigure.inverted()
    boxes = [a.get_tightbbox(renderer).transformed(inverse) for a in fig.axes if a.get_visible()]
    boxes += [g.get_window_extent(renderer).transformed(inverse) for g in fig.legends]
    if title:
        gap = 8 / 72 / fig.get_figheight()  # 8 points
        fig.suptitle(title, fontsize=9, y=max([1.0] + [b.y1 for b in boxes]) + gap, va="bottom")
    if captions:
        width = max(60, int(fig.get_figwidth() * 19))  # characters per line at this font size
        text = "\n".join(textwrap.fill(c, width) for c in captions)
        fig.text(0.5, min([0.0] + [b.y0 for b in boxes]) - 6 / 72 / fig.get_figheight(), text, ha="center",
                 va="top", fontsize=6.5, color="0.3")
    return fig


def save(fig: Figure, out: str | os.PathLike[str], close: bool = True) -> None:
    """Write fig as a PNG (110 dpi, cropped to what is drawn, captions included)."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    if close:
        plt.close(fig)
    print(f"plots: wrote {out}")


def load_runs(paths: Sequence[str]) -> list[Run]:
    """tmslab.load each path; a path that is not a complete run ends the script saying why."""
    runs = []
    for p in paths:
        try:
            runs.append(load(p))
        except RunError as e:
            raise SystemExit(f"plots: {e}; train it first with build/tms train SPEC --out {p}") from None
    return runs


def parse_runs(doc: str | None, one: bool = False) -> tuple[argparse.Namespace, list[Run]]:
    """The command line of a plot script that reads run directories and writes --out:
    (args, runs)."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("run" if one else "runs", nargs=None if one else "+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    return args, load_runs([args.run] if one else args.runs)
