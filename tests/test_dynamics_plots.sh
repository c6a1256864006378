#!/usr/bin/env bash
# test_dynamics_plots.sh TMS SCRATCH: the figures drawn from snapshots with tmslab (issue 16),
# end to end as a smoke test with real checks: experiments/figures.sh --quick dynamics forming
# perturb (50 steps) with this TMS and the project's virtualenv (scripts/python-env.sh); the
# PNGs decode at a sensible size, the GIF has one frame per snapshot and stays under 2 MB, and
# tmslab.load_snapshots gives back the run's files (its last snapshot is load()'s W, its steps
# the manifest's). Exits 77 (skipped) when the virtualenv cannot be made (no PyPI access).
set -u
tms=$1; scratch=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
if ! tpy=$(bash "$repo/scripts/python-env.sh" 2>"$scratch.venv.log" | tail -n 1) || [ ! -x "$tpy" ]; then
    echo "test_dynamics_plots: skipped: scripts/python-env.sh could not make the virtualenv: $(tail -3 "$scratch.venv.log")"
    exit 77
fi
rm -rf "$scratch"; mkdir -p "$scratch"
TMSLAB_PYTHON=$tpy PYTHON=$tpy bash "$repo/experiments/figures.sh" --tms "$tms" --quick --backend cpu \
    --runs "$scratch/runs" --out "$scratch/figures" dynamics forming perturb > "$scratch/log.txt" 2>&1 ||
    { tail -30 "$scratch/log.txt"; echo "FAIL: figures.sh"; exit 1; }
"$tpy" - "$scratch" <<'PY'
import json, os, sys
import numpy as np
from PIL import Image
import tmslab
d = sys.argv[1]
ok = True
def check(cond, what):
    global ok
    print(("ok   " if cond else "FAIL ") + what)
    ok &= bool(cond)
for name in ("dynamics", "perturb"):
    with Image.open(f"{d}/figures/{name}.png") as im:
        check(im.size[0] >= 600 and im.size[1] >= 400, f"{name}.png {im.size}")
run = f"{d}/runs/forming"
steps = json.load(open(f"{run}/manifest.json"))["snapshots"]["steps"]
with Image.open(f"{d}/figures/forming.gif") as im:
    check(im.n_frames == len(steps) == 10, f"forming.gif: {im.n_frames} frames, {len(steps)} snapshots")
check(os.path.getsize(f"{d}/figures/forming.gif") < 2e6, "forming.gif under 2 MB")
snaps, final = tmslab.load_snapshots(run), tmslab.load(run)
check(list(snaps.step.values) == steps, "load_snapshots: the manifest's steps")
check(np.array_equal(snaps.W.isel(step=-1).values, final.W.values), "load_snapshots: the last snapshot is load()'s W")
raw = np.load(f"{run}/snapshots/W.npy")  # (S, I, m, n); the grid is (density 1, ..., replicate 4)
check(np.array_equal(snaps.W.values.reshape(raw.shape), raw), "load_snapshots: W in the file's order")
check(np.allclose(snaps.dimensionality.isel(step=-1).values, final.dimensionality.values), "geometry of the last snapshot")
try:
    tmslab.load_snapshots(f"{d}/runs/perturb_1")
    check(False, "load_snapshots of a run without snapshots raises")
except tmslab.RunError as e:
    check("no snapshots" in str(e), f"load_snapshots without snapshots: {e}")
sys.exit(0 if ok else 1)
PY
rc=$?
[ $rc -eq 0 ] && echo "test_dynamics_plots: every figure drew" || echo "test_dynamics_plots: FAILED"
exit $rc
