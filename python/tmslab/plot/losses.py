"""Final loss against density for runs that differ only in the model (tied / untied /
hidden ReLU): the best seed (the lowest of the replicates, as the paper keeps) and the
median over seeds, in both normalisations (loss_mean_features, the notebook's;
loss_sum_features, the paper's = n x mean), and the markdown table of the same."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..run import Run
from . import common


def model_name(run: Run) -> str:
    """'tied', 'untied', 'untied + hidden ReLU'"""
    model = run.spec["model"]
    name = str(model["decoder"])
    if model["hidden_activation"] == "relu":
        name += " + hidden ReLU"
    return name


def summary(run: Run) -> dict[float, tuple[float, float, float, int]]:
    """{density: (best mean, best sum, median mean, seeds)} from instances.csv."""
    out = {}
    for p, rows in run.instances.groupby("density"):
        out[float(p)] = (rows.loss_mean_features.min(), rows.loss_sum_features.min(),
                         rows.loss_mean_features.median(), len(rows))
    return out


def _check(runs: Sequence[Run]) -> None:
    base = runs[0]
    for r in runs[1:]:
        if (r.n, r.m, common.densities(r), r.spec["train"]["seeds"]) != (
                base.n, base.m, common.densities(base), base.spec["train"]["seeds"]):
            raise ValueError("tied_untied: the runs differ in n, m, densities or seeds")


def tied_untied(runs: Sequence[Run]) -> Figure:
    """Best-of-seeds (solid) and median (dotted) final loss against density, one line per run."""
    _check(runs)
    base = runs[0]
    names = [model_name(r) for r in runs]
    stats = [summary(r) for r in runs]
    densities = sorted(stats[0], reverse=True)
    seeds = base.spec["train"]["seeds"]
    fig, ax = plt.subplots(figsize=(6.8, 4.2))
    for name, st, marker in zip(names, stats, "osd^v"):
        best = [st[p][0] for p in densities]
        median = [st[p][2] for p in densities]
        line, = ax.plot(densities, best, marker=marker, ms=4, lw=1.3, label=f"{name}: best of {seeds}")
        ax.plot(densities, median, ls=":", lw=1, color=line.get_color(), label=f"{name}: median of {seeds}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("feature density 1 - S (log; sparser to the right)", fontsize=8)
    ax.set_ylabel("final loss, mean over features (notebook)", fontsize=8)
    n = base.n
    sec = ax.secondary_yaxis("right", functions=(lambda y: y * n, lambda y: y / n))
    sec.set_ylabel(f"final loss, sum over features (paper) = {n} x mean", fontsize=8)
    for a in (ax, sec):
        a.tick_params(labelsize=7)
    ax.legend(fontsize=6.5, ncol=1, frameon=False)
    ax.grid(True, which="major", color="0.92", lw=0.6)
    return common.finish(fig, title=f"Tied vs untied vs hidden-ReLU: {n} features in {base.m} dimensions, "
                                    f"final loss on {base.spec['train']['eval_samples']} fresh samples",
                         captions=[common.caption(r) for r in runs])


def table(runs: Sequence[Run]) -> str:
    """The markdown table: per density, each model's best-of-seeds loss (median in brackets)
    in both normalisations, and each model's ratio to tied."""
    _check(runs)
    base = runs[0]
    names = [model_name(r) for r in runs]
    stats = [summary(r) for r in runs]
    densities = sorted(stats[0], reverse=True)
    seeds = base.spec["train"]["seeds"]
    n = base.n
    lines = [f"Final loss on {base.spec['train']['eval_samples']} fresh samples, best of {seeds} seeds "
             f"(median in brackets), n={n}, m={base.m}, {common.importance_text(base)}, "
             f"{common.recipe_text(base, seeds=False)}. "
             f"mean = loss_mean_features (notebook), sum = loss_sum_features (paper) = {n} x mean.", ""]
    header = "| density |" + "".join(f" {nm}: mean | {nm}: sum |" for nm in names)
    if "tied" in names:
        header += "".join(f" {nm} / tied |" for nm in names if nm != "tied")
    lines.append(header)
    lines.append("|" + " ---: |" * (header.count("|") - 1))
    tied = stats[names.index("tied")] if "tied" in names else None
    for p in densities:
        row = f"| {p:g} |"
        for st in stats:
            row += f" {st[p][0]:.4g} ({st[p][2]:.3g}) | {st[p][1]:.4g} |"
        if tied:
            row += "".join(f" {st[p][0] / tied[p][0]:.2f} |" for nm, st in zip(names, stats) if nm != "tied")
        lines.append(row)
    return "\n".join(lines) + "\n"
