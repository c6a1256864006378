#!/usr/bin/env bash
# run.sh: build tms and run every test (CTest). GPU tests exit 77 without a GPU and
# show as skipped. Extra arguments go to ctest (e.g. -L gpu, -R cli).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --tests
bash scripts/build.sh build
cd build
ctest --output-on-failure -j "$(nproc)" "$@"
