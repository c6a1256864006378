"""intro.py RUN --out PNG: the paper's intro figure. For each density of RUN (an n-feature,
2-dimensional model), the columns W_i of the best seed as arrows in the hidden plane,
coloured by importance (darkest = most important). tmslab.plot.arrows.intro."""
import matplotlib

matplotlib.use("Agg")  # files only, no display
try:
    from tmslab.plot import arrows, common
except ImportError as e:  # not the project's virtualenv
    raise SystemExit(f"plots: {e}; run this script with the project's Python: .venv/bin/python, "
                     "made by bash scripts/python-env.sh") from None


def main() -> None:
    args, runs = common.parse_runs(__doc__, one=True)
    try:
        fig = arrows.intro(runs[0])
    except ValueError as e:
        raise SystemExit(f"intro.py: {e}") from None
    common.save(fig, args.out)


if __name__ == "__main__":
    main()
