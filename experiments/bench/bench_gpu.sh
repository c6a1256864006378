#!/usr/bin/env bash
# bench_gpu.sh: tms --backend cuda against the PyTorch peer (eager, and torch.compile where
# the installed torch has it) on three workloads, each with a tied and an untied decoder:
#   A  n=5,    m=2,   1000 instances, 10,000 steps
#   B  n=100,  m=20,   100 instances, 10,000 steps
#   C  n=1000, m=100,   16 instances,  1,000 steps
# batch 1024, density 0.05 for every instance, importance 1. Writes
# experiments/bench/RESULTS_gpu.md (and RESULTS_gpu.json with every repetition).
#
#   bash experiments/bench/bench_gpu.sh --quick        # smoke run, steps / 10, results in /tmp
#   bash experiments/bench/bench_gpu.sh                # the full benchmark
#   bash experiments/bench/bench_gpu.sh --only A --results /some/where/RESULTS_gpu.md
#   bash experiments/bench/bench_gpu.sh --only B,C --merge /some/where/RESULTS_gpu.json
#
# Unless TMS names a binary, it first builds tms into build-gpu/ (a folder of its own, so
# a CPU-only build/ is never picked up by mistake). Environment (optional): TMS, PYTHON
# (default python3), REPS (3), BUILD_DIR (build-gpu). Arguments go to bench.py gpu
# (--quick, --only, --no-compile, --compile-reps, --merge, --results, --keep).
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-python3}
if [ -z "${TMS:-}" ]; then
    BUILD_DIR=${BUILD_DIR:-build-gpu}
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >"/tmp/tms_bench_cmake.log" 2>&1 \
        && cmake --build "$BUILD_DIR" -j "$(nproc)" >>"/tmp/tms_bench_cmake.log" 2>&1 \
        || { echo "bench_gpu: building tms failed; see /tmp/tms_bench_cmake.log" >&2; tail -20 /tmp/tms_bench_cmake.log >&2; exit 1; }
    TMS=$BUILD_DIR/tms
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >&2 || echo "bench_gpu: nvidia-smi failed" >&2
exec "$PYTHON" experiments/bench/bench.py gpu --tms "$TMS" --python "$PYTHON" --reps "${REPS:-3}" "$@"
