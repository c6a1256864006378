"""dynamics.py RUN --out PNG [--density P] [--moments K]: the learning-dynamics figure of a
run trained with output.snapshots (tmslab.plot.dynamics.dynamics_figure): every feature's
dimensionality D_i against the training step, the training loss, and the geometry at the
moments it changes, for the best seed (at density P)."""
import argparse

from tmslab import load, load_snapshots
from tmslab.plot import dynamics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run")
    ap.add_argument("--out", required=True)
    ap.add_argument("--density", type=float)
    ap.add_argument("--moments", type=int, default=5)
    args = ap.parse_args()
    run = load(args.run)
    fig = dynamics.dynamics_figure(run, load_snapshots(args.run), dynamics.best_instance(run, args.density),
                                   moments=args.moments)
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
