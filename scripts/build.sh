#!/usr/bin/env bash
# build.sh [BUILD_DIR]: configure and build tms (Release). Uses the CUDA toolkit when
# nvcc is found (on PATH or in /usr/local/cuda); the CPU backend is always built.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH=/usr/local/cuda/bin:$PATH
fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)"
