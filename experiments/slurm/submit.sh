#!/usr/bin/env bash
# submit.sh SPEC RUNS SHARDS [SBATCH OPTIONS...]: queue a sharded tms sweep on Slurm.
#   - copies SPEC into RUNS (every task reads that frozen copy; a RUNS that already holds a
#     different copy is refused);
#   - sbatch --array=0-(SHARDS-1) sweep.sbatch: task K trains grid slice K of SHARDS into
#     RUNS/shard-K, one GPU each (SBATCH OPTIONS go to this array job: --partition, --time,
#     --gres=..., --array=0-15%4 to run at most 4 at once, ...);
#   - sbatch --dependency=afterok:ARRAY merge.sbatch: merges the shards into RUNS/merged;
#   - prints the two job ids ("array job: ID", "merge job: ID").
# Submitting again with the same SPEC, RUNS and SHARDS continues a sweep: complete shards are
# skipped, stopped ones resume from their checkpoints, and a new merge is queued.
#
# Environment (optional):
#   TMS                the tms binary, visible on the compute nodes (default: this checkout's
#                      build/tms, else tms on PATH)
#   CHECKPOINT_EVERY   steps between checkpoints (default 2000)
#   TMS_TRAIN_ARGS     more tms train options for every shard, e.g. "--tf32" or "--backend cpu"
#   SWEEP_SBATCH_ARGS  more sbatch options for the array (as SBATCH OPTIONS, split at spaces)
#   MERGE_SBATCH_ARGS  sbatch options for the merge job (e.g. --partition=cpu --time=30)
# Exit codes: 0 submitted, 2 bad arguments, 1 sbatch failed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2; exit 2; }
[ $# -ge 3 ] || usage
spec=$1; runs=$2; shards=$3; shift 3
case $shards in ''|*[!0-9]*) echo "submit.sh: SHARDS '$shards': expected a positive integer" >&2; exit 2;; esac
[ "$shards" -ge 1 ] || { echo "submit.sh: SHARDS must be at least 1" >&2; exit 2; }
[ -f "$spec" ] || { echo "submit.sh: no spec file $spec" >&2; exit 2; }
command -v sbatch >/dev/null || { echo "submit.sh: sbatch not found (not on a Slurm login node?)" >&2; exit 2; }

if [ -n "${TMS:-}" ]; then tms=$TMS
elif [ -x "$repo/build/tms" ]; then tms=$repo/build/tms
else tms=$(command -v tms || true)
fi
[ -n "$tms" ] || { echo "submit.sh: no tms binary: set TMS or build this checkout (scripts/build.sh)" >&2; exit 2; }
case $tms in /*) ;; */*) tms=$(cd "$(dirname "$tms")" && pwd)/$(basename "$tms");; esac
[ -x "$tms" ] || [ -x "$(command -v "$tms" 2>/dev/null)" ] || { echo "submit.sh: $tms is not executable" >&2; exit 2; }

mkdir -p "$runs/logs"
runs=$(cd "$runs" && pwd)
frozen=$runs/$(basename "$spec")   # same file name: the run's default name stays the spec's
for f in "$runs"/*.json; do
    [ -e "$f" ] || continue
    if [ "$f" != "$frozen" ] || ! cmp -s "$spec" "$f"; then
        echo "submit.sh: $runs holds another sweep's spec ($f differs from $spec): choose another RUNS" >&2
        exit 2
    fi
done
[ -e "$frozen" ] || cp "$spec" "$frozen"

export SPEC=$frozen RUNS=$runs TMS=$tms SHARDS=$shards ARRAY_MIN=0
export CHECKPOINT_EVERY=${CHECKPOINT_EVERY:-2000} TMS_TRAIN_ARGS=${TMS_TRAIN_ARGS:-}
read -r -a sweep_args <<< "${SWEEP_SBATCH_ARGS:-}"
read -r -a merge_args <<< "${MERGE_SBATCH_ARGS:-}"

array=$(sbatch --parsable --export=ALL --array="0-$((shards - 1))" \
        --output="$runs/logs/shard-%a.out" --error="$runs/logs/shard-%a.out" \
        "${sweep_args[@]}" "$@" "$here/sweep.sbatch") || { echo "submit.sh: sbatch of the array failed" >&2; exit 1; }
array=${array%%;*}
merge=$(sbatch --parsable --export=ALL --dependency="afterok:$array" --kill-on-invalid-dep=yes \
        --output="$runs/logs/merge-%j.out" \
        "${merge_args[@]}" "$here/merge.sbatch") || {
    echo "submit.sh: sbatch of the merge failed; cancelling array job $array" >&2
    scancel "$array" || true
    exit 1
}
merge=${merge%%;*}
echo "array job: $array ($shards tasks: $tms train $(basename "$frozen") --shard auto -> $runs/shard-K)"
echo "merge job: $merge (after every task succeeds: $runs/merged)"
echo "watch: squeue -j $array,$merge    logs: $runs/logs/"
