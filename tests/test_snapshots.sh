#!/usr/bin/env bash
# test_snapshots.sh TMS SCRATCH PYTHON [BACKEND]: output.snapshots (issue 16) on BACKEND (cpu,
# the default, cuda, or fused: --backend cuda --cuda-path fused, the fused CUDA path; every
# `tms train` passes them; on cuda and fused, run on the
# emulated GPU of tests/emu).
#   - the last snapshot is the final parameters, bit for bit; a snapshot of step s is bit for
#     bit the final parameters of a separate run of s steps (the same spec otherwise); step 0
#     is the initialisation (zero biases, the same W whatever the run's length);
#   - a count resolves to the documented steps (log and linear), with the steps in
#     snapshots/steps.npy and the manifest;
#   - shards merged give the single-process run's snapshot files bit for bit;
#   - SIGTERM part-way (some snapshots taken, some not) and --resume give the uninterrupted
#     run's snapshot files bit for bit, as does resuming a SIGKILLed run from its checkpoint;
#   - a damaged snapshot file is refused (exit 2); bad output.snapshots values are exit 2 with
#     a message naming the field and value, and nothing written;
#   - data.relative_density trains on the CPU and is recorded; --backend cuda refuses it (exit 2).
# Sizes: 5 -> 2 (tied with b; untied with a hidden ReLU for W2 and b1), 8 instances; on cpu
# batch 256 and a 20000-step run to interrupt, on cuda batch 32 and 600 steps.
set -u
tms=$1; scratch=$2; py=$3; backend=${4:-cpu}
case $backend in cpu|cuda) flags=(--backend "$backend") ;; fused) flags=(--backend cuda --cuda-path fused) ;;
    *) echo "test_snapshots: BACKEND must be cpu, cuda or fused, not '$backend'" >&2; exit 2 ;; esac
if [ "$backend" = cpu ]; then batch=256; steps=400; long=20000; else batch=32; steps=120; long=600; fi
tmsb() { "$tms" "$@" "${flags[@]}"; }
rm -rf "$scratch"; mkdir -p "$scratch"; cd "$scratch" || exit 1
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
same() { # same A B FILES...: bitwise-identical files
    local a=$1 b=$2; shift 2
    for f in "$@"; do cmp -s "$a/$f" "$b/$f" || fail "$a/$f and $b/$f differ"; done
}
expect() { # expect CODE FRAGMENT CMD...
    local code=$1 frag=$2; shift 2
    "$@" 2> err.txt; local rc=$?
    [ $rc -eq "$code" ] && grep -qF -- "$frag" err.txt || fail "'$*': rc $rc, expected $code with '$frag': $(cat err.txt)"
}

cat > tied.json <<JSON
{"name": "snap", "model": {"n_features": 5, "n_hidden": 2},
 "data": {"density": [1, 0.1], "batch_size": $batch},
 "train": {"steps": $steps, "seeds": 4, "log_every": 50},
 "output": {"images": false, "contact_sheet": false, "snapshots": [0, 7, 50, $((steps * 5 / 8)), $steps]}}
JSON
cat > untied.json <<JSON
{"name": "snap_untied", "model": {"n_features": 5, "n_hidden": 2, "decoder": "untied", "hidden_activation": "relu"},
 "data": {"density": [1, 0.1], "batch_size": $batch},
 "train": {"steps": $steps, "seeds": 2, "log_every": 50},
 "output": {"images": false, "contact_sheet": false, "snapshots": [0, 7, $((steps * 5 / 8)), $steps]}}
JSON

# ---- values: last = final, step s = a run of s steps, step 0 = the initialisation
mid=$((steps * 5 / 8))
for spec in tied untied; do
    tmsb train $spec.json --out $spec --quiet || fail "$spec run"
    tmsb train $spec.json --out ${spec}_mid --set train.steps=$mid --set output.snapshots=[0] --quiet || fail "$spec: $mid steps"
    tmsb train $spec.json --out ${spec}_7 --set train.steps=7 --set output.snapshots=[0] --quiet || fail "$spec: 7 steps"
    "$py" - $spec $mid <<'PY' || fail "$spec: snapshot values"
import json, sys
import numpy as np
run, mid = sys.argv[1], int(sys.argv[2])
m = json.load(open(f"{run}/manifest.json"))
steps = np.load(f"{run}/snapshots/steps.npy")
assert steps.dtype == np.int64 and list(steps) == m["snapshots"]["steps"] == m["spec"]["output"]["snapshots"], steps
assert m["snapshots"]["taken"] == len(steps)
names = list(m["tensors"])
assert set(names) == ({"W", "b"} if run == "tied" else {"W", "W2", "b1", "b"}), names
k_mid, k7 = list(steps).index(mid), list(steps).index(7)
for name in names:
    snap, final = np.load(f"{run}/snapshots/{name}.npy"), np.load(f"{run}/{name}.npy")
    assert snap.shape == (len(steps),) + final.shape and snap.dtype == np.float32, (name, snap.shape)
    assert np.array_equal(snap[-1], final), f"{name}: last snapshot != final parameters"
    assert np.array_equal(snap[k_mid], np.load(f"{run}_mid/{name}.npy")), f"{name}: step {mid} != a run of {mid} steps"
    assert np.array_equal(snap[k7], np.load(f"{run}_7/{name}.npy")), f"{name}: step 7 != a run of 7 steps"
    # step 0: the initialisation, the same whatever the run's length; it is not the step-7 state
    assert np.array_equal(snap[0], np.load(f"{run}_mid/snapshots/{name}.npy")[0]), f"{name}: step 0 differs"
    if name.startswith("b"):
        assert not snap[0].any(), f"{name} is not zero at step 0"
    else:
        assert snap[0].std() > 0.1 and not np.array_equal(snap[0], snap[k7]), f"{name} at step 0"
PY
done

# ---- a count: the steps it resolves to
tmsb train tied.json --out count --set output.snapshots=4 --set train.steps=1000 --quiet || fail "count run"
tmsb train tied.json --out linear --set output.snapshots=4 --set output.snapshot_spacing=linear --set train.steps=1000 --quiet ||
    fail "linear count run"
"$py" - <<'PY' || fail "snapshot counts"
import json
import numpy as np
for run, want in (("count", [1, 10, 100, 1000]), ("linear", [250, 500, 750, 1000])):
    steps = np.load(f"{run}/snapshots/steps.npy")
    assert list(steps) == want and json.load(open(f"{run}/manifest.json"))["snapshots"]["steps"] == want, (run, steps)
    assert np.array_equal(np.load(f"{run}/snapshots/W.npy")[-1], np.load(f"{run}/W.npy"))
PY

# ---- shards and merge
for k in 0 1 2; do tmsb train tied.json --out shard$k --shard $k/3 --quiet || fail "shard $k/3"; done
"$tms" merge merged shard1 shard2 shard0 2>/dev/null || fail "merge"
same tied merged snapshots/steps.npy snapshots/W.npy snapshots/b.npy W.npy b.npy
"$py" -c "import numpy as np; assert np.load('shard1/snapshots/W.npy').shape[:2] == (5, 4)" || fail "shard 1/3: snapshot shape"

# ---- SIGTERM part-way, then --resume; SIGKILL, then --resume from the checkpoint
cat > long.json <<JSON
{"name": "snap_long", "model": {"n_features": 5, "n_hidden": 2},
 "data": {"density": [1, 0.1], "batch_size": $batch},
 "train": {"steps": $long, "seeds": 4, "log_every": $((long / 100))},
 "output": {"images": false, "contact_sheet": false, "snapshots": 24}}
JSON
SNAPS="snapshots/steps.npy snapshots/W.npy snapshots/b.npy W.npy b.npy loss.npy"
tmsb train long.json --out ref --quiet || fail "uninterrupted run"
wait_for() { # wait_for FILE PID: until FILE exists (or the process ended)
    for _ in $(seq 1 600); do [ -e "$1" ] && return 0; kill -0 "$2" 2>/dev/null || return 1; sleep 0.02; done; return 1
}
"$tms" train long.json --out term --checkpoint-every $((long / 30)) "${flags[@]}" --quiet &
pid=$!
wait_for term.partial/checkpoint/checkpoint.json $pid; kill -TERM $pid 2>/dev/null; wait $pid; rc=$?
if [ $rc -eq 3 ]; then
    "$py" -c "
import json; m = json.load(open('term.partial/manifest.json'))
assert m['status'] == 'interrupted' and 0 < m['snapshots']['taken'] < 24, m['snapshots']['taken']" ||
        fail "SIGTERM: the interrupted manifest does not show some snapshots taken"
    tmsb train --resume term --quiet || fail "resume after SIGTERM"
    same ref term $SNAPS
elif [ $rc -eq 0 ]; then
    echo "note: the run finished before SIGTERM arrived; SIGTERM not exercised" >&2
else
    fail "SIGTERM: exit code $rc, expected 3"
fi
"$tms" train long.json --out kill --checkpoint-every $((long / 30)) "${flags[@]}" --quiet &
pid=$!
wait_for kill.partial/checkpoint/checkpoint.json $pid; sleep 0.1; kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
if [ -d kill.partial ]; then
    tmsb train --resume kill --quiet || fail "resume after SIGKILL"
    same ref kill $SNAPS
else
    echo "note: the run finished before SIGKILL arrived; resume after SIGKILL not exercised" >&2
fi

# ---- damaged files and bad values
cp -r tied damaged
"$py" -c "
import numpy as np; a = np.load('damaged/snapshots/W.npy'); a[1, 0, 0, 0] += 1; np.save('damaged/snapshots/W.npy', a)"
expect 2 "snapshots/W.npy" "$tms" merge dmerged damaged
expect 2 "snapshots/W.npy" "$tms" render damaged
[ ! -e dmerged ] || fail "a refused merge left output"
expect 2 "output.snapshots: -3 is not allowed; expected a count from 0 to 4096" tmsb train tied.json --out bad1 --set output.snapshots=-3
expect 2 "output.snapshots[1]: 9 is not allowed; expected a step after the one before it (50)" \
    tmsb train tied.json --out bad2 --set 'output.snapshots=[50,9]'
expect 2 "output.snapshots[0]: $((steps + 1)) is not allowed; expected a step: an integer from 0 (the initialisation) to train.steps ($steps)" \
    tmsb train tied.json --out bad3 --set "output.snapshots=[$((steps + 1))]"
expect 2 "output.snapshot_spacing: \"exp\" is not allowed; expected one of: log, linear" \
    tmsb train tied.json --out bad4 --set output.snapshots=3 --set output.snapshot_spacing=exp
for d in bad1 bad2 bad3 bad4; do [ ! -e $d ] && [ ! -e $d.partial ] || fail "$d: a refused spec left output"; done

# ---- data.relative_density (the perturbation figure's per-feature density): the CPU draws it,
# the CUDA backend refuses it rather than train other data
if [ "$backend" = cpu ]; then
    tmsb train tied.json --out rd --set 'data.relative_density=[1,1,1,1,0.5]' --set train.steps=20 --set 'output.snapshots=[0,20]' --quiet ||
        fail "a run with data.relative_density"
    "$py" -c "import json; assert json.load(open('rd/manifest.json'))['spec']['data']['relative_density'] == [1, 1, 1, 1, 0.5]" ||
        fail "relative_density not in the manifest"
else
    expect 2 "--backend cuda: the spec's data.relative_density is drawn only by the CPU backend" \
        tmsb train tied.json --out rd --set 'data.relative_density=[1,1,1,1,0.5]'
    [ ! -e rd ] && [ ! -e rd.partial ] || fail "a refused relative_density run left output"
    # --backend auto (a usable GPU here) trains it on the CPU and says why a CUDA flag is moot
    "$tms" train tied.json --out rd_auto --set 'data.relative_density=[1,1,1,1,0.5]' --set train.steps=20 --set 'output.snapshots=[0,20]' \
        --cuda-path gemm --quiet 2>rd_auto.err || fail "auto with data.relative_density"
    grep -qF -- "--cuda-path gemm has no effect: data.relative_density is drawn only by the CPU" rd_auto.err ||
        fail "auto with data.relative_density: the note does not give the reason: $(cat rd_auto.err)"
fi

[ $fails -eq 0 ] && echo "test_snapshots ($backend): all checks passed" || { echo "test_snapshots ($backend): $fails failure(s)"; exit 1; }
