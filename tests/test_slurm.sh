#!/usr/bin/env bash
# test_slurm.sh TMS SCRATCH: a sharded sweep on a real, single-node Slurm.
#   - starts munged, slurmctld and slurmd from Debian's packages (slurm-wlm, munge) by hand,
#     every file in SCRATCH, with a slurm.conf this test writes (found through SLURM_CONF),
#     its own munge key and socket, and free non-default ports: nothing system-wide is used;
#   - a trivial 4-task array (hostname) shows the cluster runs jobs and sets SLURM_ARRAY_*;
#   - trains the spec in one process, and shard 0 of 4 by hand (as if an earlier submission
#     had done it);
#   - experiments/slurm/submit.sh submits the 4-task sweep array (no GPU gres: --gres=none)
#     and the dependent merge; task 3 gets the time-limit warning (SIGUSR1) by hand while it
#     trains: it must checkpoint, requeue itself alone and resume; task 0 must leave the
#     complete shard-0 untouched; the test waits for all of it (bounded);
#   - the merged W.npy, b.npy, Adam moments, instances.csv, features.csv and loss.csv equal the
#     single-process run byte for byte.
# The daemons it started (and any job process still running under them) are stopped when
# it ends, passed or failed. Exit 77 (skipped) only when the Slurm/munge binaries are absent.
# TMS_SLURM_SMOKE_ONLY=1 stops after the trivial array (the cluster alone);
# TMS_SLURM_TIMEOUT (seconds, default 150) bounds the waiting on jobs.
set -u
tms=$1; scratch=$2
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
deadline_s=${TMS_SLURM_TIMEOUT:-150}   # the whole test's budget for waiting on jobs

for b in munged slurmctld slurmd sbatch squeue sinfo scontrol scancel; do
    if ! command -v "$b" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$b" ]; then
        echo "SKIP: $b not found (install slurm-wlm and munge: scripts/install-deps.sh --tests)"
        exit 77
    fi
done
export PATH="$PATH:/usr/sbin:/sbin"

t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
log() { echo "[$(elapsed) s] $*"; }
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

tms=$(cd "$(dirname "$tms")" && pwd)/$(basename "$tms")
rm -rf "$scratch"; mkdir -p "$scratch"; cd "$scratch" || exit 1
scratch=$(pwd)
mkdir -p munge slurm/state slurm/spool slurm/log jobs
chmod 755 munge
# munged's socket path must fit in sockaddr_un (108 bytes): a deep scratch gets a short one
sock=$scratch/munge/munge.socket
if [ ${#sock} -gt 100 ]; then
    sockdir=$(mktemp -d /tmp/tms-munge.XXXXXX); sock=$sockdir/munge.socket
fi

# ---- stopping what we started, whatever happens -------------------------------------------
# Everything the test starts under Slurm carries TMS_SLURM_TEST=$scratch in its environment
# (the daemons, and the jobs through sbatch's --export=ALL), so leftovers are found by it.
mark=$scratch
marked_pids() {
    local p
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [ "$p" = "$$" ] && continue
        { tr '\0' '\n' < "/proc/$p/environ"; } 2>/dev/null | grep -qxF "TMS_SLURM_TEST=$mark" && echo "$p"
    done
}
stop_pidfiles() { # pidfile...: SIGTERM to each live pid in them, then wait (SIGKILL after 10 s)
    local f pid alive pids=""
    for f in "$@"; do
        [ -s "$f" ] || continue
        pid=$(cat "$f")
        kill -TERM "$pid" 2>/dev/null && pids="$pids $pid"
    done
    for _ in $(seq 100); do
        alive=0
        for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive -eq 0 ] && return 0
        sleep 0.1
    done
    echo "cleanup: still running 10 s after SIGTERM, killing:$pids" >&2
    kill -KILL $pids 2>/dev/null
}
cleanup() {
    local rc=$? pids
    trap - EXIT INT TERM
    if [ -s slurm/slurmctld.pid ] && kill -0 "$(cat slurm/slurmctld.pid)" 2>/dev/null; then
        scancel --quiet --partition=tmstest 2>/dev/null
        for _ in $(seq 50); do
            [ -z "$(squeue -h -t running,completing,pending -o %i 2>/dev/null)" ] && break
            sleep 0.1
        done
    fi
    stop_pidfiles slurm/slurmd.pid slurm/slurmctld.pid munge/munged.pid
    pids=$(marked_pids)
    if [ -n "$pids" ]; then
        echo "cleanup: ending leftover job processes: $(echo $pids)" >&2
        kill -KILL $pids 2>/dev/null
    fi
    [ -n "${sockdir:-}" ] && rm -rf "$sockdir"
    log "daemons stopped"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

dump_logs() {
    local f
    for f in slurm/log/*.log munge/munged.log jobs/*.out runs/logs/*.out; do
        [ -s "$f" ] || continue
        echo "---- $f (last 30 lines)" >&2
        tail -n 30 "$f" >&2
    done
}
die() { fail "$*"; dump_logs; echo "0 passed, 1 failed"; exit 1; }

# ---- munge ---------------------------------------------------------------------------------
mungekey --create --keyfile="$scratch/munge/munge.key" 2>/dev/null \
    || dd if=/dev/urandom of="$scratch/munge/munge.key" bs=1024 count=1 status=none
chmod 600 munge/munge.key
TMS_SLURM_TEST=$mark munged --key-file="$scratch/munge/munge.key" --socket="$sock" \
    --pid-file="$scratch/munge/munged.pid" --log-file="$scratch/munge/munged.log" \
    --seed-file="$scratch/munge/munged.seed" --force \
    || die "munged did not start"
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || die "munged made no socket $sock"
log "munged up"

# ---- slurm.conf ----------------------------------------------------------------------------
free_ports() { # two free TCP ports on 127.0.0.1, not the defaults 6817/6818
    local p a b
    for _ in $(seq 200); do
        a=$((20000 + RANDOM % 30000)); b=$((a + 1))
        for p in $a $b; do
            (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue 2
        done
        echo "$a $b"; return 0
    done
    return 1
}
read -r ctld_port slurmd_port <<< "$(free_ports)" || die "no free ports"
host=$(hostname -s)
cpus=$(nproc)
user=$(id -un)
export SLURM_CONF=$scratch/slurm/slurm.conf
cat > "$SLURM_CONF" <<EOF
# written by tests/test_slurm.sh: a single-node cluster living in $scratch
ClusterName=tmstest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock,cred_expire=5
SlurmUser=$user
SlurmdUser=$user
StateSaveLocation=$scratch/slurm/state
SlurmdSpoolDir=$scratch/slurm/spool
SlurmctldPidFile=$scratch/slurm/slurmctld.pid
SlurmdPidFile=$scratch/slurm/slurmd.pid
SlurmctldLogFile=$scratch/slurm/log/slurmctld.log
SlurmdLogFile=$scratch/slurm/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
DependencyParameters=kill_invalid_depend
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=2,bf_interval=1
MinJobAge=600
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=tmstest Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

TMS_SLURM_TEST=$mark slurmctld -c || die "slurmctld did not start"
TMS_SLURM_TEST=$mark slurmd -N "$host" || die "slurmd did not start"
up=0
for _ in $(seq 150); do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null)
    case $state in idle*|mixed*|allocated*) up=1; break;; esac
    sleep 0.2
done
[ $up -eq 1 ] || die "the node never became idle (sinfo: '$state')"
log "slurmctld (port $ctld_port) and slurmd (port $slurmd_port) up: node $host idle, $cpus CPUs"

# ---- waiting on jobs -----------------------------------------------------------------------
job_states() { # jobid: "task state" lines for a job and its array tasks, finished ones included
    squeue -h -t all -j "$1" -r -o '%i %T' 2>/dev/null
}
wait_jobs() { # jobid...: until none is pending or running (bounded by the test's deadline)
    local j s busy
    while :; do
        busy=0
        for j in "$@"; do
            s=$(job_states "$j")
            [ -z "$s" ] && { busy=1; continue; }   # not visible yet
            echo "$s" | grep -qE ' (PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUED|RESIZING|SUSPENDED)$' && busy=1
        done
        [ $busy -eq 0 ] && return 0
        awk -v e="$(elapsed)" -v d="$deadline_s" 'BEGIN { exit !(e > d) }' && return 1
        sleep 0.25
    done
}

# ---- a trivial array: the cluster runs jobs and sets the array variables -------------------
cat > jobs/hello.sbatch <<'EOF'
#!/bin/bash
echo "$(hostname -s) task=$SLURM_ARRAY_TASK_ID count=$SLURM_ARRAY_TASK_COUNT min=${SLURM_ARRAY_TASK_MIN:-unset}"
EOF
hello=$(TMS_SLURM_TEST=$mark sbatch --parsable --array=0-3 --job-name=hello \
        --output="$scratch/jobs/hello-%a.out" jobs/hello.sbatch) || die "sbatch of the hello array failed"
hello=${hello%%;*}
wait_jobs "$hello" || die "the hello array did not finish in time: $(job_states "$hello" | tr '\n' ' ')"
bad=$(job_states "$hello" | grep -v ' COMPLETED$')
[ -z "$bad" ] || fail "hello array tasks not COMPLETED: $bad"
for k in 0 1 2 3; do
    grep -qx "$host task=$k count=4 min=0" "jobs/hello-$k.out" 2>/dev/null \
        || fail "hello task $k printed '$(cat "jobs/hello-$k.out" 2>/dev/null)'"
done
[ $fails -eq 0 ] || die "the trivial array failed"
log "hello array $hello: 4 tasks COMPLETED with SLURM_ARRAY_TASK_ID/COUNT/MIN set"

[ "${TMS_SLURM_SMOKE_ONLY:-0}" = 1 ] && { echo "1 passed, 0 failed"; exit 0; }

# ---- the sweep: single process, then 4 shards under Slurm and the merge ---------------------
# 8 instances (4 densities x 2 seeds), long enough (a second or two a shard) for a task to be
# stopped mid-run.
cat > spec.json <<'JSON'
{"name": "slurmtest", "model": {"n_features": 5, "n_hidden": 2},
 "data": {"density": [1, 0.3, 0.1, 0.05], "batch_size": 256},
 "train": {"steps": 60000, "seeds": 2, "log_every": 2000},
 "output": {"images": false, "contact_sheet": false}}
JSON
"$tms" train spec.json --out single --backend cpu --quiet || die "the single-process run failed"
log "single-process run done"
# shard 0 done beforehand (as by an earlier submission): its task must leave it alone
mkdir -p runs
"$tms" train spec.json --out runs/shard-0 --shard 0/4 --backend cpu --quiet || die "training shard 0 by hand failed"
touch -d '2000-01-01' runs/shard-0/W.npy

out=$(TMS_SLURM_TEST=$mark TMS="$tms" CHECKPOINT_EVERY=5000 TMS_TRAIN_ARGS="--backend cpu" \
      SWEEP_SBATCH_ARGS="--gres=none --time=10" MERGE_SBATCH_ARGS="--time=10" \
      bash "$repo/experiments/slurm/submit.sh" spec.json runs 4 2>&1) || die "submit.sh failed: $out"
echo "$out"
array=$(echo "$out" | sed -n 's/^array job: *\([0-9]*\).*/\1/p')
merge=$(echo "$out" | sed -n 's/^merge job: *\([0-9]*\).*/\1/p')
[ -n "$array" ] && [ -n "$merge" ] || die "submit.sh printed no job ids"

# The time-limit warning (--signal=B:USR1@...) sent by hand to task 3 once it trains: the
# script must have tms checkpoint (exit 3), requeue that task alone, and the rerun resume.
# (Task 3 is the array's last: Slurm gives it the array's own job id, which names the
# whole array to scontrol: requeueing by that id would rerun every task.)
sig=3
while :; do
    [ -e runs/shard-$sig ] && break
    [ -e runs/shard-$sig.partial/manifest.json ] && [ "$(squeue -h -j "${array}_$sig" -o %T)" = RUNNING ] && break
    awk -v e="$(elapsed)" -v d="$deadline_s" 'BEGIN { exit !(e > d) }' && break
    sleep 0.02
done
[ -e runs/shard-$sig.partial/manifest.json ] || die "task $sig never started training (or finished first)"
# (slurmctld may answer "Job can not be altered now" though the signal went through, and scancel
# then retries for a while: its answer is not waited for; the task's log tells what happened)
TMS_SLURM_TEST=$mark timeout 30 scancel --signal=USR1 --batch "${array}_$sig" >/dev/null 2>&1 &
scancel_pid=$!
log "sent the time-limit warning (SIGUSR1) to task ${array}_$sig"

wait_jobs "$array" "$merge" \
    || die "jobs not finished in ${deadline_s} s: $(job_states "$array" | tr '\n' ' ') $(job_states "$merge")"
log "array $array and merge $merge finished"
kill "$scancel_pid" 2>/dev/null; wait "$scancel_pid" 2>/dev/null
bad=$( (job_states "$array"; job_states "$merge") | grep -v ' COMPLETED$')
[ -z "$bad" ] || { fail "jobs not COMPLETED: $(echo $bad)"; dump_logs; }
n_tasks=$(job_states "$array" | wc -l)
[ "$n_tasks" -eq 4 ] || fail "the array ran $n_tasks tasks, expected 4"
for k in 0 1 2 3; do
    [ -d "runs/shard-$k" ] || fail "no runs/shard-$k"
    [ ! -e "runs/shard-$k.partial" ] || fail "runs/shard-$k.partial left behind"
done
grep -q 'nothing to do' runs/logs/shard-0.out || fail "task 0 did not skip the complete shard-0"
[ "$(stat -c %Y runs/shard-0/W.npy)" = "$(date -d 2000-01-01 +%s)" ] || fail "task 0 rewrote shard-0"
grep -q 'requeueing' runs/logs/shard-$sig.out || fail "task $sig was not requeued after SIGUSR1"
grep -q 'restart 1)' runs/logs/shard-$sig.out || fail "task $sig did not run again after its requeue"
grep -q 'resuming .* from step' runs/logs/shard-$sig.out || fail "task $sig's rerun did not resume"
for k in 0 1 2; do
    n=$(grep -c '^tms-sweep: .* task ' "runs/logs/shard-$k.out")
    [ "$n" -eq 1 ] || fail "task $k ran $n times (only task $sig was requeued)"
done

m=runs/merged
[ -d "$m" ] || die "no merged run directory $m"
for f in W.npy b.npy optimizer/adam_m_W.npy optimizer/adam_v_W.npy optimizer/adam_m_b.npy \
         optimizer/adam_v_b.npy instances.csv features.csv loss.csv; do
    if [ ! -f "$m/$f" ]; then fail "merged run lacks $f"
    elif ! cmp -s "single/$f" "$m/$f"; then fail "merged $f differs from the single-process run"
    fi
done
grep -Eq '"status":[[:space:]]*"complete"' "$m/manifest.json" 2>/dev/null || fail "merged manifest not complete"
for k in 0 1 2 3; do
    grep -q "runs/shard-$k\"" "$m/manifest.json" 2>/dev/null || fail "merged manifest does not list shard-$k"
done
log "merged == single-process: W, b, Adam moments, instances.csv, features.csv, loss.csv"

[ $fails -eq 0 ] || { dump_logs; echo "0 passed, 1 failed"; exit 1; }
echo "1 passed, 0 failed"
exit 0
