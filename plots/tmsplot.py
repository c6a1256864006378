"""tmsplot: read tms run directories and draw the pieces the figure scripts share.

A run directory (see the top-level README) holds manifest.json (with the fully resolved
spec), W.npy / W2.npy / b1.npy / b.npy, instances.csv and features.csv. Every label a
figure shows is built here from the manifest's spec and the CSVs, never typed by hand,
so a caption cannot disagree with the run it describes.
"""
import argparse
import json
import os
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# The paper's palette: importance from dark (most important) to light.
IMPORTANCE_CMAP = "viridis"
GRAM_CMAP = "RdBu_r"  # blue-white-red, 0 white


class Run:
    """One run directory: its manifest, spec, tables and weights."""

    def __init__(self, path):
        self.path = path
        manifest_path = os.path.join(path, "manifest.json")
        if not os.path.exists(manifest_path):
            sys.exit(f"plots: {path} is not a run directory (no manifest.json); "
                     f"train it first with build/tms train SPEC --out {path}")
        with open(manifest_path) as f:
            self.manifest = json.load(f)
        if self.manifest.get("status") != "complete":
            sys.exit(f"plots: {path}: the run's status is {self.manifest.get('status')!r}, not 'complete'")
        self.spec = self.manifest["spec"]
        self.instances = pd.read_csv(os.path.join(path, "instances.csv"))
        self.features = pd.read_csv(os.path.join(path, "features.csv"))
        self.W = np.load(os.path.join(path, "W.npy")).astype(np.float64)  # (I, m, n)
        self.W2 = self._load("W2.npy")  # (I, n, m) untied only
        self.b1 = self._load("b1.npy")  # (I, m) hidden ReLU with bias only
        self.b = self._load("b.npy")  # (I, n) bias only

    def _load(self, name):
        p = os.path.join(self.path, name)
        return np.load(p).astype(np.float64) if os.path.exists(p) else None

    # ---- the spec, in words
    @property
    def n(self):
        return self.spec["model"]["n_features"]

    @property
    def m(self):
        return self.spec["model"]["n_hidden"]

    def model_text(self):
        """e.g. 'n=5, m=2, tied, x\u2032 = ReLU(W\u1d40Wx + b)'"""
        model = self.spec["model"]
        dec = "W\u1d40" if model["decoder"] == "tied" else "W\u2082"
        b = " + b" if model["bias"] else ""
        b1 = " + b\u2081" if model["bias"] and model.get("hidden_bias", True) else ""
        h = f"ReLU(Wx{b1})" if model["hidden_activation"] == "relu" else "Wx"
        out = f"{dec}{h}{b}"
        if model["output_activation"] == "relu":
            out = f"ReLU({out})"
        return f"n={self.n}, m={self.m}, {model['decoder']}: x\u2032 = {out}"

    def importance_text(self):
        data = self.spec["data"]
        if "importance_decay" in data:
            decay = data["importance_decay"]
            if isinstance(decay, list):
                return "importance r^i, r in " + ", ".join(f"{r:g}" for r in decay)
            return "importance 1" if decay == 1 else f"importance {decay:g}^i"
        rows = data["importance"]
        fmt = lambda v: "[" + ", ".join(f"{x:g}" for x in v) + "]"  # noqa: E731
        if len(rows) == 1:
            return f"importance {fmt(rows[0])}"
        return f"importance vectors {fmt(rows[0])} .. {fmt(rows[-1])} ({len(rows)})"

    def data_text(self):
        data = self.spec["data"]
        parts = []
        if data.get("task", "sparse") == "abs":
            parts.append("task |x|: x uniform on [-1, 1] where active, target |x|")
        sets = data.get("feature_sets", {"kind": "independent"})
        if sets["kind"] != "independent":
            parts.append(f"{sets['kind']} sets of {sets['size']}")
        return ", ".join(parts)

    def recipe_text(self, seeds=True):
        opt, train = self.spec["optimizer"], self.spec["train"]
        lr = opt["lr"] if not isinstance(opt["lr"], list) else "/".join(f"{x:g}" for x in opt["lr"])
        best = f", best of {train['seeds']} seeds" if seeds and train["seeds"] > 1 else ""
        return (f"{opt['name']} lr {lr}, batch {self.spec['data']['batch_size']}, "
                f"{train['steps']} steps{best}")

    def caption(self):
        """One line saying what was trained, from the spec."""
        bits = [self.model_text(), self.importance_text()]
        if self.data_text():
            bits.append(self.data_text())
        bits.append(self.recipe_text())
        return "; ".join(bits) + f"  [{self.spec['name']}, {self.manifest['backend']}]"

    # ---- instances
    def best(self):
        """instances.csv rows of the best replicate of every grid point."""
        return self.instances[self.instances.best_of_replicates == 1]

    def best_at(self, density, importance_index=0):
        rows = self.best()
        rows = rows[np.isclose(rows.density, density, rtol=1e-6) & (rows.importance_index == importance_index)]
        if len(rows) != 1:
            sys.exit(f"plots: {self.path}: {len(rows)} best instances at density {density}")
        return rows.iloc[0]

    def densities(self):
        d = self.spec["data"]["density"]
        return d if isinstance(d, list) else [d]

    def feature_table(self, instance):
        return self.features[self.features.instance == instance].sort_values("feature")

    def importance(self, instance):
        return self.feature_table(instance).importance.to_numpy()


def density_text(p):
    """'density 0.1 (sparsity 0.9)'"""
    return f"density {p:g} (S = {1 - p:.3g})"


def loss_text(row):
    """the final loss in both normalisations, labelled"""
    return f"loss {row.loss_mean_features:.3g} (mean over features) / {row.loss_sum_features:.3g} (sum)"


def save(fig, out, title=None, captions=()):
    """Lay out, put `title` above and the runs' captions below (wrapped), write the PNG."""
    fig.tight_layout()
    # the title above and the captions below everything already placed (axes, their
    # labels, figure legends), which may reach past the figure's edges
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
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
                 va="top", fontsize=6.5,
                 color="0.3")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"plots: wrote {out}")


# ----------------------------------------------------------------------------
# drawing

def draw_arrows(ax, vectors, colors, labels=None, title=None):
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


def importance_colors(importance):
    """Colour per feature by importance: the most important darkest. With every importance
    equal there is nothing to show, so each feature gets its own colour instead."""
    imp = np.asarray(importance, dtype=float)
    span = imp.max() - imp.min()
    if span == 0:
        return [plt.get_cmap("tab10")(k % 10) for k in range(len(imp))]
    cmap = plt.get_cmap(IMPORTANCE_CMAP)
    return [cmap(0.05 + 0.8 * (imp.max() - x) / span) for x in imp]


def draw_gram(ax, W, b=None, title=None):
    """W^T W (n, n) as a blue-white-red map, with b as a column beside it."""
    gram = W.T @ W
    n = gram.shape[0]
    lim = max(1e-9, float(np.abs(gram).max()), float(np.abs(b).max()) if b is not None else 0.0)
    ax.imshow(gram, cmap=GRAM_CMAP, vmin=-lim, vmax=lim, extent=(-0.5, n - 0.5, n - 0.5, -0.5))
    if b is not None:
        ax.imshow(b[:, None], cmap=GRAM_CMAP, vmin=-lim, vmax=lim, extent=(n + 0.5, n + 1.5, n - 0.5, -0.5))
        ax.set_xlim(-0.5, n + 1.5)
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title, fontsize=8)


def draw_norm_bars(ax, table, title=None):
    """Horizontal bars of ||W_i|| per feature (feature 0 on top), coloured by
    sqrt(superposition) clipped to [0, 1] as in the notebook: black = alone, yellow = shared."""
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


def parse_runs(doc, one=False):
    """The command line of a plot script that reads run directories and writes --out:
    returns (args, runs), runs being a list of Run, or one Run when `one`."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("run" if one else "runs", nargs=None if one else "+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    return args, (Run(args.run) if one else [Run(r) for r in args.runs])
