#!/usr/bin/env bash
# build.sh [BUILD_DIR [CMAKE_ARGS...]]: configure and build tms (Release). Uses the CUDA toolkit
# when nvcc is found (on PATH or in /usr/local/cuda); the CPU backend is always built. Extra
# arguments go to cmake, e.g. `build.sh build-asan -DTMS_SANITIZE=ON -DTMS_CUDA=OFF`.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH=/usr/local/cuda/bin:$PATH
fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
