"""uniform.py RUN --out PNG: the paper's uniform-superposition geometry. Top: dimensions
per feature D* = m / ||W||_F^2 against 1/(1-S) = 1/density (log axis), for the best seed
of each density. Bottom: every feature's dimensionality
D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2 (a dot each, jittered sideways), with the
fractions the paper finds D_i sticks to drawn as lines. tmslab.plot.dimensionality.uniform."""
import matplotlib

matplotlib.use("Agg")  # files only, no display
try:
    from tmslab.plot import common, dimensionality
except ImportError as e:  # not the project's virtualenv
    raise SystemExit(f"plots: {e}; run this script with the project's Python: .venv/bin/python, "
                     "made by bash scripts/python-env.sh") from None


def main() -> None:
    args, runs = common.parse_runs(__doc__, one=True)
    common.save(dimensionality.uniform(runs[0]), args.out)


if __name__ == "__main__":
    main()
