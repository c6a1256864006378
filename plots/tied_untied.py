"""tied_untied.py RUN [RUN ...] --out PNG --table MD: the tied / untied / hidden-ReLU study.
The runs share n, m, densities and seeds and differ in the model. For every density and
model: the best seed's final loss (the lowest of the replicates, as the paper keeps) and
the median over seeds, in both normalisations: loss_mean_features (mean over features,
the notebook's) and loss_sum_features (sum over features, the paper's = n x mean).
Writes the plot and a markdown table. tmslab.plot.losses."""
import argparse

import matplotlib

matplotlib.use("Agg")  # files only, no display
try:
    from tmslab.plot import common, losses
except ImportError as e:  # not the project's virtualenv
    raise SystemExit(f"plots: {e}; run this script with the project's Python: .venv/bin/python, "
                     "made by bash scripts/python-env.sh") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--table", required=True)
    args = ap.parse_args()
    runs = common.load_runs(args.runs)
    try:
        fig, text = losses.tied_untied(runs), losses.table(runs)
    except ValueError as e:
        raise SystemExit(f"tied_untied.py: {e}") from None
    common.save(fig, args.out)
    with open(args.table, "w") as f:
        f.write(text)
    print(f"plots: wrote {args.table}")


if __name__ == "__main__":
    main()
