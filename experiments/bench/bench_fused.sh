#!/usr/bin/env bash
# bench_fused.sh: the fused CUDA path (--cuda-path fused, issue 12) against the gemm path,
# PyTorch eager and torch.compile (torch_peer.py), the JAX peer (jax_peer.py: jit + vmap +
# lax.scan) and the Philox floor (fused_floor: the same random numbers, nothing else), on
# workload A (1,000 instances of 5 -> 2, 10,000 steps) and the phase-diagram sweep
# (experiments/specs/phase_2_1.json, 363 instances of 2 -> 1). Writes
# experiments/bench/RESULTS_fused.md (and .json with every repetition). bench_fused.py says
# what each column is.
#
#   bash experiments/bench/bench_fused.sh                 # the full benchmark (needs a GPU)
#   bash experiments/bench/bench_fused.sh --quick         # 1,000 steps, results in /tmp
#   bash experiments/bench/bench_fused.sh --only A --no-compile
#   bash experiments/bench/bench_fused.sh --smoke-peers   # the Python peers on the CPU, tiny (no GPU)
#
# Without an NVIDIA GPU it says so and exits 77 (nothing measured, nothing built). Unless TMS
# names a binary it builds tms and fused_floor into build-gpu/. Environment: TMS, FLOOR,
# PYTHON (default python3: the one with torch and jax), REPS (3), BUILD_DIR (build-gpu).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
for a in "$@"; do
    if [ "$a" = --smoke-peers ]; then exec "$PYTHON" experiments/bench/bench_fused.py --smoke-peers --python "$PYTHON"; fi
done
if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    echo "bench_fused: no NVIDIA GPU here (nvidia-smi -L lists none): nothing measured. Run it on a GPU machine" \
         "(the GPU verification, issue 11); --smoke-peers runs the Python peers on the CPU." >&2
    exit 77
fi
if [ -z "${TMS:-}" ]; then
    BUILD_DIR=${BUILD_DIR:-build-gpu}
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/tmp/tms_bench_fused_cmake.log 2>&1 \
        && cmake --build "$BUILD_DIR" -j "$(nproc)" --target tms fused_floor >>/tmp/tms_bench_fused_cmake.log 2>&1 \
        || { echo "bench_fused: building tms failed; see /tmp/tms_bench_fused_cmake.log" >&2; exit 1; }
    TMS=$BUILD_DIR/tms
    FLOOR=${FLOOR:-$BUILD_DIR/fused_floor}
fi
FLOOR=${FLOOR:-$(dirname "$TMS")/fused_floor}
exec "$PYTHON" experiments/bench/bench_fused.py --tms "$TMS" --floor "$FLOOR" --python "$PYTHON" \
    --reps "${REPS:-3}" "$@"
