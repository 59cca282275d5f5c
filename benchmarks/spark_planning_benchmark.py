"""Spark planning benchmark: how much of an analysis on Spark is spent planning, not working.

Issue 18's target: on 1M records, Spark's planning (analysis, optimisation and physical planning
of every statement natlens sends) at most 10% of the run. Spark records each query's phases in
its QueryPlanningTracker; this script runs one analysis on a case with natlens's SparkEngine,
collects every DataFrame the engine creates (its shared stages and the final statement), and
sums their phases against the wall time.

    python benchmarks/spark_planning_benchmark.py CASE [--analysis conversations] [--record-results]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
TARGET = 0.10


def run(
    case_dir: Path, analysis: str, conf: list[tuple[str, str]] | None = None
) -> tuple[float, dict[str, float], int]:
    """Wall seconds, planning seconds per phase (summed over every statement), and rows."""
    from natlens.analyses.conversations import ConversationOptions, conversations_sql
    from natlens.analyses.inbound import inbound_sql
    from natlens.case import Case
    from natlens.engine import SparkEngine

    engine = SparkEngine("local[2]", conf or [])
    frames: list[Any] = []
    original = engine.spark.sql

    def recorded(text: str, *args: Any, **kwargs: Any) -> Any:
        frame = original(text, *args, **kwargs)
        frames.append(frame)
        return frame

    engine.spark.sql = recorded  # type: ignore[method-assign]
    sql = {"conversations": conversations_sql, "inbound": inbound_sql}[analysis]
    with Case.open(case_dir) as case:
        engine.register_case(case)
        started = time.monotonic()
        table = engine.query(sql(ConversationOptions()))
        wall = time.monotonic() - started
    phases: dict[str, float] = {}
    for frame in frames:
        tracker = frame._jdf.queryExecution().tracker()
        summaries = tracker.phases()
        iterator = summaries.iterator()
        while iterator.hasNext():
            entry = iterator.next()
            name, summary = entry._1(), entry._2()
            phases[name] = phases.get(name, 0.0) + summary.durationMs() / 1000
    engine.close()
    return wall, phases, table.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", type=Path)
    parser.add_argument("--analysis", choices=("conversations", "inbound"), default="conversations")
    parser.add_argument(
        "--spark-conf", action="append", default=[], metavar="KEY=VALUE",
        help="a Spark setting for the run (repeatable): to measure one's effect",
    )  # fmt: skip
    parser.add_argument("--record-results", action="store_true")
    args = parser.parse_args()
    conf = [tuple(item.split("=", 1)) for item in args.spark_conf]
    sys.path.insert(0, str(HERE))
    from ingest_benchmark import append_results, print_checks

    wall, phases, rows = run(args.case, args.analysis, conf)  # type: ignore[arg-type]
    planning = sum(phases.values())
    share = planning / wall if wall else 0.0
    print(f"{args.analysis} on Spark: {wall:.1f} s, {rows:,} rows")
    for name, seconds in sorted(phases.items()):
        print(f"  {name:14} {seconds:8.1f} s")
    print(f"  {'all phases':14} {planning:8.1f} s = {share:.1%} of the run")
    lines = print_checks([(f"planning {share:.1%} of the run (<= {TARGET:.0%})", share <= TARGET)])
    if args.record_results:
        table = "\n".join(f"| {n} | {s:.1f} |" for n, s in sorted(phases.items()))
        text = (
            f"\n\nCase `{args.case}`, `{args.analysis}` on Spark local[2], {rows:,} rows: "
            f"{wall:.1f} s.\n\n| phase (every statement, summed) | seconds |\n|---|---:|\n"
            f"{table}\n| **all phases** | **{planning:.1f}** ({share:.1%}) |\n\n" + "\n".join(lines)
        )
        append_results("Spark planning (issue 18)", " ".join(sys.argv[:2]), text)


if __name__ == "__main__":
    main()
