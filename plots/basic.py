"""basic.py RUN [RUN ...] --out PNG: the paper's basic results. One row pair per run (e.g.
the ReLU model and its linear baseline, same spec but output_activation none), one
column per density: W^T W as a blue-white-red map with b beside it, and ||W_i|| per
feature (feature 0 on top) coloured by sqrt(superposition) (dark: alone in its
direction, yellow: shares it)."""

import matplotlib.pyplot as plt

import tmsplot


def run_label(run):
    out = run.spec["model"]["output_activation"]
    return "linear model (no output ReLU)" if out == "none" else "ReLU output model"


def main():
    args, runs = tmsplot.parse_runs(__doc__)
    # the linear baseline first, as the paper places it
    runs.sort(key=lambda r: r.spec["model"]["output_activation"] != "none")
    densities = runs[0].densities()
    for r in runs[1:]:
        if r.densities() != densities:
            raise SystemExit("basic.py: the runs have different densities")
    cols = len(densities)
    fig, axes = plt.subplots(2 * len(runs), cols, figsize=(1.55 * cols, 3.9 * len(runs)),
                             gridspec_kw={"height_ratios": [1.0, 0.9] * len(runs)})
    for k, run in enumerate(runs):
        for c, p in enumerate(densities):
            row = run.best_at(p)
            i = int(row.instance)
            table = run.feature_table(i)
            b = run.b[i] if run.b is not None else None
            tmsplot.draw_gram(axes[2 * k, c], run.W[i], b,
                              title=f"density {p:g}\nloss {row.loss_mean_features:.3g}\n"
                                    f"({row.loss_sum_features:.3g} sum)")
            tmsplot.draw_norm_bars(axes[2 * k + 1, c], table)
        axes[2 * k, 0].set_ylabel(f"{run_label(run)}\nW\u1d40W | b", fontsize=7)
        axes[2 * k + 1, 0].set_ylabel("||W_i||\n(feature 0 on top)", fontsize=7)
    tmsplot.save(fig, args.out,
                 title="Basic results: W\u1d40W and b (red +, blue -), and feature norms coloured by superposition "
                       "(dark: alone, yellow: shared), best seed per density",
                 captions=[r.caption() for r in runs])


if __name__ == "__main__":
    main()
