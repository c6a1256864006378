"""intro.py RUN --out PNG: the paper's intro figure. For each density of RUN (an n-feature,
2-dimensional model), the columns W_i of the best seed as arrows in the hidden plane,
coloured by importance (darkest = most important)."""

import matplotlib.pyplot as plt

import tmsplot


def main():
    args, run = tmsplot.parse_runs(__doc__, one=True)
    if run.m != 2:
        raise SystemExit(f"intro.py: {args.run} has m={run.m}; the arrows need m=2")
    densities = run.densities()
    fig, axes = plt.subplots(1, len(densities), figsize=(3.2 * len(densities), 3.4))
    axes = [axes] if len(densities) == 1 else axes
    for ax, p in zip(axes, densities):
        row = run.best_at(p)
        i = int(row.instance)
        colors = tmsplot.importance_colors(run.importance(i))
        tmsplot.draw_arrows(ax, run.W[i].T, colors, labels=[str(f) for f in range(run.n)],
                            title=f"{tmsplot.density_text(p)}\n{int(row.n_represented)} of {run.n} features "
                                  f"with ||W_i|| > 0.5\n{tmsplot.loss_text(row)}")
    tmsplot.save(fig, args.out, title="Columns W_i of the best seed at each density "
                 "(colour: importance, darkest = most important)", captions=[run.caption()])


if __name__ == "__main__":
    main()
