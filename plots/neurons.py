"""neurons.py RUN --out PNG [--features N]: models with a hidden ReLU (a privileged basis:
the neurons). For the best seed of each density, the encoder W (neurons x features) as a
blue-white-red map, neurons sorted by the feature they weigh most, and how many neurons
are monosemantic: their largest |W_ki|^2 is at least 90% of sum_i W_ki^2. A neuron whose
weights are all below 0.1 (max |W_ki|) is counted as dead, not monosemantic. Used for the
privileged-basis figure and the |x| computation figure. tmslab.plot.neurons.neurons."""
import argparse

import matplotlib

matplotlib.use("Agg")  # files only, no display
try:
    from tmslab.plot import common, neurons
except ImportError as e:  # not the project's virtualenv
    raise SystemExit(f"plots: {e}; run this script with the project's Python: .venv/bin/python, "
                     "made by bash scripts/python-env.sh") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run")
    ap.add_argument("--out", required=True)
    ap.add_argument("--features", type=int, default=0, help="draw only the first N features (0: all)")
    args = ap.parse_args()
    (run,) = common.load_runs([args.run])
    try:
        fig = neurons.neurons(run, features=args.features)
    except ValueError as e:
        raise SystemExit(f"neurons.py: {e}") from None
    common.save(fig, args.out)


if __name__ == "__main__":
    main()
