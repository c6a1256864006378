"""note.py TIED_RUN UNTIED_RUN --density P --out PNG: the research note's three pictures, for
the best seed at density P of each run: the tied model's columns W_i, the untied model's
columns W_i (its encoder) and the untied model's rows of W2 (its decoder: row i is where
feature i is read from). The runs must have m = 2."""
import argparse

import matplotlib.pyplot as plt

import tmsplot


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("tied")
    ap.add_argument("untied")
    ap.add_argument("--density", type=float, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    tied, untied = tmsplot.Run(args.tied), tmsplot.Run(args.untied)
    if tied.spec["model"]["decoder"] != "tied" or untied.spec["model"]["decoder"] != "untied":
        raise SystemExit("note.py: give a tied run, then an untied run")
    if tied.m != 2 or untied.m != 2:
        raise SystemExit("note.py: the pictures need m = 2")
    fig, axes = plt.subplots(1, 3, figsize=(9.6, 3.6))
    t, u = tied.best_at(args.density), untied.best_at(args.density)
    ti, ui = int(t.instance), int(u.instance)
    labels = [str(f) for f in range(tied.n)]
    tmsplot.draw_arrows(axes[0], tied.W[ti].T, tmsplot.importance_colors(tied.importance(ti)), labels,
                        title=f"tied: columns of W\n{tmsplot.loss_text(t)}".replace(" (mean", "\n(mean"))
    colors = tmsplot.importance_colors(untied.importance(ui))
    tmsplot.draw_arrows(axes[1], untied.W[ui].T, colors, labels,
                        title=f"untied: columns of W (encoder)\n{tmsplot.loss_text(u)}".replace(" (mean", "\n(mean"))
    tmsplot.draw_arrows(axes[2], untied.W2[ui], colors, labels,
                        title="untied: rows of W2 (decoder)\nsame instance")
    tmsplot.save(fig, args.out,
                 title=f"The research note's pictures: {tied.n} features in {tied.m} dimensions, density "
                       f"{args.density:g}, best seed of each run",
                 captions=[tied.caption(), untied.caption()])


if __name__ == "__main__":
    main()
