#!/bin/sh
# Run every fuzz target for RUNS inputs (default 1,000,000) or SECONDS each, whichever ends
# first, from seed corpora made of the project's own examples; logs and new corpus entries go to
# OUT (default /tmp/natlens-fuzz). Results go in benchmarks/RESULTS.md by hand.
set -u
RUNS=${RUNS:-1000000}
SECONDS_EACH=${SECONDS_EACH:-0}
OUT=${OUT:-/tmp/natlens-fuzz}
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$HERE/.venv/bin/python}
mkdir -p "$OUT"
seed() {  # target, files...
    target=$1; shift
    mkdir -p "$OUT/$target/corpus"
    for f in "$@"; do cp "$f" "$OUT/$target/corpus/" 2>/dev/null || true; done
}
seed flowlog "$HERE"/examples/aws-docs/*.log "$HERE"/examples/no-header/*.log
seed container "$HERE"/examples/aws-docs/*.log "$HERE"/tests/fixtures/network-firewall/*.log
seed firewall "$HERE"/tests/fixtures/network-firewall/*.log
seed logformat "$HERE"/examples/aws-docs/*.log
seed context "$HERE"/tests/fixtures/context/*.json
# The context target's first byte picks the file name (benchmarks/fuzz.py): seed each
# describe-* file of the test fixtures with its own.
"$PY" - "$HERE" "$OUT/context/corpus" <<'PYEOF'
import pathlib, sys
sys.path.insert(0, sys.argv[1])
from benchmarks.fuzz import CONTEXT_FILES
out = pathlib.Path(sys.argv[2])
for path in pathlib.Path(sys.argv[1], "tests", "fixtures").rglob("describe-*.json"):
    for index, name in enumerate(CONTEXT_FILES):
        if path.name.startswith(name[: -len(".json")]) and path.stat().st_size < 8192:
            (out / f"seed-{path.parent.name}-{path.name}").write_bytes(bytes([index]) + path.read_bytes())
PYEOF
# A crash ends a libFuzzer run: it is kept (crash-*) and the run goes on from the corpus until
# the runs or the time are spent. WORKERS processes (default 1) share each target's corpus and
# its runs, like libFuzzer's -jobs (which cannot start a Python script itself).
WORKERS=${WORKERS:-1}
# A libFuzzer process grows by some KiB per input under atheris (about 2 GiB after 300,000
# flow log inputs, while the same inputs replayed in plain Python hold 120 MiB flat): each
# process runs at most ROUND_RUNS inputs, then a fresh one goes on from the corpus.
ROUND_RUNS=${ROUND_RUNS:-100000}
worker() {  # target, worker number, runs: prints the runs done
    target=$1; worker=$2; want=$3
    start=$(date +%s)
    done_runs=0
    round=0
    while :; do
        round=$((round + 1))
        left=$((SECONDS_EACH > 0 ? SECONDS_EACH - ($(date +%s) - start) : 0))
        if [ "$SECONDS_EACH" -gt 0 ] && [ "$left" -le 0 ]; then break; fi
        log="log-$worker-$round.txt"
        round_runs=$((want - done_runs < ROUND_RUNS ? want - done_runs : ROUND_RUNS))
        "$PY" "$HERE/benchmarks/fuzz.py" "$target" -runs=$round_runs -max_len=8192 \
            -timeout=30 -rss_limit_mb=2048 -max_total_time="$left" corpus > "$log" 2>&1 || true
        runs=$(grep -Eo '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
        done_runs=$((done_runs + ${runs:-0}))
        # A process that ran nothing (it could not start) would be restarted for ever.
        if [ "${runs:-0}" -eq 0 ]; then echo "no input run: see $log" >&2; break; fi
        if [ "$done_runs" -ge "$want" ]; then break; fi
    done
    echo "$done_runs" > "runs-$worker.txt"
}
for target in ${TARGETS:-flowlog container firewall logformat context}; do
    cd "$OUT/$target"
    start=$(date +%s)
    rm -f runs-*.txt
    w=1
    while [ "$w" -le "$WORKERS" ]; do
        worker "$target" "$w" $(((RUNS + WORKERS - 1) / WORKERS)) &
        w=$((w + 1))
    done
    wait
    total=$(awk '{ s += $1 } END { print s }' runs-*.txt)
    echo "$target: $total runs in $(($(date +%s) - start)) s, $(ls crash-* 2>/dev/null | wc -l)" \
        "crash(es), $(ls timeout-* 2>/dev/null | wc -l) timeout(s), $(ls oom-* 2>/dev/null | wc -l)" \
        "out-of-memory stop(s) (replay each: python benchmarks/fuzz.py TARGET FILE)"
    cd - > /dev/null
done
