#!/usr/bin/env bash
# test_cuda_path.sh TMS SCRATCH PYTHON [MODE]: `tms train --cuda-path auto|fused|gemm` end to end.
# MODE plain (the default: the product tms, with or without CUDA, no GPU needed):
#   - bad uses exit 2 with a message naming the flag, the value and what is allowed, and
#     leave no run directory: an unknown value, the flag twice, fused or gemm with
#     --backend cpu, --tf32 with fused, fused on a model too large for it (the message names
#     the limit; decided from the spec, before any GPU is asked);
#   - --cuda-path auto with --backend cpu trains; on a machine without a usable GPU,
#     --cuda-path fused under --backend auto trains on the CPU and says the flag had no effect.
# MODE emu (TMS is tms_emu, the CUDA backend on the emulated CUDA of tests/emu):
#   - the manifest records the path: "fused" for --cuda-path fused, "gemm" for gemm and for
#     auto (the measured rule picks gemm until a GPU has confirmed the fused path);
#   - the fused run's evaluation losses agree with the gemm run's (1e-3 relative) and with
#     the CPU's; two fused runs are bit-identical;
#   - shards trained on the fused path and merged equal the fused single-process run bit for
#     bit; SIGTERM + --resume on the fused path finishes bit-identical to an uninterrupted run.
set -u
tms=$1; scratch=$2; py=$3; mode=${4:-plain}
rm -rf "$scratch"; mkdir -p "$scratch"; cd "$scratch" || exit 1
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

cat > small.json <<'JSON'
{"name": "paths", "model": {"n_features": 5, "n_hidden": 2},
 "data": {"density": [1, 0.1], "batch_size": 64},
 "train": {"steps": 60, "seeds": 2, "log_every": 20}, "output": {"images": false}}
JSON
cat > big.json <<'JSON'
{"name": "big", "model": {"n_features": 400, "n_hidden": 40, "decoder": "untied", "hidden_activation": "relu"},
 "data": {"density": 0.1, "batch_size": 64}, "train": {"steps": 10}, "output": {"images": false}}
JSON

refuse() { # name expected-fragment args...
    local name=$1 frag=$2; shift 2
    "$tms" train "$@" --out "run_$name" --quiet 2> "err_$name.txt"; local rc=$?
    [ $rc -eq 2 ] || fail "$name: exit code $rc, expected 2 ($(cat "err_$name.txt"))"
    grep -qF -- "$frag" "err_$name.txt" || fail "$name: message '$(cat "err_$name.txt")' lacks '$frag'"
    [ ! -e "run_$name" ] && [ ! -e "run_$name.partial" ] || fail "$name: left a run directory"
}

if [ "$mode" = plain ]; then
    refuse value "--cuda-path 'cuBLAS': expected one of: auto, fused, gemm" small.json --cuda-path cuBLAS
    refuse empty "--cuda-path '': expected one of: auto, fused, gemm" small.json --cuda-path ''
    refuse twice "--cuda-path given twice" small.json --cuda-path fused --cuda-path gemm
    refuse cpu_fused "--cuda-path fused with --backend cpu" small.json --cuda-path fused --backend cpu
    refuse cpu_gemm "--cuda-path gemm with --backend cpu" small.json --cuda-path gemm --backend cpu
    refuse tf32 "--tf32 with --cuda-path fused" small.json --cuda-path fused --tf32
    refuse too_big "too large for the fused path" big.json --cuda-path fused
    grep -qF "n 400, m 40" err_too_big.txt && grep -qF "limit of 12032 floats (47 KiB)" err_too_big.txt ||
        fail "too large: the message must name the model and the limit: $(cat err_too_big.txt)"
    "$tms" train small.json --out run_cpu --backend cpu --cuda-path auto --quiet || fail "--cuda-path auto --backend cpu"
    "$py" -c "import json,sys; m = json.load(open('run_cpu/manifest.json')); assert m['backend'] == 'cpu' and 'cuda_path' not in m" ||
        fail "a CPU run's manifest has no cuda_path"
    "$tms" train --help | grep -q -- '--cuda-path' || fail "train --help lists --cuda-path"
    # without a usable GPU, auto trains on the CPU and says the path had no effect
    "$tms" train small.json --out run_auto --cuda-path fused --quiet 2> err_auto.txt || fail "auto with fused: $(cat err_auto.txt)"
    if "$py" -c "import json,sys; sys.exit(json.load(open('run_auto/manifest.json'))['backend'] != 'cpu')"; then
        grep -qF -- "--cuda-path fused has no effect" err_auto.txt || fail "auto fell back to the CPU silently"
    fi
else
    run() { "$tms" train "$@" --backend cuda --quiet || fail "train $*"; }
    run small.json --out fused1 --cuda-path fused
    run small.json --out fused2 --cuda-path fused
    run small.json --out gemm --cuda-path gemm
    run small.json --out auto
    "$tms" train small.json --out cpu --backend cpu --quiet || fail "cpu run"
    for f in W.npy b.npy optimizer/adam_m_W.npy optimizer/adam_v_b.npy loss.npy eval_loss.npy; do
        cmp -s "fused1/$f" "fused2/$f" || fail "two fused runs differ in $f"
    done
    "$py" - <<'PY' || fail "manifests and losses"
import json
import numpy as np
path = {d: json.load(open(f"{d}/manifest.json")).get("cuda_path") for d in ("fused1", "gemm", "auto")}
assert path == {"fused1": "fused", "gemm": "gemm", "auto": "gemm"}, path
for d in ("gemm", "cpu"):
    a, b = np.load("fused1/eval_loss.npy"), np.load(f"{d}/eval_loss.npy")
    assert np.allclose(a, b, rtol=1e-3, atol=1e-7), (d, a, b)
print("manifests record the path; fused evaluation losses agree with gemm and cpu")
PY
    # shards and merge
    run small.json --out shard0 --cuda-path fused --shard 0/2
    run small.json --out shard1 --cuda-path fused --shard 1/2
    "$tms" merge merged shard1 shard0 2>/dev/null || fail "merge of fused shards"
    for f in W.npy b.npy optimizer/adam_v_W.npy eval_loss.npy; do
        cmp -s "fused1/$f" "merged/$f" || fail "merged fused shards differ from the single run in $f"
    done
    # SIGTERM, then --resume
    run small.json --out ref --cuda-path fused --set train.steps=3000
    "$tms" train small.json --out term --cuda-path fused --set train.steps=3000 --backend cuda --quiet &
    pid=$!; sleep 0.7; kill -TERM $pid; wait $pid; rc=$?
    if [ $rc -eq 3 ]; then
        "$tms" train --resume term --backend cuda --cuda-path fused --quiet || fail "resume after SIGTERM"
        for f in W.npy b.npy optimizer/adam_m_b.npy loss.npy eval_loss.npy; do
            cmp -s "ref/$f" "term/$f" || fail "SIGTERM + --resume differs from the uninterrupted fused run in $f"
        done
        "$py" -c "import json; assert json.load(open('term/manifest.json'))['cuda_path'] == 'fused'" || fail "resumed manifest"
    elif [ $rc -eq 0 ]; then
        echo "note: the run finished before SIGTERM arrived; SIGTERM not exercised" >&2
    else
        fail "SIGTERM: exit code $rc, expected 3"
    fi
fi

if [ $fails -ne 0 ]; then echo "test_cuda_path ($mode): $fails failure(s)"; exit 1; fi
echo "test_cuda_path ($mode): all checks passed"
