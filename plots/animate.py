"""animate.py RUN --out GIF [--density P] [--fps F]: an animated GIF of the best seed's
geometry forming over a run's snapshots (output.snapshots), drawn with matplotlib's
PillowWriter (tmslab.plot.dynamics.animate_geometry): the columns W_i for m = 2 (W^T W
otherwise) beside every feature's D_i so far."""
import argparse
import os

from tmslab import load, load_snapshots
from tmslab.plot import dynamics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run")
    ap.add_argument("--out", required=True)
    ap.add_argument("--density", type=float)
    ap.add_argument("--fps", type=int, default=12)
    args = ap.parse_args()
    run = load(args.run)
    frames = dynamics.animate_geometry(run, load_snapshots(args.run), args.out,
                                       dynamics.best_instance(run, args.density), fps=args.fps)
    print(f"animate: {frames} frames, {os.path.getsize(args.out) / 1e6:.2f} MB -> {args.out}")


if __name__ == "__main__":
    main()
