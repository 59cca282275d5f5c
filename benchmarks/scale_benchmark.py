"""Scale benchmark (issue 18): ingest + conversations + attribute, per engine, per stage.

Simulates a firewall-after-NAT world of N flow records (with its Network Firewall logs), then
times each stage as a user runs it, each in a fresh process:

- ingest: local (DuckDB writes nothing; natlens's readers in this process) and on a Spark
  standalone cluster of two workers on this machine (--engine spark: the executors read);
- conversations and attribute: on DuckDB, on Spark local[2], and on the same cluster.

docs/scale.md turns the per-stage costs into estimates for N workers. Each Spark command pays
its JVM start; that is part of what a user waits for, so it is kept in.

    python benchmarks/scale_benchmark.py --records 1000000 [--record-results]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from ingest_benchmark import append_results, run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--record-results", action="store_true")
    args = parser.parse_args()
    from tests.spark_cluster import SparkCluster

    natlens = str(Path(sys.executable).parent / "natlens")
    # The executors' Python workers (ingest) run this Python, where natlens is installed.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    root = Path(tempfile.mkdtemp(prefix="natlens-scale-"))
    cluster = SparkCluster(workers=2, cores=1, memory="4g")
    rows: list[tuple[str, str, float, int]] = []
    try:
        world = root / "w"
        run([natlens, "simulate", str(world), "--scenario", "fw-after-nat", "--records",
             str(args.records), "--json"])  # fmt: skip
        sources = [str(world / "flowlogs"), str(world / "firewall")]
        for engine, extra in (("duckdb", []), ("spark cluster", ["--engine", "spark",
                              "--spark-master", cluster.url])):  # fmt: skip
            case = root / f"case-{engine.split()[0]}"
            seconds, rss, _out = run([natlens, "ingest", *sources, "--case", str(case), *extra])
            rows.append(("ingest", engine, seconds, rss))
            print(rows[-1], flush=True)
        case = root / "case-duckdb"
        context = ["--context", str(world / "context")]
        engines = (
            ("duckdb", []),
            ("spark local[2]", ["--engine", "spark"]),
            ("spark cluster", ["--engine", "spark", "--spark-master", cluster.url]),
        )
        for analysis in ("conversations", "attribute"):
            for engine, extra in engines:
                shutil.rmtree(case / "derived", ignore_errors=True)  # each computes every stage
                out = root / f"{analysis}.parquet"
                seconds, rss, _ = run([natlens, analysis, str(case), *context, "--format",
                                       "parquet", "--output", str(out), *extra])  # fmt: skip
                rows.append((analysis, engine, seconds, rss))
                print(rows[-1], flush=True)
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    table = "\n".join(
        f"| {stage} | {engine} | {seconds:.1f} | {rss / 2**20:,.0f} |"
        for stage, engine, seconds, rss in rows
    )
    text = (
        f"\n\n{args.records:,} simulated flow records (fw-after-nat, with its firewall logs); "
        "each command a fresh process; the cluster: a master and two workers of one core each "
        "on the same machine. Peak memory is the natlens process's (for Spark: the driver's "
        "Python, not its JVMs).\n\n| stage | engine | seconds | peak MB |\n|---|---|---:|---:|\n"
        + table
    )
    print(text)
    if args.record_results:
        append_results("Scale: ingest, conversations, attribute per engine (issue 18)",
                       " ".join(sys.argv[:3]), text)  # fmt: skip


if __name__ == "__main__":
    main()
