"""Network Firewall log ingest against DuckDB's own JSON reader, and against flow log ingest.

Simulates a `fw-after-nat` world (cached under benchmarks/data/), then times, each in a fresh
process with its peak memory:

  (a) DuckDB: COPY (SELECT * FROM read_json(files)) TO Parquet  - the floor (issue 15)
  (b) natlens ingest FIREWALL_DIR --case DIR                     - every line a row or a problem
  (c) natlens ingest FLOWLOG_DIR --case DIR                      - the same world's flow logs

Targets (issue 15, item 3): (b) <= 2x (a); (b) at least as fast per byte (of text, after gzip)
as (c). The rows are checked: natlens's events and DuckDB's must be the same multiset of
(source address, source port, destination address, destination port, event type).

    python benchmarks/firewall_ingest_benchmark.py [--records 1000000] [--record-results]
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ingest_benchmark import HERE, append_results, print_checks, run

FLOOR = """
import sys, duckdb
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
files = sys.argv[1:-1]
con.execute(
    "COPY (SELECT * FROM read_json(?, format='newline_delimited', union_by_name=true,"
    " ignore_errors=true)) TO '" + sys.argv[-1] + "' (FORMAT parquet)", [files]
)
"""

# The same events on both sides: DuckDB's rows as it typed them, natlens's as it did.
SAME_ROWS = """
import sys, duckdb
floor, case = sys.argv[1], sys.argv[2]
a = f'''SELECT event.src_ip, TRY_CAST(event.src_port AS BIGINT), event.dest_ip,
    TRY_CAST(event.dest_port AS BIGINT), event.event_type FROM '{floor}' '''
b = f'''SELECT src_ip, src_port, dest_ip, dest_port, event_type
    FROM '{case}/firewall_events/*.parquet' '''
left = duckdb.sql(f"SELECT count(*) FROM ({a} EXCEPT ALL {b})").fetchone()[0]
right = duckdb.sql(f"SELECT count(*) FROM ({b} EXCEPT ALL {a})").fetchone()[0]
total = duckdb.sql(f"SELECT count(*) FROM ({b})").fetchone()[0]
print(left, right, total)
"""


def text_bytes(files: list[Path]) -> int:
    total = 0
    for path in files:
        with gzip.open(path, "rb") as handle:
            while chunk := handle.read(1 << 24):
                total += len(chunk)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--record-results", action="store_true", help="append to benchmarks/RESULTS.md"
    )
    args = parser.parse_args()

    natlens = str(Path(sys.executable).with_name("natlens"))
    world = HERE / "data" / f"fw-after-nat-{args.records}-seed{args.seed}"
    if not (world / "scenario.json").exists():
        print(f"simulating {args.records:,} records ...", flush=True)
        subprocess.run(
            [natlens, "simulate", str(world), "--scenario", "fw-after-nat", "--records",
             str(args.records), "--seed", str(args.seed)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    firewall = sorted((world / "firewall").rglob("*.log.gz"))
    flows = sorted((world / "flowlogs").rglob("*.log.gz"))
    fw_bytes, flow_bytes = text_bytes(firewall), text_bytes(flows)

    scratch = Path(tempfile.mkdtemp(prefix="natlens-fw-bench-"))
    try:
        floor = scratch / "floor.parquet"
        a_s, a_rss, _ = run([sys.executable, "-c", FLOOR, *map(str, firewall), str(floor)])
        print(f"(a) DuckDB read_json + COPY: {a_s:6.2f} s  {a_rss / 2**20:6.0f} MiB")
        case = scratch / "fw"
        b_s, b_rss, _ = run([natlens, "ingest", str(world / "firewall"), "--case", str(case)])
        print(f"(b) natlens ingest firewall: {b_s:6.2f} s  {b_rss / 2**20:6.0f} MiB")
        c_s, c_rss, _ = run(
            [natlens, "ingest", str(world / "flowlogs"), "--case", str(scratch / "flows")]
        )
        print(f"(c) natlens ingest flow logs: {c_s:6.2f} s  {c_rss / 2**20:6.0f} MiB")
        _s, _rss, out = run([sys.executable, "-c", SAME_ROWS, str(floor), str(case)])
        only_floor, only_natlens, events = (int(x) for x in out.split())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    fw_rate, flow_rate = fw_bytes / b_s / 2**20, flow_bytes / c_s / 2**20
    print(f"firewall {fw_bytes / 2**20:.0f} MiB at {fw_rate:.1f} MiB/s; "
          f"flow logs {flow_bytes / 2**20:.0f} MiB at {flow_rate:.1f} MiB/s")  # fmt: skip
    checks = [
        (f"(b) <= 2x (a): {b_s / a_s:.2f}x", b_s <= 2 * a_s),
        (
            f"(b) per byte at least as fast as (c): {fw_rate:.1f} against {flow_rate:.1f} MiB/s",
            fw_rate >= flow_rate,
        ),
        (
            f"same events as DuckDB: {events:,} events, {only_floor} only in DuckDB's, "
            f"{only_natlens} only in natlens's",
            only_floor == 0 and only_natlens == 0,
        ),
    ]
    check_lines = print_checks(checks)
    if args.record_results:
        table = "\n".join([
            "| run | seconds | peak memory | text per second |",
            "| --- | ---: | ---: | ---: |",
            f"| (a) DuckDB `read_json` + COPY | {a_s:.2f} | {a_rss / 2**20:.0f} MiB | "
            f"{fw_bytes / a_s / 2**20:.1f} MiB/s |",
            f"| (b) `natlens ingest` firewall logs | {b_s:.2f} | {b_rss / 2**20:.0f} MiB | "
            f"{fw_rate:.1f} MiB/s |",
            f"| (c) `natlens ingest` flow logs | {c_s:.2f} | {c_rss / 2**20:.0f} MiB | "
            f"{flow_rate:.1f} MiB/s |",
        ])  # fmt: skip
        append_results(
            f"Network Firewall ingest, {events:,} events",
            f"python benchmarks/firewall_ingest_benchmark.py --records {args.records} "
            f"--seed {args.seed}",
            f" Input: `natlens simulate --scenario fw-after-nat`: {len(firewall)} firewall "
            f"files, {fw_bytes / 2**20:.0f} MiB of text; {len(flows)} flow log files, "
            f"{flow_bytes / 2**20:.0f} MiB.\n\n{table}\n\n" + "\n".join(check_lines),
        )
    if not all(ok for _text, ok in checks):
        raise SystemExit(1)


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"({time.monotonic() - started:.0f} s in all)")
