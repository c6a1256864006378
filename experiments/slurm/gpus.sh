#!/usr/bin/env bash
# gpus.sh SPEC RUNS [SHARDS]: a sweep over the GPUs of one machine, one tms process per GPU,
# then the merge. Works on a workstation and inside one Slurm job that holds several GPUs:
#   sbatch --gres=gpu:4 --cpus-per-task=4 experiments/slurm/gpus.sh spec.json /abs/runs/sweep
# The GPUs are the ones in CUDA_VISIBLE_DEVICES (Slurm sets it to the job's GPUs), else every
# GPU nvidia-smi lists. SHARDS (default: one per GPU) may be larger: shard K runs on GPU
# K mod G, those sharing a GPU one after another.
# Each shard is sweep.sbatch run as if it were array task K of SHARDS (same skip/resume logic:
# running this again continues a stopped sweep). SIGTERM/SIGINT reach every shard, which
# checkpoints and exits 3; this script then exits 3 too.
# Environment: TMS, CHECKPOINT_EVERY, TMS_TRAIN_ARGS as for sweep.sbatch; MERGED (default
# RUNS/merged). Exit codes: 0 merged, 1 a shard or the merge failed, 2 bad arguments,
# 3 stopped by a signal with checkpoints saved.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# under sbatch the script runs from a copy in the spool folder: find the checkout another way
[ -f "$here/sweep.sbatch" ] || here=${SLURM_SUBMIT_DIR:-.}/experiments/slurm
repo=$(cd "$here/../.." && pwd)
[ $# -ge 2 ] || { sed -n '2,/^[^#]/{/^[^#]/d;s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }
spec=$1; runs=$2
[ -f "$spec" ] || { echo "gpus.sh: no spec file $spec" >&2; exit 2; }
[ -f "$here/sweep.sbatch" ] || { echo "gpus.sh: cannot find sweep.sbatch (run from the checkout)" >&2; exit 2; }
if [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
    IFS=, read -r -a gpus <<< "$CUDA_VISIBLE_DEVICES"
else
    mapfile -t gpus < <(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null)
fi
[ ${#gpus[@]} -ge 1 ] || { echo "gpus.sh: no GPU (CUDA_VISIBLE_DEVICES unset and nvidia-smi lists none)" >&2; exit 2; }
shards=${3:-${#gpus[@]}}
case $shards in ''|*[!0-9]*|0) echo "gpus.sh: SHARDS '$shards': expected a positive integer" >&2; exit 2;; esac
if [ -z "${TMS:-}" ]; then
    if [ -x "$repo/build/tms" ]; then TMS=$repo/build/tms; else TMS=tms; fi
fi
mkdir -p "$runs/logs"
export SPEC=$spec RUNS=$runs TMS SLURM_ARRAY_TASK_COUNT=$shards SLURM_ARRAY_TASK_MIN=0
echo "gpus.sh: $shards shards on ${#gpus[@]} GPU(s) (${gpus[*]}); logs in $runs/logs/"

pids=()
stop() { echo "gpus.sh: stopping every shard (they checkpoint)"; kill -TERM "${pids[@]}" 2>/dev/null; }
trap stop TERM INT
for ((g = 0; g < ${#gpus[@]} && g < shards; g++)); do
    (   # one lane per GPU: shards g, g+G, g+2G, ... one after another
        trap 'kill -TERM $child 2>/dev/null; stopped=1' TERM
        stopped=0; worst=0
        for ((k = g; k < shards && stopped == 0; k += ${#gpus[@]})); do
            SLURM_ARRAY_TASK_ID=$k CUDA_VISIBLE_DEVICES=${gpus[g]} \
                bash "$here/sweep.sbatch" >> "$runs/logs/shard-$k.out" 2>&1 &
            child=$!
            wait $child; rc=$?
            [ $rc -gt 128 ] && { wait $child; rc=$?; }
            echo "gpus.sh: shard $k on GPU ${gpus[g]} exited with $rc"
            [ $rc -ne 0 ] && [ $worst -ne 1 ] && worst=$rc
        done
        exit $worst
    ) &
    pids+=($!)
done
worst=0
for p in "${pids[@]}"; do
    wait "$p"; rc=$?
    [ $rc -gt 128 ] && { wait "$p"; rc=$?; }
    [ $rc -ne 0 ] && [ $worst -ne 1 ] && worst=$rc
done
[ $worst -eq 0 ] || { echo "gpus.sh: not every shard finished (exit $worst); run again to continue" >&2; exit $worst; }
merged=${MERGED:-$runs/merged}
shard_dirs=()
for ((k = 0; k < shards; k++)); do shard_dirs+=("$runs/shard-$k"); done
"$TMS" merge "$merged" "${shard_dirs[@]}" --force
