"""Conversations and inbound verdicts benchmark: time and peak memory, end to end.

Target (issue 4): on 10 million simulated records, `natlens conversations` + `natlens inbound`
in at most 2x the time of a bare DuckDB self-join of the same Parquet that pairs each record with
its reverse (measured in the same run), peak memory <= 2 GB with DuckDB's memory limit set (it
spills to disk); 100 million records must complete.

    python benchmarks/conversations_benchmark.py --records 10000000 [--record-results]
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

Timing = tuple[float, int, int]  # seconds, peak RSS bytes, output rows
Baseline = tuple[float, int, int]  # seconds, peak RSS bytes, record pairs
Row = tuple[int, Baseline | None, dict[str, Timing]]

SELF_JOIN = """
import sys, duckdb
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
parts = sys.argv[1] + "/flows/*.parquet"
print(con.execute(f'''
    SELECT count(*) FROM read_parquet('{parts}', union_by_name = true) AS a
    JOIN read_parquet('{parts}', union_by_name = true) AS b
      ON a.interface_id = b.interface_id AND a.srcaddr = b.dstaddr AND a.dstaddr = b.srcaddr
     AND a.srcport = b.dstport AND a.dstport = b.srcport AND a.protocol = b.protocol
''').fetchone()[0])
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[10_000_000])
    parser.add_argument("--scenario", default="fw-after-nat")
    parser.add_argument("--log-format", default="v5")
    parser.add_argument("--memory-limit", default="1.3GB")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--with-context", action="store_true", help="give natlens the simulated VPC's context"
    )
    parser.add_argument("--record-results", action="store_true")
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    natlens = str(bin_dir / "natlens")
    rows = []
    for records in args.records:
        root = Path(tempfile.mkdtemp(prefix="natlens-conv-bench-"))
        try:
            world, case = root / "w", root / "case"
            run([natlens, "simulate", str(world), "--scenario", args.scenario, "--records",
                 str(records), "--log-format", args.log_format, "--json"])  # fmt: skip
            run([natlens, "ingest", str(world / "flowlogs"), "--case", str(case), "--json"])
            baseline = None
            if not args.skip_baseline:
                seconds, rss, out = run([sys.executable, "-c", SELF_JOIN, str(case)])
                baseline = (seconds, rss, int(out.strip()))
            timings = {}
            for command in ("conversations", "inbound"):
                target = root / f"{command}.parquet"
                seconds, rss, _ = run(
                    [natlens, command, str(case), "--format", "parquet", "--output", str(target),
                     "--memory-limit", args.memory_limit,
                     *(["--context", str(world / "context")] if args.with_context else [])]
                )  # fmt: skip
                timings[command] = (seconds, rss, pq.ParquetFile(target).metadata.num_rows)
            row = (_records(case), baseline, timings)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        rows.append(row)
        print(HEADER)
        print(_line(*row))
    check_lines = print_checks(_checks(rows))
    if args.record_results:
        _record(rows, args, check_lines)


def _records(case: Path) -> int:
    manifest = json.loads((case / "manifest.json").read_text())
    return int(manifest["tables"]["flows"]["records"])


def _checks(rows: list[Row]) -> list[Check]:
    """Issue 4's targets, at 10 million records: <= 2x the self-join, peak <= 2 GB."""
    checks: list[Check] = []
    for count, baseline, timings in rows:
        if not 9_000_000 <= count <= 11_000_000:
            continue
        total = timings["conversations"][0] + timings["inbound"][0]
        peak = max(timings["conversations"][1], timings["inbound"][1])
        if baseline:
            ratio = total / baseline[0]
            checks.append(
                (f"conversations + inbound <= 2x the self-join: {ratio:.2f}x", ratio <= 2)
            )
        checks.append((f"peak memory <= 2 GB: {peak / 1e9:.2f} GB", peak <= 2e9))
    return checks


def _line(count: int, baseline: Baseline | None, timings: dict[str, Timing]) -> str:
    conv, inbound = timings["conversations"], timings["inbound"]
    total = conv[0] + inbound[0]
    peak = max(conv[1], inbound[1])
    base, ratio = "-", "-"
    if baseline:
        base = f"{baseline[0]:.1f} s ({baseline[2]:,} pairs, peak {baseline[1] / 1e9:.2f} GB)"
        ratio = f"{total / baseline[0]:.2f}x"
    return (
        f"| {count:,} | {conv[0]:.1f} s ({conv[2]:,} conversations) | {inbound[0]:.1f} s "
        f"({inbound[2]:,} addresses) | {total:.1f} s | {base} | {ratio} | {peak / 1e9:.2f} GB |"
    )


HEADER = (
    "| records | conversations | inbound | natlens total | DuckDB self-join | ratio | "
    "natlens peak memory |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def _record(rows: list[Row], args: argparse.Namespace, check_lines: list[str]) -> None:
    append_results(
        "Conversations and inbound verdicts",
        f"python benchmarks/conversations_benchmark.py --records "
        f"{' '.join(str(r[0]) for r in rows)} --scenario {args.scenario} --log-format "
        f"{args.log_format} --memory-limit {args.memory_limit}",
        " Each command is a fresh process writing Parquet; the self-join counts record pairs."
        f"\n\n{HEADER}\n" + "\n".join(_line(*r) for r in rows) + "\n\n" + "\n".join(check_lines),
    )


if __name__ == "__main__":
    main()
