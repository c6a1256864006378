#!/usr/bin/env bash
# test_figure_facts.sh TMS SCRATCH PYTHON [BACKEND]: the quantitative facts the figures rest on
# (REFERENCE.md), at sizes CI affords (a few seconds on 2 cores):
#   - dense D*: at density 1, dimensions per feature D* = m / ||W||_F^2 is 1 within 3%
#     (n=20, m=5, I=0.7^i, the basic-results model; n=5, m=2, I=0.9^i, the intro model; and
#     n=10, m=3 with importance 1, the uniform-geometry case), with exactly m features of
#     norm > 0.5 where importance decays;
#   - the n=2, m=1 phase diagram's corners, best of 4 seeds each: dense (density 1) with the
#     extra feature 10x less or 10x more important keeps one feature, the more important one
#     (norm > 0.9, the other < 0.1); sparse (density 0.01) with equal importance stores both
#     as an antipodal pair (norms within 10% of 1, W_0 = -W_1 within 0.1).
# The pentagon (D_i near 2/5) is test_pentagon.sh.
set -u
tms=$1; scratch=$2; py=$3; backend=${4:-cpu} # BACKEND: cpu (default) or cuda, named on every train
rm -rf "$scratch"; mkdir -p "$scratch"; cd "$scratch" || exit 1
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

cat > dense20.json <<'JSON'
{"name": "dense20", "model": {"n_features": 20, "n_hidden": 5}, "data": {"density": 1, "importance_decay": 0.7},
 "train": {"steps": 10000, "seeds": 1}, "output": {"images": false, "contact_sheet": false}}
JSON
cat > dense5.json <<'JSON'
{"name": "dense5", "model": {"n_features": 5, "n_hidden": 2}, "data": {"density": 1, "importance_decay": 0.9},
 "train": {"steps": 10000, "seeds": 2}, "output": {"images": false, "contact_sheet": false}}
JSON
cat > dense_uniform.json <<'JSON'
{"name": "dense-uniform", "model": {"n_features": 10, "n_hidden": 3}, "data": {"density": 1, "importance_decay": 1},
 "train": {"steps": 10000, "seeds": 1}, "output": {"images": false, "contact_sheet": false}}
JSON
cat > phase.json <<'JSON'
{"name": "phase-corners", "model": {"n_features": 2, "n_hidden": 1},
 "data": {"density": [1, 0.01], "importance": [[1, 0.1], [1, 1], [1, 10]]},
 "train": {"steps": 10000, "seeds": 4}, "output": {"images": false, "contact_sheet": false}}
JSON
for s in dense20 dense5 dense_uniform phase; do
    "$tms" train "$s.json" --out "$s" --backend "$backend" --quiet || fail "train $s"
done

"$py" - <<'PY' || fail "figure facts"
import csv, sys
import numpy as np

def best_rows(d):
    return [r for r in csv.DictReader(open(f"{d}/instances.csv")) if r["best_of_replicates"] == "1"]

ok = True
def check(cond, msg):
    global ok
    print(("ok   " if cond else "FAIL ") + msg)
    ok &= bool(cond)

# dense D* near 1
for d, m, decays in (("dense20", 5, True), ("dense5", 2, True), ("dense_uniform", 3, False)):
    for r in best_rows(d):
        dstar, kept = float(r["dims_per_feature"]), int(r["n_represented"])
        check(abs(dstar - 1) < 0.03, f"{d}: dense D* = {dstar:.4f}, want 1 within 3%")
        if decays:
            check(kept == m, f"{d}: {kept} features with norm > 0.5, want the m = {m} most important")

# the n=2, m=1 phase diagram's corners
W = np.load("phase/W.npy").astype(np.float64)[:, 0, :]  # (instances, 2)
corners = 0
for r in best_rows("phase"):
    i, p, k = int(r["instance"]), float(r["density"]), int(r["importance_index"])
    w = W[i]
    if p == 1.0 and k in (0, 2):  # importance [1, 0.1] keeps feature 0; [1, 10] keeps feature 1
        kept = 0 if k == 0 else 1
        check(abs(w[kept]) > 0.9 and abs(w[1 - kept]) < 0.1,
              f"dense corner, importance {'[1, 0.1]' if k == 0 else '[1, 10]'}: W = {np.round(w, 3)}, "
              f"keeps feature {kept} alone")
        corners += 1
    if p < 0.02 and k == 1:
        check(np.all(np.abs(np.abs(w) - 1) < 0.1) and abs(w[0] + w[1]) < 0.1,
              f"sparse corner, equal importance: W = {np.round(w, 3)}, an antipodal pair")
        corners += 1
check(corners == 3, f"{corners} of the 3 corners found in phase/instances.csv")
sys.exit(0 if ok else 1)
PY
[ $fails -eq 0 ] && echo "test_figure_facts: passed" || echo "test_figure_facts: $fails failure(s)"
exit $((fails > 0))
