"""Ingest benchmark: natlens against a bare DuckDB read and a line-by-line Python parse.

Simulates N default-format records with `natlens simulate` (S3 text files: gzip, a header line;
cached under benchmarks/data/), then times in one run, each in a fresh process with its peak
memory:

  (a) DuckDB: SELECT count(*) FROM read_csv(files)        - the floor for reading the files
  (b) natlens ingest DIR --case DIR                        - parse, check, type, write Parquet
  (c) Python: for line in gzip: dict(zip(fields, split)) - what flowlogs-reader-style code does
  (d) DuckDB: COPY (read_csv, the same types, "-" as NULL, IPv4 addresses as integers, the
      source file) TO Parquet                             - the same parse and conversion, bare

Targets (issue 2): (b) <= 3x (a); (b) at least 3x faster than (c); peak memory of (b) <= 1.5 GB.
Target (issue 15): (b) <= 1.3x (d). (d) leaves out what natlens adds: each record's line number,
the range checks of every field, the accounting of every line, and the crash-safe case.

    python benchmarks/ingest_benchmark.py [--records 10000000] [--record-results]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).parent

DUCKDB_COUNT = """
import sys, duckdb
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
sql = f"SELECT count(*) FROM read_csv('{sys.argv[1]}/**/*.log.gz', delim=' ', header=true)"
print(con.execute(sql).fetchone()[0])
"""

# An address as a 64-bit integer when it is IPv4 (what natlens keeps beside the text, to compare
# with CIDR ranges), from its four parts.
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4 = (
    f"CASE WHEN regexp_full_match({{c}}, '{_OCTET}([.]{_OCTET}){{{{3}}}}') THEN "
    "CAST(split_part({c}, '.', 1) AS BIGINT) * 16777216 + CAST(split_part({c}, '.', 2) AS BIGINT)"
    " * 65536 + CAST(split_part({c}, '.', 3) AS BIGINT) * 256 + CAST(split_part({c}, '.', 4) AS"
    " BIGINT) END"
)

DUCKDB_COPY = """
import sys, duckdb
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(sys.argv[1])
print(con.execute(f"SELECT count(*) FROM read_parquet('{sys.argv[2]}/*.parquet')").fetchone()[0])
"""


def copy_sql(files: Path, target: Path) -> str:
    """(d): the records, typed as natlens types them, with the IPv4 addresses as integers."""
    ints = {"version": "INTEGER", "srcport": "INTEGER", "dstport": "INTEGER",
            "protocol": "INTEGER", "packets": "BIGINT", "bytes": "BIGINT", "start": "BIGINT",
            "end": "BIGINT"}  # fmt: skip
    texts = {"account-id": "account_id", "interface-id": "interface_id", "srcaddr": "srcaddr",
             "dstaddr": "dstaddr", "action": "action", "log-status": "log_status"}  # fmt: skip
    columns = [
        *(f'TRY_CAST("{name}" AS {kind}) AS "{name}"' for name, kind in ints.items()),
        *(f'"{name}" AS {alias}' for name, alias in texts.items()),
        _V4.format(c="srcaddr") + " AS srcaddr_v4",
        _V4.format(c="dstaddr") + " AS dstaddr_v4",
        "filename AS source",
    ]
    return (
        f"COPY (SELECT {', '.join(columns)} FROM read_csv('{files}/**/*.log.gz', delim=' ', "
        "header=true, all_varchar=true, nullstr='-', filename=true)) "
        f"TO '{target}' (FORMAT parquet, COMPRESSION zstd, PER_THREAD_OUTPUT true)"
    )


PYTHON_DICTS = """
import gzip, pathlib, sys
INTS = {"version", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end"}
count = 0
for path in sorted(pathlib.Path(sys.argv[1]).rglob("*.log.gz")):
    with gzip.open(path, "rt") as lines:
        fields = next(lines).split()
        for line in lines:
            record = dict(zip(fields, line.split()))
            for key in INTS:
                value = record[key]
                record[key] = None if value == "-" else int(value)
            count += 1
print(count)
"""


def run(args: list[str]) -> tuple[float, int, str]:
    """Seconds, peak RSS in bytes and stdout of one command in a fresh process."""
    started = time.monotonic()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    out = process.stdout.read().decode() if process.stdout else ""
    err = process.stderr.read().decode() if process.stderr else ""
    if status != 0:
        raise SystemExit(f"{args[:3]} failed: {err}")
    return seconds, usage.ru_maxrss * 1024, out


Check = tuple[str, bool]


def print_checks(checks: list[Check]) -> list[str]:
    """Print each target as PASS or FAIL; returns the same as Markdown list lines."""
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return [f"- {'PASS' if ok else 'FAIL'}: {text}" for text, ok in checks]


def append_results(title: str, command: str, text: str) -> None:
    """Add a dated section to RESULTS.md: what was run, on which machine, and ``text``."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    section = f"\n## {title} ({stamp})\n\n`{command}` on {machine()}.{text.rstrip()}\n"
    path = HERE / "RESULTS.md"
    path.write_text(path.read_text() + section)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.platform()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--record-results", action="store_true", help="append to benchmarks/RESULTS.md"
    )
    args = parser.parse_args()

    natlens = str(Path(sys.executable).with_name("natlens"))
    world = HERE / "data" / f"nat-basic-{args.records}-seed{args.seed}"
    data = world / "flowlogs" / "vpc"
    if not (world / "scenario.json").exists():
        # In a child process: Linux children inherit their parent's peak RSS, so the process
        # that runs the contenders must stay small.
        print(f"simulating {args.records:,} records ...", flush=True)
        started = time.monotonic()
        subprocess.run(
            [natlens, "simulate", str(world), "--scenario", "nat-basic", "--records",
             str(args.records), "--seed", str(args.seed), "--log-format", "default"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        print(f"simulated in {time.monotonic() - started:.1f} s", flush=True)
    size = sum(p.stat().st_size for p in data.rglob("*.log.gz"))

    results = {}
    a_seconds, a_rss, a_out = run([sys.executable, "-c", DUCKDB_COUNT, str(data)])
    results["a"] = (a_seconds, a_rss)
    print(f"(a) DuckDB read_csv count: {a_seconds:6.2f} s  {a_rss / 2**20:7.0f} MiB")

    case = Path(tempfile.mkdtemp(prefix="natlens-bench-")) / "case"
    try:
        b_seconds, b_rss, _ = run([natlens, "ingest", str(data), "--case", str(case), "--json"])
    finally:
        shutil.rmtree(case.parent, ignore_errors=True)
    results["b"] = (b_seconds, b_rss)
    print(f"(b) natlens ingest:        {b_seconds:6.2f} s  {b_rss / 2**20:7.0f} MiB")

    copied = Path(tempfile.mkdtemp(prefix="natlens-bench-copy-")) / "flows"
    try:
        d_seconds, d_rss, d_out = run(
            [sys.executable, "-c", DUCKDB_COPY, copy_sql(data, copied), str(copied)]
        )
    finally:
        shutil.rmtree(copied.parent, ignore_errors=True)
    results["d"] = (d_seconds, d_rss)
    print(f"(d) DuckDB COPY, typed:    {d_seconds:6.2f} s  {d_rss / 2**20:7.0f} MiB")
    if a_out.split() != d_out.split():
        raise SystemExit(f"record counts differ: read_csv {a_out.strip()}, COPY {d_out.strip()}")

    c_seconds, c_rss, c_out = run([sys.executable, "-c", PYTHON_DICTS, str(data)])
    results["c"] = (c_seconds, c_rss)
    print(f"(c) Python dicts:          {c_seconds:6.2f} s  {c_rss / 2**20:7.0f} MiB")
    if a_out.split() != c_out.split():
        raise SystemExit(f"record counts differ: DuckDB {a_out.strip()}, Python {c_out.strip()}")

    checks = [
        (f"(b) <= 3x (a): {b_seconds / a_seconds:.2f}x", b_seconds <= 3 * a_seconds),
        (f"(b) >= 3x faster than (c): {c_seconds / b_seconds:.2f}x", c_seconds >= 3 * b_seconds),
        (f"peak memory of (b) <= 1.5 GB: {b_rss / 1e9:.2f} GB", b_rss <= 1.5e9),
        (f"(b) <= 1.3x (d): {b_seconds / d_seconds:.2f}x", b_seconds <= 1.3 * d_seconds),
    ]
    check_lines = print_checks(checks)

    if args.record_results:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines = [
            f"\n### Ingest, {args.records:,} default-format records ({when})\n",
            f"Machine: {machine()}. Input: `natlens simulate --scenario nat-basic --records "
            f"{args.records} --seed {args.seed}`, {size / 2**20:.0f} MiB of gzip text files.\n",
            "| run | seconds | peak memory |",
            "| --- | ---: | ---: |",
            f"| (a) DuckDB `read_csv` count | {a_seconds:.2f} | {a_rss / 2**20:.0f} MiB |",
            f"| (b) `natlens ingest` | {b_seconds:.2f} | {b_rss / 2**20:.0f} MiB |",
            f"| (c) Python line-by-line dicts | {c_seconds:.2f} | {c_rss / 2**20:.0f} MiB |",
            f"| (d) DuckDB COPY, the same types and address integers | {d_seconds:.2f} "
            f"| {d_rss / 2**20:.0f} MiB |",
            "",
            *check_lines,
            "",
        ]
        with open(HERE / "RESULTS.md", "a") as out:
            out.write("\n".join(lines))
    if not all(ok for _text, ok in checks):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
