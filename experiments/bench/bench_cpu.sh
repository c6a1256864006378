#!/usr/bin/env bash
# bench_cpu.sh: tms against the PyTorch peer on this machine's CPU, on the notebook's
# intro run (intro_cpu.json: 10 instances, n=5, m=2, batch 1024, 10,000 steps,
# importance 0.9^i, density 20^-linspace(0,1,10)). Both use every core.
# Writes experiments/bench/RESULTS_cpu.md (and RESULTS_cpu.json with every repetition).
#
#   bash experiments/bench/bench_cpu.sh            # the full benchmark, 3 repetitions
#   STEPS=1000 bash experiments/bench/bench_cpu.sh # a check: results go to /tmp instead
#
# Environment (all optional): TMS (default build/tms), PYTHON (an interpreter with torch,
# default /usr/bin/python3, Debian's python3-torch), REPS (3), STEPS (the spec's 10000),
# THREADS (nproc), RESULTS (Markdown output path). Extra arguments go to bench.py cpu.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-/usr/bin/python3}
args=(cpu --tms "${TMS:-build/tms}" --python "$PYTHON" --reps "${REPS:-3}" --threads "${THREADS:-$(nproc)}")
[ -n "${STEPS:-}" ] && args+=(--steps "$STEPS")
[ -n "${RESULTS:-}" ] && args+=(--results "$RESULTS")
exec "$PYTHON" experiments/bench/bench.py "${args[@]}" "$@"
