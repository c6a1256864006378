"""basic.py RUN [RUN ...] --out PNG: the paper's basic results. One row pair per run (e.g.
the ReLU model and its linear baseline, same spec but output_activation none), one
column per density: W^T W as a blue-white-red map with b beside it, and ||W_i|| per
feature (feature 0 on top) coloured by sqrt(superposition) (dark: alone in its
direction, yellow: shares it). tmslab.plot.gram.basic."""
import matplotlib

matplotlib.use("Agg")  # files only, no display
try:
    from tmslab.plot import common, gram
except ImportError as e:  # not the project's virtualenv
    raise SystemExit(f"plots: {e}; run this script with the project's Python: .venv/bin/python, "
                     "made by bash scripts/python-env.sh") from None


def main() -> None:
    args, runs = common.parse_runs(__doc__)
    try:
        fig = gram.basic(runs)
    except ValueError as e:
        raise SystemExit(f"basic.py: {e}") from None
    common.save(fig, args.out)


if __name__ == "__main__":
    main()
