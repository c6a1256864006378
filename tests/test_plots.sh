#!/usr/bin/env bash
# test_plots.sh TMS SCRATCH: the figure pipeline end to end, as a smoke test:
# experiments/figures.sh --quick (every figure's specs at 50 steps) with this TMS, then
# every plot script (tmslab.plot, in the project's virtualenv: scripts/python-env.sh); each
# PNG must be written and decode at a sensible size, and the tied/untied table must have a
# row per density.
set -u
tms=$1; scratch=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
py=$(bash "$repo/scripts/python-env.sh" | tail -n 1) || { echo "FAIL: scripts/python-env.sh"; exit 1; }
rm -rf "$scratch"; mkdir -p "$scratch"
PYTHON=$py bash "$repo/experiments/figures.sh" --tms "$tms" --quick --backend cpu --runs "$scratch/runs" \
    --out "$scratch/figures" all > "$scratch/log.txt" 2>&1 || { tail -30 "$scratch/log.txt"; echo "FAIL: figures.sh"; exit 1; }
"$py" - "$scratch/figures" $(bash "$repo/experiments/figures.sh" list) <<'PY'
import sys
import matplotlib.image as mpimg
d, names = sys.argv[1], sys.argv[2:]
ok = True
for name in names:
    try:
        img = mpimg.imread(f"{d}/{name}.png")
        good = img.shape[0] >= 200 and img.shape[1] >= 300
        print(("ok   " if good else "FAIL ") + f"{name}.png {img.shape[1]}x{img.shape[0]}")
        ok &= good
    except Exception as e:  # missing or not a PNG
        print(f"FAIL {name}.png: {e}")
        ok = False
rows = [l for l in open(f"{d}/tied_untied.md") if l.startswith("| ") and l[2].isdigit()]
print(("ok   " if len(rows) == 9 else "FAIL ") + f"tied_untied.md has {len(rows)} density rows (want 9)")
ok &= len(rows) == 9
sys.exit(0 if ok else 1)
PY
rc=$?
[ $rc -eq 0 ] && echo "test_plots: every figure drew" || echo "test_plots: FAILED"
exit $rc
