#!/usr/bin/env bash
# test_backend_select.sh TMS SCRATCH PROBE: `--backend cpu` never asks CUDA anything (no
# driver initialisation, no context: time and GPU memory on a shared node), while `auto`
# and `cuda` do. PROBE is libcuda_probe.so (cuda_probe.c), preloaded in place of the CUDA
# runtime's entry points: it logs each call and answers "no device". Exits 77 (skipped)
# when TMS does not load the shared libcudart, where preloading cannot intercept it.
set -u
tms=$1; scratch=$2; probe=$3
rm -rf "$scratch"; mkdir -p "$scratch"; cd "$scratch" || exit 1
if ! ldd "$tms" 2>/dev/null | grep -q 'libcudart\.so'; then
    echo "test_backend_select: skipped: $tms does not load the shared CUDA runtime"; exit 77
fi
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
cat > spec.json <<'JSON'
{"model": {"n_features": 5, "n_hidden": 2}, "train": {"steps": 20}, "output": {"images": false, "contact_sheet": false}}
JSON
run() { # run NAME BACKEND: train with the probe preloaded; its log in NAME.log
    local name=$1 backend=$2
    rm -f "$name.log"
    TMS_CUDA_PROBE_LOG=$PWD/$name.log LD_PRELOAD=$probe "$tms" train spec.json --out "$name" --backend "$backend" \
        --quiet 2> "$name.err"
}
run cpu cpu || fail "--backend cpu failed: $(cat cpu.err)"
[ ! -e cpu.log ] || fail "--backend cpu called CUDA: $(tr '\n' ' ' < cpu.log)"
grep -Eq '"backend":[[:space:]]*"cpu"' cpu/manifest.json || fail "--backend cpu: manifest does not say cpu"
# the probe works: auto asks CUDA, is told there is no device, and trains on the CPU
run auto auto || fail "--backend auto failed: $(cat auto.err)"
grep -q cudaGetDeviceCount auto.log 2>/dev/null || fail "--backend auto did not query CUDA (is the probe preloaded?)"
grep -Eq '"backend":[[:space:]]*"cpu"' auto/manifest.json || fail "--backend auto without a device did not fall back to cpu"
run cuda cuda; rc=$?
[ $rc -eq 1 ] && grep -q 'no CUDA GPU is usable' cuda.err || fail "--backend cuda without a device: rc $rc, $(cat cuda.err)"
grep -q cudaGetDeviceCount cuda.log 2>/dev/null || fail "--backend cuda did not query CUDA"
if [ $fails -ne 0 ]; then echo "test_backend_select: $fails failure(s)"; exit 1; fi
echo "test_backend_select: all checks passed"
