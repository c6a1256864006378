"""perturb.py RUN [RUN ...] --feature F --out PNG: one feature's density perturbed (runs that
differ only in data.relative_density[F]; tmslab.plot.dynamics.perturb_figure): every
feature's D_i of the best seed against feature F's density, and each run's geometry."""
import argparse

from tmslab import load
from tmslab.plot import dynamics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--feature", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    fig = dynamics.perturb_figure([load(r) for r in args.runs], args.feature)
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
