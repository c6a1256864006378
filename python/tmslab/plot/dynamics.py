"""Learning dynamics from a run's snapshots (spec `output.snapshots`), and the figures
that compare runs across one setting: the paper's learning-dynamics picture, an animation
of the geometry forming, and one feature's density perturbed around the pentagon.

Every function takes loaded runs (`tmslab.load`, `tmslab.load_snapshots`) and returns a
matplotlib Figure (or writes an animation); titles and captions are built from the runs'
manifests (`caption`), never typed, so a figure cannot disagree with the run it shows.
`plots/dynamics.py`, `plots/animate.py` and `plots/perturb.py` are the command lines.
"""
from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..run import GRID_DIMS, Run  # noqa: E402

# the fractions feature dimensionality sticks to (the paper; REFERENCE.md)
STICKY = (1.0, 3 / 4, 2 / 3, 1 / 2, 2 / 5, 3 / 8, 1 / 3, 0.0)
STICKY_TEXT = ("1", "3/4", "2/3", "1/2", "2/5", "3/8", "1/3", "0")
GRAM_CMAP = "RdBu_r"


# ----------------------------------------------------------------------------
# words from the manifest

def _axis_text(v: Any) -> str:
    return ", ".join(f"{x:g}" for x in v) if isinstance(v, list) else f"{v:g}"


def model_text(spec: dict[str, Any]) -> str:
    """'n=20, m=5, tied: x' = ReLU(W^T W x + b)'"""
    model = spec["model"]
    dec = "W\u1d40" if model["decoder"] == "tied" else "W\u2082"
    b = " + b" if model["bias"] else ""
    b1 = " + b\u2081" if model["bias"] and model.get("hidden_bias", True) else ""
    h = f"ReLU(Wx{b1})" if model["hidden_activation"] == "relu" else "Wx"
    out = f"{dec}{h}{b}"
    if model["output_activation"] == "relu":
        out = f"ReLU({out})"
    return f"n={model['n_features']}, m={model['n_hidden']}, {model['decoder']}: x\u2032 = {out}"


def importance_text(spec: dict[str, Any]) -> str:
    data = spec["data"]
    if "importance_decay" in data:
        r = data["importance_decay"]
        if isinstance(r, list):
            return "importance r^i, r in " + _axis_text(r)
        return "importance 1" if r == 1 else f"importance {r:g}^i"
    return "explicit importance"


def density_text(spec: dict[str, Any]) -> str:
    data = spec["data"]
    text = "density " + _axis_text(data["density"])
    rel = data.get("relative_density")
    if rel is not None:
        odd = [(i, r) for i, r in enumerate(rel) if r != 1]
        text += " (" + ", ".join(f"feature {i} x{r:g}" for i, r in odd) + ")" if odd else ""
    return text


def recipe_text(manifest: dict[str, Any]) -> str:
    spec = manifest["spec"]
    opt, train, data = spec["optimizer"], spec["train"], spec["data"]
    return (f"{opt['name']} lr {_axis_text(opt['lr'])}, wd {_axis_text(opt['weight_decay'])}, batch "
            f"{data['batch_size']}, {train['steps']} steps, {train['seeds']} seed(s), {manifest.get('backend', '?')}")


def caption(manifest: dict[str, Any]) -> str:
    """One line describing a run, from its manifest."""
    spec = manifest["spec"]
    return (f"{spec['name']}: {model_text(spec)}; {importance_text(spec)}; {density_text(spec)}; "
            f"{recipe_text(manifest)}")


def _finish(fig: Figure, title: str, captions: Sequence[str]) -> Figure:
    fig.suptitle(title, fontsize=9)
    text = "\n".join(textwrap.fill(c, 150) for c in captions)
    fig.text(0.01, 0.005, text, fontsize=6, va="bottom", ha="left", family="monospace")
    return fig


# ----------------------------------------------------------------------------
# picking an instance

def best_instance(run: Run, density: float | None = None) -> int:
    """The instance index (in the run's files) of the best replicate of the first grid point
    (or of the first one at `density`)."""
    inst = run.instances
    rows = inst[inst.best_of_replicates == 1]
    if density is not None:
        rows = rows[np.isclose(rows.density, density)]
        if rows.empty:
            raise ValueError(f"{run.path}: no instance at density {density:g} (has {sorted(set(inst.density))})")
    return int(rows.instance.iloc[0])


def _grid_index(run: Run, instance: int) -> dict[str, int]:
    shape = tuple(run.ds.sizes[d] for d in GRID_DIMS)
    return dict(zip(GRID_DIMS, (int(i) for i in np.unravel_index(instance, shape))))


def instance_snapshots(run: Run, snaps: xr.Dataset, instance: int) -> xr.Dataset:
    """One instance's snapshots: (step, hidden, feature) W, (step, feature) geometry, ..."""
    return snaps.isel(_grid_index(run, instance))


# ----------------------------------------------------------------------------
# drawing pieces

def draw_arrows(ax: Any, W: np.ndarray, colors: Sequence[Any], title: str | None = None) -> None:
    """m = 2: the columns of W (2, n) as arrows from the origin, with the unit circle."""
    t = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(t), np.sin(t), color="0.85", lw=0.6)
    for i in range(W.shape[1]):
        ax.annotate("", xy=(W[0, i], W[1, i]), xytext=(0, 0),
                    arrowprops=dict(arrowstyle="-|>", color=colors[i], lw=1.4, shrinkA=0, shrinkB=0))
    lim = max(1.25, float(np.abs(W).max()) * 1.1)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)


def draw_gram(ax: Any, W: np.ndarray, title: str | None = None) -> None:
    """W^T W (n, n) as a blue-white-red map, 0 white."""
    G = W.T @ W
    lim = max(1.0, float(np.abs(G).max()))
    ax.imshow(G, cmap=GRAM_CMAP, vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)


def draw_geometry(ax: Any, W: np.ndarray, colors: Sequence[Any], title: str | None = None) -> None:
    """Arrows for m = 2, W^T W otherwise."""
    if W.shape[0] == 2:
        draw_arrows(ax, W, colors, title)
    else:
        draw_gram(ax, W, title)


def feature_colors(n: int) -> list[Any]:
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def pick_moments(steps: np.ndarray, D: np.ndarray, count: int) -> list[int]:
    """`count` snapshot indices to draw: the first after initialisation, the last, and between
    them the snapshots right after the largest jumps of sum_i |dD_i| (the moments the
    geometry changes), in step order."""
    S = len(steps)
    first = 1 if S > 1 and steps[0] == 0 else 0
    if S - first <= count:
        return list(range(first, S))
    jump = np.abs(np.diff(D, axis=0)).sum(axis=1)  # jump[k]: from snapshot k to k + 1
    chosen = {first, S - 1}
    for k in np.argsort(-jump):
        if len(chosen) >= count:
            break
        after = int(k) + 1
        if after > first and after < S - 1 and all(abs(after - c) > 1 for c in chosen):
            chosen.add(after)
    return sorted(chosen)


# ----------------------------------------------------------------------------
# the figures

def dynamics_figure(run: Run, snaps: xr.Dataset, instance: int | None = None, moments: int = 5) -> Figure:
    """The paper's learning dynamics: D_i of every feature against the training step (log
    x; the snapshot steps), the training loss beneath, and the geometry at `moments`
    snapshots (the first, the last, and those after the largest jumps of D), marked on the
    curves. `instance` defaults to the best replicate of the first grid point."""
    if instance is None:
        instance = best_instance(run)
    one = instance_snapshots(run, snaps, instance)
    steps = np.asarray(one.step)
    D = np.asarray(one.dimensionality)  # (S, n)
    W = np.asarray(one.W)  # (S, m, n)
    n = D.shape[1]
    keep = steps > 0  # log x
    colors = feature_colors(n)
    picks = pick_moments(steps, D, moments)
    fig = plt.figure(figsize=(10, 7.6))
    gs = fig.add_gridspec(3, len(picks), height_ratios=[2.2, 0.9, 1.25], hspace=0.45, top=0.92, bottom=0.12,
                          left=0.1, right=0.96)
    ax = fig.add_subplot(gs[0, :])
    for y, label in zip(STICKY, STICKY_TEXT):
        ax.axhline(y, color="0.85", lw=0.6, zorder=0)
        ax.text(1.005, y, label, transform=ax.get_yaxis_transform(), fontsize=6, va="center", color="0.4")
    for i in range(n):
        ax.plot(steps[keep], D[keep, i], color=colors[i], lw=1.0, label=f"feature {i}")
    for k in picks:
        ax.axvline(max(steps[k], steps[keep][0]), color="0.5", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.05)
    ax.set_ylabel("feature dimensionality D_i", fontsize=8)
    ax.tick_params(labelsize=7)
    if n <= 20:
        ax.legend(fontsize=5.5, ncol=min(n, 10), loc="upper left", frameon=False)
    row = run.instances[run.instances.instance == instance].iloc[0]
    ax.set_title(f"instance {instance} (best of {run.spec['train']['seeds']} seeds at density {row.density:g}): "
                 f"final loss {row.loss_mean_features:.4g} (mean over features), D* {row.dims_per_feature:.3g}",
                 fontsize=8)
    ax2 = fig.add_subplot(gs[1, :], sharex=ax)
    tl = run.ds.train_loss.isel(_grid_index(run, instance))
    lsteps, lvals = np.asarray(tl.step), np.asarray(tl)
    ok = (lsteps > 0) & np.isfinite(lvals)
    ax2.plot(lsteps[ok], lvals[ok], color="k", lw=0.8)
    ax2.set_yscale("log")
    ax2.set_xlabel("training step (log scale; D_i at the snapshots' steps, the loss every train.log_every steps)",
                   fontsize=8)
    ax2.set_ylabel("training loss", fontsize=7)
    ax2.tick_params(labelsize=7)
    for c, k in enumerate(picks):
        a = fig.add_subplot(gs[2, c])
        draw_geometry(a, W[k], colors, title=f"step {steps[k]}")
    what = "columns W_i" if W.shape[1] == 2 else "W\u1d40W (red +, blue -)"
    return _finish(fig, f"Learning dynamics: every feature's dimensionality during training, and the {what} at the "
                        "marked steps", [caption(run.manifest)])


def animate_geometry(run: Run, snaps: xr.Dataset, out: str, instance: int | None = None, fps: int = 12,
                     dpi: int = 100) -> int:
    """Write an animated GIF (matplotlib's PillowWriter) of one instance's geometry over its
    snapshots: the columns W_i for m = 2 (W^T W otherwise) beside every feature's D_i so
    far. Returns the number of frames."""
    if instance is None:
        instance = best_instance(run)
    one = instance_snapshots(run, snaps, instance)
    steps = np.asarray(one.step)
    W = np.asarray(one.W)
    D = np.asarray(one.dimensionality)
    n = D.shape[1]
    colors = feature_colors(n)
    fig, (ax, axd) = plt.subplots(1, 2, figsize=(6.4, 3.3), gridspec_kw={"width_ratios": [1, 1.25]})
    fig.subplots_adjust(left=0.03, right=0.96, bottom=0.2, top=0.84, wspace=0.3)
    spec = run.spec
    fig.suptitle(f"{spec['name']}: {model_text(spec)}\n{importance_text(spec)}, {density_text(spec)}, instance "
                 f"{instance}", fontsize=7)
    keep = steps > 0
    x0, x1 = steps[keep][0], steps[-1]

    def frame(k: int) -> None:
        ax.clear()
        axd.clear()
        draw_geometry(ax, W[k], colors, title=f"step {steps[k]}")
        upto = keep & (np.arange(len(steps)) <= k)
        for y in STICKY:
            axd.axhline(y, color="0.88", lw=0.5, zorder=0)
        for i in range(n):
            axd.plot(steps[upto], D[upto, i], color=colors[i], lw=1.0)
        axd.set_xscale("log")
        axd.set_xlim(x0, x1)
        axd.set_ylim(-0.03, 1.05)
        axd.set_xlabel("step (log)", fontsize=7)
        axd.set_ylabel("D_i", fontsize=7)
        axd.tick_params(labelsize=6)

    anim = FuncAnimation(fig, frame, frames=len(steps))
    anim.save(out, writer=PillowWriter(fps=fps), dpi=dpi)
    plt.close(fig)
    return len(steps)


def perturb_figure(runs: Sequence[Run], feature: int) -> Figure:
    """One feature's density varied around the others' (one run per value; the runs differ
    only in data.relative_density[feature]): the best seed's D_i of that feature and of the
    others, and its final loss, against the perturbed feature's density (log x), with the
    geometry of each run's best seed beneath."""
    runs = sorted(runs, key=lambda r: _feature_density(r, feature))
    xs = np.array([_feature_density(r, feature) for r in runs])
    base = float(np.atleast_1d(runs[0].spec["data"]["density"])[0])
    n = runs[0].n
    colors = ["0.6"] * n
    colors[feature] = "C3"
    fig = plt.figure(figsize=(max(8.0, 1.05 * len(runs)), 5.8))
    gs = fig.add_gridspec(2, len(runs), height_ratios=[2.0, 1.0], hspace=0.35, top=0.9, bottom=0.16, left=0.08,
                          right=0.98)
    ax = fig.add_subplot(gs[0, :])
    for y, label in zip(STICKY, STICKY_TEXT):
        ax.axhline(y, color="0.88", lw=0.6, zorder=0)
    Ds = []
    for r in runs:
        i = best_instance(r)
        Ds.append(np.asarray(r.ds.dimensionality.isel(_grid_index(r, i))))
    Ds = np.array(Ds)  # (runs, n)
    others = [j for j in range(n) if j != feature]
    for j in others:
        ax.plot(xs, Ds[:, j], "o-", color="0.65", ms=3, lw=0.8, label="the other features" if j == others[0] else None)
    ax.plot(xs, Ds[:, feature], "o-", color="C3", ms=4, lw=1.4, label=f"feature {feature} (perturbed)")
    ax.axvline(base, color="0.4", ls=":", lw=0.8)
    ax.text(base, 1.06, f" the others' density {base:g}", fontsize=6, color="0.3")
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.1)
    ax.set_xlabel(f"density of feature {feature} (log scale)", fontsize=8)
    ax.set_ylabel("D_i of the best seed", fontsize=8)
    ax.legend(fontsize=6, loc="upper right", frameon=False)
    ax.tick_params(labelsize=7)
    for c, r in enumerate(runs):
        i = best_instance(r)
        a = fig.add_subplot(gs[1, c])
        draw_geometry(a, np.asarray(r.ds.W.isel(_grid_index(r, i))), colors, title=f"p_{feature} = {xs[c]:.3g}")
    factors = ", ".join(f"{float(r.spec['data'].get('relative_density', [1.0] * n)[feature]):g}" for r in runs)
    text = caption(runs[0].manifest).split("; density")[0]
    rest = caption(runs[0].manifest).split("; ", 4)[-1]
    return _finish(fig, f"One feature's density perturbed around the pentagon: feature {feature} (red) at "
                        f"{len(runs)} densities, the others at {base:g}",
                   [f"{text}; density {base:g}, feature {feature}'s x data.relative_density[{feature}] = {factors} "
                    f"(one run each); {rest}"])


def _feature_density(run: Run, feature: int) -> float:
    data = run.spec["data"]
    base = float(np.atleast_1d(data["density"])[0])
    rel = data.get("relative_density")
    return base * (float(rel[feature]) if rel is not None else 1.0)
