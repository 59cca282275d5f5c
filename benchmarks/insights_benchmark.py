"""Logs Insights benchmark: `natlens insights` against the same query written by hand in DuckDB SQL.

Target (issue 17): on 10 million records, a filter + stats query in at most 1.5x the time of
the equivalent hand-written DuckDB SQL on the case. Both run in a fresh process (the floor's
process only imports DuckDB and reads the case's Parquet parts); each is run twice and the
faster run counts, so both read from a warm page cache.

    python benchmarks/insights_benchmark.py CASE [--record-results]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent

NATLENS = [sys.executable, "-m", "natlens"]
TARGET = 1.5

QUERIES = {
    "filter + stats": (
        'filter action = "REJECT" and isIpv4InSubnet(dstAddr, "10.0.0.0/8") '
        "| stats count(*) as records, sum(bytes) as bytes by srcAddr "
        "| sort records desc | limit 20",
        "SELECT srcaddr, count(*) AS records, sum(bytes) AS bytes FROM flows "
        "WHERE action = 'REJECT' AND dstaddr_v4 BETWEEN 167772160 AND 184549375 "
        "GROUP BY srcaddr ORDER BY records DESC LIMIT 20",
    ),
    "top talkers": (
        "stats sum(bytes) as bytesTransferred by srcAddr, dstAddr "
        "| sort bytesTransferred desc | limit 10",
        "SELECT srcaddr, dstaddr, sum(bytes) AS b FROM flows GROUP BY srcaddr, dstaddr "
        "ORDER BY b DESC LIMIT 10",
    ),
    "bin(5m)": (
        "filter dstPort = 443 | stats count(*) as n, sum(packets) as p by bin(5m) as t "
        "| sort t | limit 1000",
        "SELECT start // 300 * 300 AS t, count(*) AS n, sum(packets) AS p FROM flows "
        "WHERE dstport = 443 GROUP BY t ORDER BY t LIMIT 1000",
    ),
}


def floor(case: Path, sql: str) -> None:
    """Run ``sql`` on the case's flows with DuckDB alone (this script, in a child process)."""
    import duckdb

    manifest = json.loads((case / "manifest.json").read_text())
    parts = [str(case / p) for p in manifest["tables"]["flows"]["parts"]]
    con = duckdb.connect()
    con.execute("SET VARIABLE parts = ?", [parts])
    con.execute(
        "CREATE VIEW flows AS SELECT * FROM read_parquet(getvariable('parts'), "
        "union_by_name = true)"
    )
    rows = con.execute(sql).to_arrow_table().num_rows
    print(rows)


def in_process(case_dir: Path) -> dict[str, tuple[float, float]]:
    """The queries alone, in this process, best of three each: the compiled query against the
    hand-written one on the same DuckDB connection (no start-up on either side)."""
    from natlens.case import Case
    from natlens.engine import DuckDBEngine
    from natlens.insights import compile_query

    timings = {}
    with Case.open(case_dir) as case, DuckDBEngine() as engine:
        engine.register_case(case)
        for name, (query, sql) in QUERIES.items():
            compiled = compile_query(query, case, "duckdb").sql
            pair = []
            for statement in (compiled, sql):
                runs = []
                for _ in range(3):
                    started = time.monotonic()
                    engine.query(statement)
                    runs.append(time.monotonic() - started)
                pair.append(min(runs))
            timings[name] = (pair[0], pair[1])
    return timings


def best(command: list[str], times: int = 2) -> tuple[float, str]:
    from ingest_benchmark import run

    runs = [run(command) for _ in range(times)]
    seconds = min(r[0] for r in runs)
    return seconds, runs[0][2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", type=Path)
    parser.add_argument("--record-results", action="store_true")
    parser.add_argument("--floor", metavar="SQL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:  # the child: DuckDB and nothing else
        floor(args.case, args.floor)
        return
    sys.path.insert(0, str(HERE))
    from ingest_benchmark import append_results, print_checks

    manifest = json.loads((args.case / "manifest.json").read_text())
    records = manifest["tables"]["flows"]["records"]
    print(f"case {args.case}: {records:,} records")
    rows, checks = [], []
    started = time.monotonic()
    for name, (query, sql) in QUERIES.items():
        ours, out = best([*NATLENS, "insights", str(args.case), query, "--format", "jsonl"])
        theirs, count = best([sys.executable, __file__, str(args.case), "--floor", sql])
        ratio = ours / theirs
        lines = len(out.splitlines())
        assert lines == int(count.strip()), (name, lines, count)  # the same number of rows
        print(f"{name:16} natlens {ours:6.1f} s   hand-written DuckDB {theirs:6.1f} s   "
              f"{ratio:4.2f}x   ({lines} rows)")  # fmt: skip
        rows.append(f"| {name} | {ours:.1f} | {theirs:.1f} | {ratio:.2f}x |")
        checks.append(
            (f"{name}: {ratio:.2f}x the hand-written SQL (<= {TARGET}x)", ratio <= TARGET)
        )
    print(f"({time.monotonic() - started:.0f} s in all)")
    alone = in_process(args.case)
    for name, (ours_alone, theirs_alone) in alone.items():
        print(f"{name:16} the query alone: {ours_alone:.2f} s against {theirs_alone:.2f} s "
              f"({ours_alone / theirs_alone:.2f}x)")  # fmt: skip
        rows[list(QUERIES).index(name)] += (
            f" {ours_alone:.2f} / {theirs_alone:.2f} ({ours_alone / theirs_alone:.2f}x) |"
        )
    lines = print_checks(checks)
    if args.record_results:
        queries = "\n".join(f"- {name}: `{q}` against `{s}`" for name, (q, s) in QUERIES.items())
        text = (
            f"\n\nCase `{args.case}`, {records:,} records; the faster of two runs each, every "
            "run a fresh process; then the queries alone, in one process (best of three).\n\n"
            "| query | natlens insights (s) | DuckDB by hand (s) | ratio | the queries alone (s) |"
            "\n|---|---:|---:|---:|---:|\n"
            + "\n".join(rows)
            + "\n\n"
            + queries
            + "\n\n"
            + "\n".join(lines)
        )
        append_results("Logs Insights queries (issue 17)", " ".join(sys.argv[:2]), text)


if __name__ == "__main__":
    main()
