#!/usr/bin/env bash
# bench_cpu.sh: tms against the PyTorch peer on this machine's CPU, shape by shape: the
# notebook's intro run (intro_cpu.json: 10 instances of 5 -> 2), 100 -> 20 x8, 400 -> 30 x14,
# 1000 -> 100 x2, 2000 -> 400 x1 (bench.py CPU_SHAPES), each beside the machine's SGEMM
# ceiling for it (build/cpu_crossover ceiling). Both use every core.
# Writes experiments/bench/RESULTS_cpu.md (and RESULTS_cpu.json with every repetition).
#
#   bash experiments/bench/bench_cpu.sh                # the full table, 3 repetitions
#   STEPS=20 bash experiments/bench/bench_cpu.sh       # a check: results go to /tmp instead
#   bash experiments/bench/bench_cpu.sh --only 5->2    # some shapes (results to /tmp)
#
# Environment (all optional): TMS (default build/tms; cpu_crossover is taken from beside it),
# PYTHON (an interpreter with torch, default /usr/bin/python3, Debian's python3-torch),
# REPS (3), STEPS (each shape's own), THREADS (nproc), RESULTS (Markdown output path).
# Extra arguments go to bench.py cpu.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-/usr/bin/python3}
args=(cpu --tms "${TMS:-build/tms}" --python "$PYTHON" --reps "${REPS:-3}" --threads "${THREADS:-$(nproc)}")
[ -n "${STEPS:-}" ] && args+=(--steps "$STEPS")
[ -n "${RESULTS:-}" ] && args+=(--results "$RESULTS")
exec "$PYTHON" experiments/bench/bench.py "${args[@]}" "$@"
