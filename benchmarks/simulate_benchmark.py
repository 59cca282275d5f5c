"""Simulator benchmark: time and peak memory of `natlens simulate --records N`.

Targets (issue 3): 10 million default-format gzip records in under 2 minutes on this 2-core
machine; 100 million without running out of memory (memory must not grow with N).

    python benchmarks/simulate_benchmark.py --records 10000000 100000000 [--record-results]
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

from ingest_benchmark import machine, print_checks, run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[10_000_000])
    parser.add_argument("--record-results", action="store_true")
    args = parser.parse_args()
    natlens = str(Path(sys.executable).with_name("natlens"))
    rows = []
    for records in args.records:
        out = Path(tempfile.mkdtemp(prefix="natlens-sim-bench-"))
        try:
            seconds, rss, _ = run(
                [natlens, "simulate", str(out / "w"), "--scenario", "nat-basic", "--records",
                 str(records), "--log-format", "default", "--json"]
            )  # fmt: skip
            written = sum(p.stat().st_size for p in (out / "w").rglob("*") if p.is_file())
            count = sum(1 for _ in (out / "w" / "flowlogs").rglob("*.log.gz"))
        finally:
            shutil.rmtree(out, ignore_errors=True)
        print(f"{records:>12,} records: {seconds:7.1f} s, peak {rss / 2**30:.2f} GiB, "
              f"{written / 2**30:.2f} GiB written in {count} flow log files")  # fmt: skip
        rows.append((records, seconds, rss, written))
    checks = []
    for records, seconds, _rss, _written in rows:
        if records == 10_000_000:
            text = f"10 million records in under 2 minutes: {seconds:.1f} s"
            checks.append((text, seconds < 120))
    if len(rows) > 1:
        # Memory must not grow with N: the largest run may use at most 1.5x the smallest's peak.
        (small, _s, small_rss, _w), (large, _s2, large_rss, _w2) = min(rows), max(rows)
        ratio = large_rss / small_rss
        checks.append((f"peak memory {large:,} records / {small:,} records: {ratio:.2f}x "
                       "(at most 1.5x)", ratio <= 1.5))  # fmt: skip
    check_lines = print_checks(checks)
    if args.record_results:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines = [
            f"\n### Simulator, `natlens simulate --scenario nat-basic --records N` ({when})\n",
            f"Machine: {machine()}.\n",
            "| records | seconds | peak memory | written |",
            "| ---: | ---: | ---: | ---: |",
            *(
                f"| {r:,} | {s:.1f} | {m / 2**30:.2f} GiB | {w / 2**30:.2f} GiB |"
                for r, s, m, w in rows
            ),
            "",
            *check_lines,
            "",
        ]
        with open(HERE / "RESULTS.md", "a") as out_file:
            out_file.write("\n".join(lines))


if __name__ == "__main__":
    main()
