#!/usr/bin/env bash
# The suite that cannot flake, proved: the whole suite RUNS times in a row (default 3), each
# while two CPU-bound processes load both cores of a 2-core machine. Stops at the first
# failing run. Extra arguments go to pytest.
#
#   just test-under-load            # or: tests/load/run_under_load.sh
#   RUNS=5 tests/load/run_under_load.sh -x
set -u
cd "$(dirname "$0")/../.."
runs=${RUNS:-3}
hogs=()
stop_hogs() {
    for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${hogs[@]}"; do wait "$pid" 2>/dev/null; done
    hogs=()
}
trap stop_hogs EXIT INT TERM
for _ in 1 2; do
    python -c "while True: pass" &
    hogs+=("$!")
done
echo "load: two CPU hogs, pids ${hogs[*]}; $(nproc) cores"
logs=$(mktemp -d "${TMPDIR:-/tmp}/conductor-under-load.XXXXXX")
echo "full pytest output of each run: $logs/run-N.log"
status=0
for run in $(seq 1 "$runs"); do
    echo "run $run/$runs starting $(date -u +%H:%M:%S); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    began=$(date +%s)
    # SIGINT back to its default first: a script started in the background inherits it
    # ignored, and the tests that type Ctrl-C would then wait forever.
    python -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' \
        python -m pytest -n 2 -q -p no:cacheprovider "$@" >"$logs/run-$run.log" 2>&1
    status=$?
    grep -E "^(FAILED|ERROR)|passed|failed" "$logs/run-$run.log" | tail -n 20
    echo "run $run/$runs: exit $status in $(( $(date +%s) - began )) s;" \
        "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    [ "$status" -eq 0 ] || break
done
exit "$status"
