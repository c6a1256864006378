#!/usr/bin/env bash
# mutation_check.sh SOURCE_DIR SCRATCH [PYTHON]: show that the emulated CUDA (tests/emu)
# catches what it must. Copies the sources to SCRATCH, builds the emulated backend there
# (without sanitizers, for speed), checks that the unmutated tests pass, then plants each
# defect below with an exact patch (the patch must match exactly once, or the check fails:
# a mutation that no longer applies is reported, never skipped silently), rebuilds, and
# requires the named test to FAIL. Prints each mutation, the test that caught it, and the
# times. Exit 0 only if every mutant is caught and the unmutated build passes.
set -euo pipefail
src=$(cd "$1" && pwd)
scratch=$2
python=${3:-python3}
t_start=$(date +%s)
rm -rf "$scratch"
mkdir -p "$scratch/src"
for d in CMakeLists.txt host kernels tests; do cp -r "$src/$d" "$scratch/src/"; done
build=$scratch/build
jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -gt 2 ] && jobs=2

echo "mutation_check: configuring and building the emulated backend in $scratch"
cmake -S "$scratch/src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTMS_CUDA=OFF -DTMS_EMU_NO_SANITIZERS=ON \
    >"$scratch/configure.log" 2>&1 || { cat "$scratch/configure.log"; exit 1; }
targets=(test_emu_gpu_nanfill test_emu_gpu_batch test_emu_gpu_fused)
cmake --build "$build" -j "$jobs" --target "${targets[@]}" >"$scratch/build.log" 2>&1 || {
    tail -50 "$scratch/build.log"; exit 1; }
t_built=$(date +%s)
echo "mutation_check: built in $((t_built - t_start)) s"

# run_test TEST ORDER: 0 if the test passes
run_test() {
    local test=$1 order=$2
    TMS_EMU_ORDER=$order "$build/tests/test_emu_$test" >"$scratch/last.log" 2>&1
}

echo "mutation_check: the unmutated sources"
fail=0
for spec in "gpu_nanfill forward" "gpu_nanfill reverse" "gpu_nanfill shuffle:5" "gpu_batch shuffle:3"; do
    set -- $spec
    if run_test "$1" "$2"; then
        echo "  PASS emu_$1 (order $2)"
    else
        echo "  FAIL emu_$1 (order $2) on the unmutated sources:"
        tail -20 "$scratch/last.log"
        fail=1
    fi
done
[ $fail -eq 0 ] || { echo "mutation_check: the unmutated build fails; no mutation checked"; exit 1; }

# mutate NAME FILE OLD NEW TEST ORDERS: replace the one occurrence of OLD in FILE by NEW,
# rebuild TEST, run it under each of ORDERS (space-separated TMS_EMU_ORDER values); the
# mutant is caught when the test fails under at least one. Restores FILE.
survivors=0
mutate() {
    local name=$1 file=$2 old=$3 new=$4 test=$5 orders=$6 t0
    t0=$(date +%s)
    local path=$scratch/src/$file
    cp "$path" "$path.orig"
    if ! "$python" - "$path" "$old" "$new" <<'PY'
import sys
path, old, new = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
n = text.count(old)
if n != 1:
    sys.exit("the patch matches %d times (must be exactly once): %r" % (n, old))
open(path, "w").write(text.replace(old, new))
PY
    then
        echo "  NOT APPLIED ($name): $file changed; update the patch"
        survivors=$((survivors + 1))
        mv "$path.orig" "$path"
        return
    fi
    if ! cmake --build "$build" -j "$jobs" --target "test_emu_$test" >"$scratch/build_$name.log" 2>&1; then
        echo "  NOT BUILT ($name): the mutant does not compile; see $scratch/build_$name.log"
        survivors=$((survivors + 1))
    else
        local caught="" passed="" why="" order
        for order in $orders; do
            if run_test "$test" "$order"; then
                passed="$passed $order"
            else
                caught="$caught $order"
                [ -n "$why" ] ||
                    why=$(grep -m1 -E "tests/emu: ERROR|MISMATCH|FAIL|differ" "$scratch/last.log" || true)
            fi
        done
        if [ -n "$caught" ]; then
            echo "  CAUGHT   $name: emu_$test fails under order(s)${caught}" \
                 "${passed:+(passes under${passed})}" \
                 "($(( $(date +%s) - t0 )) s with the rebuild)"
            echo "           first sign: ${why:0:200}"
        else
            echo "  SURVIVED $name: emu_$test passed with the defect under${passed}"
            survivors=$((survivors + 1))
        fi
    fi
    mv "$path.orig" "$path"
    touch "$path"
}

echo "mutation_check: planting defects"
mutate "a: no __syncthreads in blockReduceSum" kernels/cuda_common.cuh \
    "    if (lane == 0) warp_sums[warp] = val;
    __syncthreads();" \
    "    if (lane == 0) warp_sums[warp] = val;" \
    gpu_nanfill "forward reverse shuffle:5"
mutate "a2: no __syncthreads in bias_grad_kernel1" kernels/bias_grad.cuh \
    "    partial[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();" \
    "    partial[threadIdx.y][threadIdx.x] = sum;" \
    gpu_nanfill "forward reverse shuffle:5"
mutate "b: wrong transpose of W in the tied dh GEMM" kernels/cuda_backend.cu \
    "gemm(c, CUBLAS_OP_T, CUBLAS_OP_N, m, B, n, W, n, mn, dy, n, Bn, 0.0f, dh, m, Bm)" \
    "gemm(c, CUBLAS_OP_N, CUBLAS_OP_N, m, B, n, W, n, mn, dy, n, Bn, 0.0f, dh, m, Bm)" \
    gpu_nanfill forward
mutate "c: instance offset dropped in sample_kernel1 (inst -> inst0)" kernels/sample.cuh \
    "float *xi = x + (size_t)inst * per_instance;" \
    "float *xi = x + (size_t)inst0 * per_instance;" \
    gpu_batch forward
mutate "d: step counter not advanced" kernels/cuda_backend.cu \
    "    state->step += 1;" \
    "" \
    gpu_nanfill forward
# the fused path (issue 12): its barriers between the tile's phases
mutate "e: no __syncthreads after the fused kernel's draw" kernels/fused_train.cuh \
    "            __syncthreads(); // the tile's x is complete" \
    "" \
    gpu_fused "forward reverse"
mutate "f: no __syncthreads before the fused kernel's owners add the partials" kernels/fused_train.cuh \
    "            __syncthreads(); // the partials are complete; x, h, dy, dz are free for the next tile" \
    "" \
    gpu_fused "forward reverse"

t_end=$(date +%s)
echo "mutation_check: $((t_end - t_start)) s in all ($((t_built - t_start)) s building)"
if [ $survivors -ne 0 ]; then
    echo "mutation_check: FAILED: $survivors mutation(s) not caught"
    exit 1
fi
echo "mutation_check: every planted defect was caught"
