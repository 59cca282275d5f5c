#!/bin/sh
# Run every fuzz target for RUNS inputs (default 1,000,000) or SECONDS each, whichever ends
# first, from seed corpora made of the project's own examples; logs and new corpus entries go to
# OUT (default /tmp/natlens-fuzz). Results go in benchmarks/RESULTS.md by hand.
set -eu
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
for target in ${TARGETS:-flowlog container firewall logformat context}; do
    (cd "$OUT/$target" && "$PY" "$HERE/benchmarks/fuzz.py" "$target" -runs="$RUNS" \
        -max_len=8192 -timeout=30 -rss_limit_mb=2048 -max_total_time="$SECONDS_EACH" corpus > log.txt 2>&1; echo "exit $?" >> log.txt)
    tail -n 3 "$OUT/$target/log.txt"
done
