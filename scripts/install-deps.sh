#!/usr/bin/env bash
# install-deps.sh [--tests]: install what tms needs from Debian's packages, only
# what is missing (cairo and the DejaVu font file draw the PNG pictures). With --tests, also
# what the tests need: numpy and pandas for the output checks (the test scripts' system python3),
# slurm-wlm + munge for the slurm test (which starts its own daemons
# in a scratch folder; the packages' own services are never started here),
# g++ and libboost-context-dev (fibers) for the emulated CUDA of tests/emu, which runs
# the CUDA backend's real sources on the CPU, and clang with Debian 12's clang 14 runtimes
# (libFuzzer and the sanitizers: libclang-rt-14-dev; OpenMP: libomp-14-dev) for the sanitizer
# build and the fuzzers (tests/sanitize.sh, tests/fuzz/run.sh), chromium + chromium-driver
# for the report's browser test (tests/test_report.sh, selenium), and python3-venv for the
# project's virtualenv (scripts/python-env.sh: the tmslab package and its tests, pip-installed).
# The CUDA toolkit is optional: with nvcc on PATH (or in /usr/local/cuda) the
# CUDA backend is built too.
set -euo pipefail
need=(cmake make gcc pkg-config git libcjson-dev libstb-dev libssl-dev libopenblas-dev libopenblas0-pthread
      libcairo2-dev fonts-dejavu-core)
[ "${1:-}" = "--tests" ] && need+=(python3 python3-venv python3-numpy python3-pandas slurm-wlm munge g++
                                   libboost-context-dev clang libclang-rt-14-dev libomp-14-dev
                                   chromium chromium-driver)
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: everything needed is installed"
    exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
# Installing munge/slurmd/slurmctld must not start their system services (they would
# hold the default ports and /run/munge, and the slurm test runs its own daemons).
# Containers usually have a policy-rc.d that says "no" (exit 101) and no systemd; where
# there is none, put one in place for the install and take it away afterwards.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    trap '$sudo rm -f "$policy"' EXIT
    printf '#!/bin/sh\n# install-deps.sh: no service starts during this install\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
