"""Alert attribution benchmark: time, peak memory and accuracy, end to end.

Target (issue 5): about 1 million Network Firewall events against 10 million flow records,
`natlens attribute` end to end (the conversations, the NAT links and the attribution, from a case
with nothing derived yet) with peak memory <= 2 GB; its time recorded beside a bare DuckDB join of
the same tables on the same keys (each event to the flow records with its addresses and ports).

Target (issue 15): at most 1.5x the time of a direct DuckDB query written for the same answer
(attribute_floor.py). Both answers are scored against the simulator's truth: of the events whose
source is a NAT gateway's address, how many each names an instance for, and how many wrongly.

    python benchmarks/attribute_benchmark.py [--records 10000000] [--record-results]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import pyarrow.parquet as pq  # noqa: E402
from ingest_benchmark import Check, append_results, print_checks, run  # noqa: E402

# Of the events from a NAT gateway's address: how many each answer names an instance for, how
# many of those the truth confirms, and on how many the two answers agree.
SCORE = """
import sys, duckdb
truth, floor, natlens = sys.argv[1:4]
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
print(*con.sql(f'''
    WITH t AS (SELECT file, line, source_ip FROM '{truth}'),
    f AS (SELECT * FROM '{floor}'),
    n AS (SELECT source, line, instance_address FROM '{natlens}' WHERE source_kind = 'nat-gateway')
    SELECT count(*),
        count(f.instance_address), count_if(f.instance_address = t.source_ip),
        count(n.instance_address), count_if(n.instance_address = t.source_ip),
        count_if(n.instance_address = f.instance_address)
    FROM f JOIN t ON f.source LIKE '%' || t.file AND f.line = t.line
    LEFT JOIN n ON n.source = f.source AND n.line = f.line
''').fetchone())
"""

BARE_JOIN = """
import sys, duckdb
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
flows = sys.argv[1] + "/flows/*.parquet"
events = sys.argv[1] + "/firewall_events/*.parquet"
print(con.execute(f'''
    SELECT count(*) FROM read_parquet('{events}', union_by_name = true) AS e
    JOIN read_parquet('{flows}', union_by_name = true) AS f
      ON f.srcaddr = e.src_ip AND f.srcport = e.src_port AND f.dstaddr = e.dest_ip
     AND f.dstport = e.dest_port
''').fetchone()[0])
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--log-format", default="default")
    parser.add_argument("--memory-limit", default="1.3GB")
    parser.add_argument("--record-results", action="store_true")
    args = parser.parse_args()
    natlens = str(Path(sys.executable).parent / "natlens")
    root = Path(tempfile.mkdtemp(prefix="natlens-attr-bench-"))
    try:
        world, case = root / "w", root / "case"
        run([natlens, "simulate", str(world), "--scenario", "fw-after-nat", "--records",
             str(args.records), "--log-format", args.log_format, "--json"])  # fmt: skip
        run([natlens, "ingest", str(world / "flowlogs"), str(world / "firewall"), "--case",
             str(case), "--json"])  # fmt: skip
        tables = json.loads((case / "manifest.json").read_text())["tables"]
        flows, events = tables["flows"]["records"], tables["firewall_events"]["records"]
        join_seconds, join_rss, out = run([sys.executable, "-c", BARE_JOIN, str(case)])
        target = root / "attribute.parquet"
        seconds, rss, _ = run(
            [natlens, "attribute", str(case), "--format", "parquet", "--output", str(target),
             "--memory-limit", args.memory_limit, "--context", str(world / "context")]
        )  # fmt: skip
        rows = pq.ParquetFile(target).metadata.num_rows
        floor = root / "floor.parquet"
        floor_seconds, _floor_rss, _ = run(
            [sys.executable, str(HERE / "attribute_floor.py"), str(case), str(world / "context"),
             str(floor)]
        )  # fmt: skip
        truth = world / "truth" / "firewall_events.parquet"
        _s, _r, scored = run([sys.executable, "-c", SCORE, str(truth), str(floor), str(target)])
        nat_events, f_named, f_right, n_named, n_right, agree = map(int, scored.split())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    line = (
        f"| {flows:,} | {events:,} | {seconds:.1f} s ({rows:,} events) | {rss / 1e9:.2f} GB "
        f"| {join_seconds:.1f} s ({int(out.strip()):,} pairs, peak {join_rss / 1e9:.2f} GB) "
        f"| {seconds / join_seconds:.1f}x |"
    )
    floor_lines = (
        f"| direct DuckDB query | {floor_seconds:.1f} s | {f_named:,} | {f_named - f_right:,} |\n"
        f"| `natlens attribute` | {seconds:.1f} s | {n_named:,} | {n_named - n_right:,} |"
    )
    print(HEADER)
    print(line)
    print(FLOOR_HEADER.format(events=nat_events))
    print(floor_lines)
    checks: list[Check] = [
        (f"every event attributed or passed through: {rows:,} of {events:,}", rows == events),
        (f"peak memory <= 2 GB: {rss / 1e9:.2f} GB", rss <= 2e9),
        (
            f"<= 1.5x the direct query: {seconds / floor_seconds:.2f}x",
            seconds <= 1.5 * floor_seconds,
        ),
        (
            f"no more wrong than the direct query: {n_named - n_right:,} against "
            f"{f_named - f_right:,} (the two agree on {agree:,} of {nat_events:,} events)",
            n_named - n_right <= f_named - f_right,
        ),
    ]
    if args.records >= 10_000_000:
        checks.append((f"10M flow records in <= 30 s: {seconds:.1f} s", seconds <= 30))
    check_lines = print_checks(checks)
    if args.record_results:
        append_results(
            "Alert attribution",
            f"python benchmarks/attribute_benchmark.py --records {args.records} --log-format "
            f"{args.log_format} --memory-limit {args.memory_limit}",
            " `natlens attribute` is one fresh process on a case with nothing derived yet (it "
            "pairs the conversations, links the NAT legs and attributes every event), given the "
            "same describe-* JSON as the direct query (`--context`), writing Parquet; the bare "
            "join counts (event, flow record) pairs on addresses and ports."
            f"\n\n{HEADER}\n{line}\n\n{FLOOR_HEADER.format(events=nat_events)}\n"
            f"{floor_lines}\n\n" + "\n".join(check_lines),
        )


HEADER = (
    "| flow records | firewall events | natlens attribute | natlens peak memory "
    "| DuckDB bare join | ratio |\n| ---: | ---: | ---: | ---: | ---: | ---: |"
)

FLOOR_HEADER = (
    "| answer ({events:,} events from a NAT gateway's address) | time | instance named | wrong |"
    "\n| --- | ---: | ---: | ---: |"
)


if __name__ == "__main__":
    main()
