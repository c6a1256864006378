"""correlated.py RUN [RUN ...] --out PNG: correlated and anticorrelated feature sets. One
row per (kind of sets, density), one column per model shape. For m = 2 the columns W_i of
the best seed as arrows, coloured by set; for larger m, W^T W (blue-white-red) with the
sets outlined. tmslab.plot.correlated.correlated."""
import matplotlib

matplotlib.use("Agg")  # files only, no display
try:
    from tmslab.plot import common, correlated
except ImportError as e:  # not the project's virtualenv
    raise SystemExit(f"plots: {e}; run this script with the project's Python: .venv/bin/python, "
                     "made by bash scripts/python-env.sh") from None


def main() -> None:
    args, runs = common.parse_runs(__doc__)
    common.save(correlated.correlated(runs), args.out)


if __name__ == "__main__":
    main()
