"""Ingest benchmark: natlens against a bare DuckDB read and a line-by-line Python parse.

Simulates N default-format records with `natlens simulate` (S3 text files: gzip, a header line;
cached under benchmarks/data/), then times in one run, each in a fresh process with its peak
memory:

  (a) DuckDB: SELECT count(*) FROM read_csv(files)        - the floor for reading the files
  (b) natlens ingest DIR --case DIR                        - parse, check, type, write Parquet
  (c) Python: for line in gzip: dict(zip(fields, split)) - what flowlogs-reader-style code does

Targets (issue 2): (b) <= 3x (a); (b) at least 3x faster than (c); peak memory of (b) <= 1.5 GB.

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

    c_seconds, c_rss, c_out = run([sys.executable, "-c", PYTHON_DICTS, str(data)])
    results["c"] = (c_seconds, c_rss)
    print(f"(c) Python dicts:          {c_seconds:6.2f} s  {c_rss / 2**20:7.0f} MiB")
    if a_out.split() != c_out.split():
        raise SystemExit(f"record counts differ: DuckDB {a_out.strip()}, Python {c_out.strip()}")

    checks = [
        (f"(b) <= 3x (a): {b_seconds / a_seconds:.2f}x", b_seconds <= 3 * a_seconds),
        (f"(b) >= 3x faster than (c): {c_seconds / b_seconds:.2f}x", c_seconds >= 3 * b_seconds),
        (f"peak memory of (b) <= 1.5 GB: {b_rss / 1e9:.2f} GB", b_rss <= 1.5e9),
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
