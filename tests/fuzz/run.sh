#!/usr/bin/env bash
# tests/fuzz/run.sh: build the libFuzzer targets (build-fuzz/, clang, ASan + UBSan) and fuzz
# for a bounded time: every reproducer in regressions/ once, then each target from its
# committed seed corpus (corpus/TARGET/) for TMS_FUZZ_SECONDS (default 30), then the CLI
# fuzzer (cli_fuzz.py) on the real tms for TMS_CLI_FUZZ_SECONDS (default 60), two at a time.
# tests/run.sh runs it after the test suites (TMS_SKIP_FUZZ=1 skips it there).
#
# Prints per target the inputs tried and the crashes; a crash fails (exit 1) with its
# reproducer saved under build-fuzz/crashes/TARGET/ and printed (hex dump and the command
# that replays it). The CLI fuzzer uses build-asan/tms when it exists (tests/sanitize.sh
# builds it), else build/tms.
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
secs=${TMS_FUZZ_SECONDS:-30}
cli_secs=${TMS_CLI_FUZZ_SECONDS:-60}
build=build-fuzz
targets=(fuzz_spec fuzz_npy fuzz_rundir)
declare -A max_len=([fuzz_spec]=8192 [fuzz_npy]=4096 [fuzz_rundir]=16384)

CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTMS_FUZZ=ON -DTMS_CUDA=OFF >/dev/null || exit 1
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}" >"$build/fuzz_build.log" 2>&1 ||
    { tail -40 "$build/fuzz_build.log"; echo "fuzz: build failed"; exit 1; }
bin=$build/tests/fuzz
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:${ASAN_OPTIONS:-}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}
rm -rf "$build/crashes" "$build/logs"
mkdir -p "$build/logs"
crashes=0

show_crash() { # TARGET FILE LOG: print a reproducer and the sanitizer's report
    local t=$1 f=$2 log=$3
    echo "fuzz: CRASH in $t: reproducer $f ($(stat -c %s "$f") bytes); replay: $bin/$t $f"
    od -A d -c "$f" | head -24
    grep -m1 -B2 -A30 -E 'ERROR: (Address|Leak|libFuzzer)|runtime error|SUMMARY' "$log" | head -50
}

# ---- known reproducers: each replayed once (no length limit, unlike the seed corpus)
for t in "${targets[@]}"; do
    for f in tests/fuzz/regressions/$t/*; do
        [ -f "$f" ] || continue
        if ! "$bin/$t" "$f" >"$build/logs/regression.log" 2>&1; then
            show_crash "$t" "$f" "$build/logs/regression.log"
            crashes=$((crashes + 1))
        fi
    done
done

# ---- one libFuzzer target for $secs seconds; new inputs go to build-fuzz/corpus/TARGET
fuzz_target() {
    local t=$1
    local seeds=tests/fuzz/corpus/${t#fuzz_}
    mkdir -p "$build/corpus/$t" "$build/crashes/$t"
    "$bin/$t" "$build/corpus/$t" "$seeds" -max_total_time="$secs" -max_len="${max_len[$t]}" \
        -dict=tests/fuzz/json.dict -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/crashes/$t/" >"$build/logs/$t.log" 2>&1
    echo $? >"$build/logs/$t.rc"
}
cli_fuzz() {
    local tms=build/tms
    [ -x build-asan/tms ] && tms=build-asan/tms
    /usr/bin/python3 tests/fuzz/cli_fuzz.py --tms "$tms" --seconds "$cli_secs" --work "$build/cli_fuzz" \
        >"$build/logs/cli_fuzz.log" 2>&1
    echo $? >"$build/logs/cli_fuzz.rc"
}

t0=$SECONDS
fuzz_target fuzz_spec & fuzz_target fuzz_npy & wait
fuzz_target fuzz_rundir & cli_fuzz & wait

for t in "${targets[@]}"; do
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/logs/$t.log" | tail -1)
    n=0
    for f in "$build/crashes/$t"/*; do
        [ -f "$f" ] || continue
        n=$((n + 1))
        show_crash "$t" "$f" "$build/logs/$t.log"
    done
    if [ "$n" -eq 0 ] && [ "$(cat "$build/logs/$t.rc")" != 0 ]; then
        n=1 # stopped without a reproducer (e.g. the fuzzer itself failed): show its log
        echo "fuzz: $t exited $(cat "$build/logs/$t.rc")"; tail -30 "$build/logs/$t.log"
    fi
    crashes=$((crashes + n))
    echo "fuzz: $t: ${runs:-?} inputs tried in ${secs} s, $n crash$([ "$n" -eq 1 ] || echo es)"
done
grep -A40 -E '^cli_fuzz: (CRASH|VIOLATION)' "$build/logs/cli_fuzz.log" | head -120
grep -E '^cli_fuzz: (seed|[0-9]+ inputs)' "$build/logs/cli_fuzz.log"
cli_rc=$(cat "$build/logs/cli_fuzz.rc")
echo "fuzz: done in $((SECONDS - t0)) s: $crashes libFuzzer crash(es); CLI fuzzer $([ "$cli_rc" = 0 ] && echo clean || echo FAILED)"
[ "$crashes" -eq 0 ] && [ "$cli_rc" = 0 ]
