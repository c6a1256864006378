#!/usr/bin/env bash
# run.sh: build tms and run every test (CTest). GPU tests exit 77 without a GPU and
# show as skipped. Extra arguments go to ctest (e.g. -L gpu, -R cli).
# Then, on every run (CI included): the suite again under ASan + UBSan + LSan
# (tests/sanitize.sh, build-asan/) and a time-bounded fuzzing pass (tests/fuzz/run.sh,
# build-fuzz/). TMS_SKIP_SANITIZE=1 and TMS_SKIP_FUZZ=1 skip them for a quick local run.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { # step NAME CMD...: run a step and say how long it took
    local name=$1 t0=$SECONDS rc=0
    shift
    "$@" || rc=$?
    echo "run.sh: $name took $((SECONDS - t0)) s$([ $rc -eq 0 ] || echo " and FAILED (exit $rc)")"
    return $rc
}
step "install-deps" bash scripts/install-deps.sh --tests
step "build" bash scripts/build.sh build
# the Python package's virtualenv (.venv/: pip, pinned versions), before the tests that use it
step "python venv" bash -c 'bash scripts/python-env.sh >/dev/null'
# the three test steps all run, so one CI log shows every failure; any failure fails run.sh
failed=()
step "tests" bash -c 'cd build && ctest --output-on-failure -j "$(nproc)" "$@"' ctest "$@" || failed+=(tests)
if [ "${TMS_SKIP_SANITIZE:-0}" = 1 ]; then
    echo "run.sh: sanitizer suite skipped (TMS_SKIP_SANITIZE=1)"
else
    step "sanitizer suite (ASan + UBSan + LSan)" bash tests/sanitize.sh "$@" || failed+=(sanitizers)
fi
if [ "${TMS_SKIP_FUZZ:-0}" = 1 ]; then
    echo "run.sh: fuzzing skipped (TMS_SKIP_FUZZ=1)"
else
    step "fuzzing" bash tests/fuzz/run.sh || failed+=(fuzzing)
fi
if [ ${#failed[@]} -gt 0 ]; then
    echo "run.sh: FAILED: ${failed[*]}"
    exit 1
fi
echo "run.sh: all passed"
