"""note.py TIED_RUN UNTIED_RUN --density P --out PNG: the research note's three pictures, for
the best seed at density P of each run: the tied model's columns W_i, the untied model's
columns W_i (its encoder) and the untied model's rows of W2 (its decoder: row i is where
feature i is read from). The runs must have m = 2. tmslab.plot.arrows.note."""
import argparse

import matplotlib

matplotlib.use("Agg")  # files only, no display
try:
    from tmslab.plot import arrows, common
except ImportError as e:  # not the project's virtualenv
    raise SystemExit(f"plots: {e}; run this script with the project's Python: .venv/bin/python, "
                     "made by bash scripts/python-env.sh") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("tied")
    ap.add_argument("untied")
    ap.add_argument("--density", type=float, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    tied, untied = common.load_runs([args.tied, args.untied])
    try:
        fig = arrows.note(tied, untied, args.density)
    except ValueError as e:
        raise SystemExit(f"note.py: {e}") from None
    common.save(fig, args.out)


if __name__ == "__main__":
    main()
