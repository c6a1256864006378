"""phase.py RUN [RUN ...] --out PNG: the paper's phase diagrams. Each RUN trains n features
into m dimensions over a grid of density x importance, where the importance vectors
differ only in the last ("extra") feature's. For the best seed of every grid point, the
extra feature is classified from features.csv (tmslab.geometry.phase):
  not represented       ||W_extra|| <= 0.5
  dedicated dimension   represented, and superposition_extra = sum_j (W^_extra . W_j)^2 < 0.25
  superposition         represented, sharing its direction (superposition >= 0.25)
and drawn as a coloured map: x the extra feature's importance relative to the others
(log), y the density (log). tmslab.plot.phase.phase."""
import matplotlib

matplotlib.use("Agg")  # files only, no display
try:
    from tmslab.plot import common, phase
except ImportError as e:  # not the project's virtualenv
    raise SystemExit(f"plots: {e}; run this script with the project's Python: .venv/bin/python, "
                     "made by bash scripts/python-env.sh") from None


def main() -> None:
    args, runs = common.parse_runs(__doc__)
    try:
        fig = phase.phase(runs)
    except ValueError as e:
        raise SystemExit(f"phase.py: {e}") from None
    common.save(fig, args.out)


if __name__ == "__main__":
    main()
