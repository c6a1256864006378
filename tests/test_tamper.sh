#!/usr/bin/env bash
# test_tamper.sh TMS SCRATCH PYTHON [BACKEND]: damaged, edited and concurrently written run
# directories (issue 10, classes 2 and 4).
#   - resume of a checkpoint with a flipped byte in any of its files, an edited or
#     out-of-range step, a file without a checksum, a truncated array, an array of another
#     shape, order or byte order; of a .partial whose manifest's lr was edited (with and
#     without its checksum recomputed): exit 2 naming the file, the .partial left byte for
#     byte as it was. An array numpy re-saved (another header) resumes bit-identical.
#   - merge of shards with a flipped byte, a wrong-shape array, an edited or resealed
#     shard.count of 2e9 (refused at once under a 1 GB address-space limit), an inconsistent
#     first_instance, a missing checksum: exit 2, nothing written; re-saved arrays merge.
#   - concurrent writers of one --out: a second train (fresh, --force, --resume), merge or
#     render is refused at once (exit 2, naming the holder's pid) and the first run ends
#     bit-identical to a solo run; two runs started together: one wins, one is refused;
#     a lock left by SIGKILL does not block the next run.
set -u
tms=$1; scratch=$2; py=$3; backend=${4:-cpu}
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$scratch"; mkdir -p "$scratch"; cd "$scratch" || exit 1
t_start=$(date +%s.%N)
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
tamper() { "$py" "$here/tamper.py" "$@" || fail "tamper.py $*"; }
train() { "$tms" train "$@" --backend "$backend"; }
# as `bg_train ... &`: $! is tms's pid. One thread: the run must still be going while the
# test acts on it (results are bit-identical at any thread count), on a machine of any size
bg_train() { exec "$tms" train "$@" --backend "$backend" --threads 1; }
expect() { # expect CODE FRAGMENT CMD...: exit CODE and FRAGMENT in the message
    local code=$1 frag=$2; shift 2
    "$@" > out.txt 2> err.txt; local rc=$?
    [ $rc -eq "$code" ] && grep -qF -- "$frag" err.txt || fail "'$*': rc $rc, expected $code with '$frag': $(cat err.txt)"
}
same() { # same A B FILES...: bitwise-identical files
    local a=$1 b=$2; shift 2
    for f in "$@"; do cmp -s "$a/$f" "$b/$f" || fail "$a/$f and $b/$f differ"; done
}
STATE="W.npy b.npy optimizer/adam_m_W.npy optimizer/adam_v_b.npy loss.npy eval_loss.npy diverged_step.npy instances.csv"
STEPS=10000

cat > sweep.json <<'JSON'
{"name": "tamper", "model": {"n_features": 5, "n_hidden": 2},
 "data": {"density": [1, 0.3, 0.1, 0.03], "batch_size": 256},
 "train": {"steps": 1500, "seeds": 2, "log_every": 100}, "output": {"max_images": 2}}
JSON

# ---- a reference run, and a .partial stopped by SIGTERM with a checkpoint in it
train sweep.json --out ref --set train.steps=$STEPS --quiet || fail "reference run"
# the README's recipe: a file's checksum is the SHA-256 of its data bytes as numpy loads them
"$py" - <<'PY' || fail "manifest checksums do not match hashlib.sha256(np.load(f).tobytes())"
import hashlib, json
import numpy as np
files = json.load(open("ref/manifest.json"))["files"]
need = ["W.npy", "b.npy", "loss.npy", "eval_loss.npy", "diverged_step.npy"] + \
       [f"optimizer/adam_{k}_{t}.npy" for k in "mv" for t in "Wb"]
assert set(need) <= set(files), sorted(files)
for name, sha in files.items():
    assert hashlib.sha256(np.load(f"ref/{name}").tobytes()).hexdigest() == sha, name
PY
bg_train sweep.json --out src --set train.steps=$STEPS --checkpoint-every 500 --quiet 2> src_stop.txt &
pid=$!
for _ in $(seq 1 1000); do [ -e src.partial/checkpoint/checkpoint.json ] && break; sleep 0.01; done
kill -TERM $pid; wait $pid; rc=$?
[ $rc -eq 3 ] && [ -e src.partial/checkpoint/checkpoint.json ] || { fail "no checkpoint to tamper with (rc $rc)"; exit 1; }
ck=src.partial/checkpoint
"$py" -c "import json; assert 0 < json.load(open('$ck/checkpoint.json'))['step'] < $STEPS" || fail "checkpoint step"

# refused: exit 2 with FRAGMENT, and the .partial byte for byte as it was
n_case=0
refused() { # refused FRAGMENT CMD...  (on a copy prepared in case$n_case)
    local frag=$1; shift
    cp -a "case$n_case.partial" "case$n_case.before"
    expect 2 "$frag" "$tms" train --resume "case$n_case" --backend "$backend" --quiet
    diff -r "case$n_case.partial" "case$n_case.before" > /dev/null || fail "case $n_case: the refused resume changed the .partial"
    [ ! -e "case$n_case" ] || fail "case $n_case: a refused resume published a run"
    grep -qF "is left as it was" err.txt || fail "case $n_case: no 'left as it was' in: $(cat err.txt)"
}
fresh() { n_case=$((n_case + 1)); cp -a src.partial "case$n_case.partial"; c=case$n_case.partial/checkpoint; }

# a flipped byte in every file of the checkpoint
for f in $(cd $ck && find . -type f | sed 's|^\./||' | sort); do
    fresh; tamper flip "$c/$f"
    case $f in
        *.json) refused "checkpoint.json" ;;
        *) refused "$f: the data's SHA-256" ;;
    esac
done
# a flipped byte in an array's header
fresh; tamper flip "$c/W.npy" 20; refused "W.npy"
# the step edited (checksum not recomputed; then recomputed with an out-of-range step)
fresh; tamper edit "$c/checkpoint.json" step=$STEPS; refused "does not match its checksum"
fresh; tamper edit "$c/checkpoint.json" --reseal step=$((STEPS + 1)); refused "\"step\" is $((STEPS + 1)); expected an integer in [0, $STEPS]"
fresh; tamper edit "$c/checkpoint.json" --reseal wall_seconds=-1; refused "wall_seconds"
# a checksum missing: of a file, of checkpoint.json itself, of the manifest
fresh; tamper edit "$c/checkpoint.json" --reseal files:W.npy=DELETE; refused "W.npy: no checksum recorded"
fresh; tamper edit "$c/checkpoint.json" sha256=DELETE; refused "has no checksum"
fresh; tamper edit "case$n_case.partial/manifest.json" sha256=DELETE; refused "manifest.json has no checksum"
# a truncated array; arrays of another shape, order or byte order
fresh; tamper truncate "$c/optimizer/adam_v_W.npy" 200; refused "truncated"
fresh; tamper resave "$c/W.npy" reshape; refused "shape (8, 5, 2) where the run's spec gives (8, 2, 5)"
fresh; tamper resave "$c/W.npy" fortran; refused "fortran_order True"
fresh; tamper resave "$c/b.npy" bigendian; refused "big-endian"
# the manifest's lr edited; then with its checksum recomputed (the checkpoint's spec checksum differs)
fresh; tamper edit "case$n_case.partial/manifest.json" spec:optimizer:lr=0.002; refused "does not match its checksum"
fresh; tamper edit "case$n_case.partial/manifest.json" --reseal spec:optimizer:lr=0.002; refused "belongs to another spec"
fresh; tamper edit "case$n_case.partial/manifest.json" --reseal shard:first_instance=2; refused "\"first_instance\" is 2"
fresh; tamper edit "case$n_case.partial/manifest.json" --reseal steps_completed=$((STEPS + 5)); refused "steps_completed"
# controls: the same edits' tools leave a good checkpoint good: resealed unchanged, and arrays
# numpy re-saved with another header version resume and end bit-identical to the solo run
fresh; tamper edit "case$n_case.partial/manifest.json" --reseal
tamper edit "$c/checkpoint.json" --reseal
tamper resave "$c/W.npy" v2; tamper resave "$c/optimizer/adam_m_b.npy" same; tamper resave "$c/diverged_step.npy" v2
cmp -s "$c/W.npy" src.partial/checkpoint/W.npy && fail "the v2 re-save did not change the header"
train --resume "case$n_case" --quiet 2> err.txt || fail "resume of a re-saved checkpoint: $(cat err.txt)"
same ref "case$n_case" $STATE
# a .partial already complete (stopped just before its final rename) is checked and published
cp -a ref done.partial; tamper flip done.partial/eval_loss.npy
n_case=$((n_case + 1)); mv done.partial "case$n_case.partial"; refused "eval_loss.npy: the data's SHA-256"
cp -a ref done.partial
train --resume done --quiet 2> err.txt && [ -d done ] && [ ! -e done.partial ] || fail "complete .partial not published: $(cat err.txt)"
same ref done $STATE
# the untouched .partial resumes bit-identical
train --resume src --quiet || fail "resume of the untouched checkpoint"
same ref src $STATE

# ---- merge: damaged and inconsistent shards
for k in 0 1 2; do train sweep.json --out s$k --shard $k/3 --quiet || fail "shard $k/3"; done
train sweep.json --out whole --quiet || fail "whole run"
mk() { rm -rf t0 t1 t2; cp -a s0 t0; cp -a s1 t1; cp -a s2 t2; }
merge_refused() { # merge_refused FRAGMENT: merge t0 t1 t2 exits 2 with FRAGMENT, writes nothing
    expect 2 "$1" "$tms" merge mout t0 t1 t2
    [ ! -e mout ] && [ ! -e mout.partial ] && [ ! -e mout.lock ] || fail "refused merge ($1) left output"
}
mk; tamper flip t1/eval_loss.npy; merge_refused "t1/eval_loss.npy: the data's SHA-256"
mk; tamper flip t2/optimizer/adam_m_W.npy; merge_refused "adam_m_W.npy"
mk; tamper resave t1/W.npy reshape; merge_refused "t1/W.npy: shape (2, 5, 2) where the run's spec gives (2, 2, 5)"
mk; tamper edit t1/manifest.json shard:count=2000000000; merge_refused "t1/manifest.json: its content does not match its checksum"
mk; tamper edit t1/manifest.json files:W.npy=DELETE; merge_refused "does not match its checksum"
mk; tamper edit t1/manifest.json --reseal files:W.npy=DELETE; merge_refused "t1/W.npy: no checksum recorded"
mk; tamper edit t1/manifest.json --reseal shard:first_instance=0; merge_refused "\"first_instance\" is 0"
mk; tamper edit t2/manifest.json --reseal steps_completed=10; merge_refused "steps_completed"
# a shard count of 2e9 (with consistent checksums): refused at once, with no allocation of
# its size (8 GB before) under a 1 GB address-space limit
mk; for t in t0 t1 t2; do tamper edit $t/manifest.json --reseal shard:count=2000000000; done
# (a sanitizer build reserves terabytes of shadow address space and cannot start under the
# limit: there the refusal and its time are checked without it)
limit="ulimit -v 1000000"
(ulimit -v 1000000; "$tms" --version > /dev/null 2>&1) || { limit=true; echo "note: tms cannot start under ulimit -v (sanitizer build?); merge of 2e9 shards checked without it" >&2; }
t0s=$(date +%s.%N)
($limit; "$tms" merge mout t0 t1 t2 2> err.txt); rc=$?
secs=$("$py" -c "import time; print(round(time.time() - $t0s, 2))")
[ $rc -eq 2 ] && grep -qF "missing shards 3/2000000000, 4/2000000000" err.txt && grep -qF "and 1999999989 more" err.txt ||
    fail "shard.count 2e9: rc $rc: $(cat err.txt)"
"$py" -c "assert $secs < 3, $secs" || fail "shard.count 2e9 took $secs s"
mk; tamper edit t1/manifest.json --reseal shard:count=2000000000
merge_refused "t1 is shard 1/2000000000, but t0 is one of 3 shards"
# re-saved by numpy with another header: merges to the single-process run
mk; tamper resave t1/W.npy v2; tamper resave t2/eval_loss.npy same
"$tms" merge mgood t0 t1 t2 2> err.txt || fail "merge of re-saved shards: $(cat err.txt)"
same whole mgood $STATE
# render refuses a damaged complete run
cp -a whole wdam; tamper flip wdam/W.npy
expect 2 "wdam/W.npy: the data's SHA-256" "$tms" render wdam

# ---- concurrent writers of one --out
bg_train sweep.json --out conc --set train.steps=$STEPS --checkpoint-every 500 --quiet &
apid=$!
for _ in $(seq 1 1000); do [ -e conc.partial/manifest.json ] && break; sleep 0.01; done
[ -e conc.lock ] || fail "no conc.lock while conc trains"
for args in "sweep.json --out conc" "sweep.json --out conc --force" "--resume conc"; do
    t0s=$(date +%s.%N)
    expect 2 "conc is being written by another process: held by another tms process (pid $apid" train $args --quiet
    secs=$("$py" -c "import time; print(round(time.time() - $t0s, 2))")
    "$py" -c "assert $secs < 2" || fail "refusing 'train $args' took $secs s"
done
expect 2 "pid $apid" "$tms" merge conc s0 s1 s2
wait $apid || fail "the first writer of conc failed"
same ref conc $STATE
[ ! -e conc.lock ] || fail "conc.lock left after a clean exit"
# render is a writer too (it redraws images); the lock is taken and released
"$tms" render conc 2> err.txt || fail "render: $(cat err.txt)"
# two fresh runs started together: exactly one trains, the other is refused
bg_train sweep.json --out race --set train.steps=$STEPS --quiet 2> race1.txt & p1=$!
bg_train sweep.json --out race --set train.steps=$STEPS --quiet 2> race2.txt & p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
[ $((r1 + r2)) -eq 2 ] && [ $((r1 * r2)) -eq 0 ] || fail "race: exit codes $r1 and $r2, expected 0 and 2: $(cat race1.txt race2.txt)"
grep -qF "being written by another process" race1.txt race2.txt || fail "race: no refusal message"
same ref race $STATE
# a lock file left by SIGKILL does not block the next writer
bg_train sweep.json --out stale --set train.steps=$STEPS --checkpoint-every 500 --quiet &
pid=$!
for _ in $(seq 1 1000); do [ -e stale.partial/checkpoint/checkpoint.json ] && break; sleep 0.01; done
kill -KILL $pid; wait $pid 2>/dev/null
[ -e stale.lock ] && grep -q "pid $pid" stale.lock || fail "SIGKILL: expected stale.lock naming pid $pid"
train --resume stale --quiet 2> err.txt || fail "resume after SIGKILL with a stale lock: $(cat err.txt)"
same ref stale $STATE
[ ! -e stale.lock ] || fail "stale.lock left after the resume"

secs=$("$py" -c "import time; print(round(time.time() - $t_start, 1))")
if [ $fails -ne 0 ]; then echo "test_tamper: $fails failure(s) ($secs s)"; exit 1; fi
echo "test_tamper: all checks passed ($n_case tampered checkpoints; $secs s)"
