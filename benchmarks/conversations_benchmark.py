"""Conversations and inbound verdicts benchmark: time and peak memory, end to end.

Targets (issue 15): `natlens conversations` + `natlens inbound` in at most 1.5x the time of the
floor, a minimal DuckDB query on the same Parquet that sessionises the same records (the
unordered 5-tuple, pkt-* first, split after 350 s idle, one row per conversation with its
records, packets and bytes), measured in the same run, at 1M, 3M and 10M records; peak memory
<= 2 GB with DuckDB's memory limit set (it spills to disk); time(10M) / time(1M) <= 11. The
floor's conversations must be natlens's (the same ids, each a hash of the 5-tuple and first
start), so a faster query that answers differently is caught.

    python benchmarks/conversations_benchmark.py --records 1000000 3000000 10000000 \
        [--record-results]
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
Baseline = tuple[float, int, int]  # seconds, peak RSS bytes, conversations
Row = tuple[int, Baseline | None, dict[str, Timing], bool | None]  # ..., same conversations

# argv: the case, where to write the conversation ids, DuckDB's memory limit
FLOOR = """
import sys, duckdb
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(f"SET memory_limit = '{sys.argv[3]}'")
con.execute("SET preserve_insertion_order = false")
parts = sys.argv[1] + "/flows/*.parquet"
con.execute(f'''
COPY (
WITH b AS (
    SELECT coalesce(pkt_srcaddr, srcaddr) AS a, coalesce(pkt_dstaddr, dstaddr) AS z,
        coalesce(srcport, 0) AS ap, coalesce(dstport, 0) AS zp, coalesce(protocol, -1) AS p,
        coalesce(start, 0) AS s, coalesce("end", start, 0) AS e,
        coalesce(packets, 0) AS packets, coalesce(bytes, 0) AS bytes
    FROM read_parquet('{parts}', union_by_name = true)
    WHERE srcaddr IS NOT NULL AND dstaddr IS NOT NULL AND coalesce(log_status, 'OK') = 'OK'
),
k AS (
    SELECT CASE WHEN a < z OR (a = z AND ap <= zp) THEN a ELSE z END AS lo,
        CASE WHEN a < z OR (a = z AND ap <= zp) THEN ap ELSE zp END AS lp,
        CASE WHEN a < z OR (a = z AND ap <= zp) THEN z ELSE a END AS hi,
        CASE WHEN a < z OR (a = z AND ap <= zp) THEN zp ELSE ap END AS hp,
        p, s, e, packets, bytes
    FROM b
),
o AS (
    SELECT *, max(e) OVER (PARTITION BY lo, lp, hi, hp, p ORDER BY s
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS pe
    FROM k
),
g AS (
    SELECT *, sum(CASE WHEN pe IS NULL OR s > pe + 350 THEN 1 ELSE 0 END) OVER (
        PARTITION BY lo, lp, hi, hp, p ORDER BY s
        RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS session
    FROM o
)
SELECT substr(md5(concat_ws('|', lo, CAST(lp AS VARCHAR), hi, CAST(hp AS VARCHAR),
        CAST(p AS VARCHAR), CAST(min(s) AS VARCHAR))), 1, 16) AS conversation,
    count(*) AS records, sum(packets) AS packets, sum(bytes) AS bytes
FROM g
GROUP BY lo, lp, hi, hp, p, session
) TO '{sys.argv[2]}' (FORMAT parquet)
''')
print(con.execute(f"SELECT count(*) FROM read_parquet('{sys.argv[2]}')").fetchone()[0])
"""


def same_conversations(natlens_file: Path, floor_file: Path) -> bool:
    """Whether natlens and the floor found the same conversations (by id)."""
    import duckdb

    con = duckdb.connect()
    differ = con.execute(
        "SELECT count(*) FROM ((SELECT conversation FROM read_parquet(?) EXCEPT ALL "
        "SELECT conversation FROM read_parquet(?)) UNION ALL (SELECT conversation FROM "
        "read_parquet(?) EXCEPT ALL SELECT conversation FROM read_parquet(?)))",
        [str(natlens_file), str(floor_file), str(floor_file), str(natlens_file)],
    ).fetchone()
    return differ is not None and differ[0] == 0


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
            floor_file = root / "floor.parquet"
            if not args.skip_baseline:
                seconds, rss, out = run(
                    [sys.executable, "-c", FLOOR, str(case), str(floor_file), args.memory_limit]
                )
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
            same = (
                same_conversations(root / "conversations.parquet", floor_file) if baseline else None
            )
            row = (_records(case), baseline, timings, same)
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
    """Issue 15's targets: <= 1.5x the floor with the same conversations, peak <= 2 GB, and
    time(10M) / time(1M) <= 11."""
    checks: list[Check] = []
    totals = {}
    for count, baseline, timings, same in rows:
        total = timings["conversations"][0] + timings["inbound"][0]
        totals[count] = total
        peak = max(timings["conversations"][1], timings["inbound"][1])
        if baseline:
            ratio = total / baseline[0]
            checks.append(
                (f"{count:,} records: conversations + inbound <= 1.5x the floor: {ratio:.2f}x",
                 ratio <= 1.5)
            )  # fmt: skip
            checks.append((f"{count:,} records: the floor's conversations are natlens's", same))
        checks.append((f"{count:,} records: peak memory <= 2 GB: {peak / 1e9:.2f} GB", peak <= 2e9))
    small = [c for c in totals if 900_000 <= c <= 1_100_000]
    large = [c for c in totals if 9_000_000 <= c <= 11_000_000]
    if small and large:
        growth = totals[large[0]] / totals[small[0]]
        checks.append((f"time(10M) / time(1M) <= 11: {growth:.1f}", growth <= 11))
    return checks


def _line(
    count: int, baseline: Baseline | None, timings: dict[str, Timing], same: bool | None
) -> str:
    conv, inbound = timings["conversations"], timings["inbound"]
    total = conv[0] + inbound[0]
    peak = max(conv[1], inbound[1])
    base, ratio = "-", "-"
    if baseline:
        base = (
            f"{baseline[0]:.1f} s ({baseline[2]:,} conversations, peak "
            f"{baseline[1] / 1e9:.2f} GB, {'same' if same else 'DIFFERENT'})"
        )
        ratio = f"{total / baseline[0]:.2f}x"
    return (
        f"| {count:,} | {conv[0]:.1f} s ({conv[2]:,} conversations) | {inbound[0]:.1f} s "
        f"({inbound[2]:,} addresses) | {total:.1f} s | {base} | {ratio} | {peak / 1e9:.2f} GB |"
    )


HEADER = (
    "| records | conversations | inbound | natlens total | DuckDB floor | ratio | "
    "natlens peak memory |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def _record(rows: list[Row], args: argparse.Namespace, check_lines: list[str]) -> None:
    append_results(
        "Conversations and inbound verdicts",
        f"python benchmarks/conversations_benchmark.py --records "
        f"{' '.join(str(r[0]) for r in rows)} --scenario {args.scenario} --log-format "
        f"{args.log_format} --memory-limit {args.memory_limit}",
        " Each command is a fresh process writing Parquet; the floor sessionises the same "
        "records in one DuckDB query (same memory limit) and writes its conversation ids."
        f"\n\n{HEADER}\n" + "\n".join(_line(*r) for r in rows) + "\n\n" + "\n".join(check_lines),
    )


if __name__ == "__main__":
    main()
