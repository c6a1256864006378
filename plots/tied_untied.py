"""tied_untied.py RUN [RUN ...] --out PNG --table MD: the tied / untied / hidden-ReLU study.
The runs share n, m, densities and seeds and differ in the model. For every density and
model: the best seed's final loss (the lowest of the replicates, as the paper keeps) and
the median over seeds, in both normalisations: loss_mean_features (mean over features,
the notebook's) and loss_sum_features (sum over features, the paper's = n x mean).
Writes the plot and a markdown table."""
import argparse

import matplotlib.pyplot as plt
import numpy as np

import tmsplot


def model_name(run):
    model = run.spec["model"]
    name = model["decoder"]
    if model["hidden_activation"] == "relu":
        name += " + hidden ReLU"
    return name


def summary(run):
    """{density: (best mean, best sum, median mean, seeds)}"""
    out = {}
    for p, rows in run.instances.groupby("density"):
        out[float(p)] = (rows.loss_mean_features.min(), rows.loss_sum_features.min(),
                         rows.loss_mean_features.median(), len(rows))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--table", required=True)
    args = ap.parse_args()
    runs = [tmsplot.Run(r) for r in args.runs]
    base = runs[0]
    for r in runs[1:]:
        if (r.n, r.m, r.densities(), r.spec["train"]["seeds"]) != (base.n, base.m, base.densities(),
                                                                     base.spec["train"]["seeds"]):
            raise SystemExit("tied_untied.py: the runs differ in n, m, densities or seeds")
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
    tmsplot.save(fig, args.out,
                 title=f"Tied vs untied vs hidden-ReLU: {n} features in {base.m} dimensions, "
                       f"final loss on {base.spec['train']['eval_samples']} fresh samples",
                 captions=[r.caption() for r in runs])

    # the table: best of seeds, both normalisations; ratio to tied
    lines = [f"Final loss on {base.spec['train']['eval_samples']} fresh samples, best of {seeds} seeds "
             f"(median in brackets), n={n}, m={base.m}, {base.importance_text()}, {base.recipe_text(seeds=False)}. "
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
    with open(args.table, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"plots: wrote {args.table}")


if __name__ == "__main__":
    main()
