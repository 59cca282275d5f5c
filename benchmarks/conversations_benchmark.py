"""Conversations and inbound verdicts benchmark: time and peak memory, end to end.

Target (issue 4): on 10 million simulated records, `natlens conversations` + `natlens inbound`
in at most 2x the time of a bare DuckDB self-join of the same Parquet that pairs each record with
its reverse (measured in the same run), peak memory <= 2 GB with DuckDB's memory limit set (it
spills to disk); 100 million records must complete.

    python benchmarks/conversations_benchmark.py --records 10000000 [--record-results]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from ingest_benchmark import machine, run  # noqa: E402

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
            count = _records(case)
            baseline = None
            if not args.skip_baseline:
                seconds, rss, out = run([sys.executable, "-c", SELF_JOIN, str(case)])
                baseline = (seconds, rss, int(out.strip()))
            timings = {}
            for command in ("conversations", "inbound"):
                target = root / f"{command}.parquet"
                timings[command] = run(
                    [natlens, command, str(case), "--format", "parquet", "--output", str(target),
                     "--memory-limit", args.memory_limit]
                )  # fmt: skip
                timings[command] = (*timings[command][:2], _rows(target))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        rows.append((count, baseline, timings))
        _print(rows[-1], args)
    if args.record_results:
        _record(rows, args)


def _records(case: Path) -> int:
    import json

    return int(json.loads((case / "manifest.json").read_text())["tables"]["flows"]["records"])


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def _line(count, baseline, timings) -> str:  # type: ignore[no-untyped-def]
    conv, inbound = timings["conversations"], timings["inbound"]
    total = conv[0] + inbound[0]
    peak = max(conv[1], inbound[1])
    base = f"{baseline[0]:.1f} s ({baseline[2]:,} pairs, peak {baseline[1] / 1e9:.2f} GB)" if (
        baseline
    ) else "-"  # fmt: skip
    ratio = f"{total / baseline[0]:.2f}x" if baseline else "-"
    return (
        f"| {count:,} | {conv[0]:.1f} s ({conv[2]:,} conversations) | {inbound[0]:.1f} s "
        f"({inbound[2]:,} addresses) | {total:.1f} s | {base} | {ratio} | {peak / 1e9:.2f} GB |"
    )


HEADER = (
    "| records | conversations | inbound | natlens total | DuckDB self-join | ratio | "
    "natlens peak memory |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def _print(row, args) -> None:  # type: ignore[no-untyped-def]
    print(HEADER)
    print(_line(*row))


def _record(rows, args) -> None:  # type: ignore[no-untyped-def]
    path = HERE / "RESULTS.md"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    text = (
        f"\n## Conversations and inbound verdicts ({stamp})\n\n"
        f"`python benchmarks/conversations_benchmark.py --records "
        f"{' '.join(str(r[0]) for r in rows)} --scenario {args.scenario} --log-format "
        f"{args.log_format} --memory-limit {args.memory_limit}` on {machine()}. Each command "
        "is a fresh process writing Parquet; the self-join counts record pairs.\n\n"
        + HEADER
        + "\n"
        + "\n".join(_line(*r) for r in rows)
        + "\n"
    )
    path.write_text(path.read_text() + text)


if __name__ == "__main__":
    main()
