#!/usr/bin/env bash
# test_pentagon.sh TMS SCRATCH PYTHON [BACKEND]: the pentagon emerges. n=5, m=2, importance 1,
# density 0.05, best of 4 seeds: five columns of similar norm, about 72 degrees apart,
# each feature's dimensionality near 2/5.
set -u
tms=$1; scratch=$2; py=$3; backend=${4:-cpu} # BACKEND: cpu (default) or cuda, named on every train
rm -rf "$scratch"; mkdir -p "$scratch"; cd "$scratch" || exit 1
cat > pentagon.json <<'JSON'
{"name": "pentagon-test", "model": {"n_features": 5, "n_hidden": 2},
 "data": {"density": 0.05, "importance_decay": 1.0},
 "train": {"steps": 10000, "seeds": 4}, "output": {"images": false, "contact_sheet": false}}
JSON
"$tms" train pentagon.json --out run --backend "$backend" --quiet || { echo "FAIL: train"; exit 1; }
"$py" - run <<'PY'
import csv, sys
import numpy as np
d = sys.argv[1]
rows = list(csv.DictReader(open(f"{d}/instances.csv")))
best = min(range(len(rows)), key=lambda i: float(rows[i]["loss_mean_features"]))
assert rows[best]["best_of_replicates"] == "1"
W = np.load(f"{d}/W.npy")[best].astype(np.float64)   # (2, 5)
norms = np.linalg.norm(W, axis=0)
angles = np.sort(np.degrees(np.arctan2(W[1], W[0])) % 360)
gaps = np.diff(np.append(angles, angles[0] + 360))
dims = [float(r["dimensionality"]) for r in csv.DictReader(open(f"{d}/features.csv")) if int(r["instance"]) == best]
print(f"best instance {best}: loss {float(rows[best]['loss_mean_features']):.6f}")
print("norms", np.round(norms, 3), "gaps (deg)", np.round(gaps, 1), "D_i", np.round(dims, 3))
ok = True
if not (norms.min() > 0.8 and norms.max() / norms.min() < 1.15): print("FAIL: norms not similar"); ok = False
if not np.all(np.abs(gaps - 72) < 8): print("FAIL: columns not about 72 degrees apart"); ok = False
if not np.all(np.abs(np.array(dims) - 0.4) < 0.05): print("FAIL: D_i not near 2/5"); ok = False
sys.exit(0 if ok else 1)
PY
rc=$?
[ $rc -eq 0 ] && echo "test_pentagon: the pentagon emerged" || echo "test_pentagon: FAILED"
exit $rc
