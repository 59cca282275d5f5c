"""Scale benchmark (issue 18): ingest + conversations + attribute, per engine, per stage.

Simulates a firewall-after-NAT world of N flow records (with its Network Firewall logs), then
times each stage as a user runs it, each in a fresh process:

- ingest: local (DuckDB writes nothing; natlens's readers in this process) and on a Spark
  standalone cluster of two workers on this machine (--engine spark: the executors read);
- conversations and attribute: on DuckDB, on Spark local[2], and on the same cluster;
- conversations --in-place: the engine reads the flow log files where they lie (no case).

docs/scale.md turns the per-stage costs into estimates for N workers. Each Spark command pays
its JVM start; that is part of what a user waits for, so it is kept in.

    python benchmarks/scale_benchmark.py --records 1000000 [--record-results]
    python benchmarks/scale_benchmark.py --records 100000000 --engines duckdb --record-results

A stage that fails (out of memory, say) is recorded as failed, with its time, and the others
still run. A run at 100M records on Spark takes hours on two cores: ``--work DIR`` keeps the
simulated world and the cases there (made once, reused by the next run), and ``--stages`` runs
some of the stages, so that the run can be made in parts.
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

ENGINES = ("duckdb", "spark-local", "spark-cluster")
STAGES = ("ingest", "conversations", "attribute", "in-place")


def attempt(args: list[str]) -> tuple[float, int, bool]:
    """Seconds, peak RSS and whether the command succeeded (a failure is a result too)."""
    import time

    started = time.monotonic()
    try:
        seconds, rss, _out = run(args)
    except SystemExit as exc:
        print(str(exc)[-2000:], file=sys.stderr, flush=True)
        return time.monotonic() - started, 0, False
    return seconds, rss, True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--record-results", action="store_true")
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help=f"comma separated, of {', '.join(ENGINES)}"
    )
    parser.add_argument("--stages", default=",".join(STAGES), help=f"of {', '.join(STAGES)}")
    parser.add_argument("--work", type=Path, help="keep the world and cases here, for next time")
    parser.add_argument("--memory-limit", help="DuckDB's --memory-limit for its analyses")
    args = parser.parse_args()
    chosen = args.engines.split(",")
    if unknown := set(chosen) - set(ENGINES):
        parser.error(f"unknown engines {sorted(unknown)}")
    stages = args.stages.split(",")
    if unknown := set(stages) - set(STAGES):
        parser.error(f"unknown stages {sorted(unknown)}")
    from tests.spark_cluster import SparkCluster

    natlens = str(Path(sys.executable).parent / "natlens")
    # The executors' Python workers (ingest) run this Python, where natlens is installed.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    root = args.work or Path(tempfile.mkdtemp(prefix="natlens-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    cluster = SparkCluster(workers=2, cores=1, memory="4g") if "spark-cluster" in chosen else None
    rows: list[tuple[str, str, float, int, bool]] = []

    def stage(name: str, engine: str, command: list[str]) -> None:
        seconds, rss, ok = attempt(command)
        rows.append((name, engine, seconds, rss, ok))
        print(rows[-1], flush=True)

    try:
        world = root / f"w{args.records}"
        if not (world / "done").exists():
            shutil.rmtree(world, ignore_errors=True)
            run([natlens, "simulate", str(world), "--scenario", "fw-after-nat", "--records",
                 str(args.records), "--json"])  # fmt: skip
            (world / "done").touch()
        sources = [str(world / "flowlogs"), str(world / "firewall")]
        master = ["--spark-master", cluster.url] if cluster else []
        spark = {
            "duckdb": [],
            "spark-local": ["--engine", "spark"],
            "spark-cluster": ["--engine", "spark", *master],
        }
        if args.memory_limit:
            spark["duckdb"] = ["--memory-limit", args.memory_limit]
        for engine in ("duckdb", "spark-cluster"):
            case = root / f"case-{args.records}-{engine}"
            if engine in chosen and ("ingest" in stages or not (case / "manifest.json").exists()):
                shutil.rmtree(case, ignore_errors=True)
                ingest = spark[engine] if engine != "duckdb" else []
                stage("ingest", engine, [natlens, "ingest", *sources, "--case", str(case),
                                         *ingest])  # fmt: skip
        case = root / f"case-{args.records}-duckdb"
        if not (case / "manifest.json").exists():
            stage("ingest", "duckdb", [natlens, "ingest", *sources, "--case", str(case)])
        context = ["--context", str(world / "context")]
        for analysis in ("conversations", "attribute"):
            if analysis not in stages:
                continue
            for engine in chosen:
                shutil.rmtree(case / "derived", ignore_errors=True)  # each computes every stage
                out = root / f"{analysis}.parquet"
                command = [natlens, analysis, str(case), *context, "--format", "parquet"]
                stage(analysis, engine, [*command, "--output", str(out), *spark[engine]])
        for engine in chosen:
            if engine == "spark-cluster" or "in-place" not in stages:
                continue  # the case-free read is the same code on either Spark master
            out = root / "in-place.parquet"
            stage("conversations --in-place", engine, [natlens, "conversations",
                  str(world / "flowlogs"), "--in-place", *context, "--format", "parquet",
                  "--output", str(out), *spark[engine]])  # fmt: skip
    finally:
        if cluster is not None:
            cluster.stop()
        if args.work is None:
            shutil.rmtree(root, ignore_errors=True)
    table = "\n".join(
        f"| {name} | {engine} | {seconds:.1f}{'' if ok else ' (failed)'} | {rss / 2**20:,.0f} |"
        for name, engine, seconds, rss, ok in rows
    )
    text = (
        f"\n\n{args.records:,} simulated flow records (fw-after-nat, with its firewall logs); "
        "each command a fresh process; the cluster: a master and two workers of one core each "
        "on the same machine. Peak memory is the natlens process's (for Spark: the driver's "
        "Python, not its JVMs)."
        + (
            f" DuckDB's analyses ran with --memory-limit {args.memory_limit}."
            if args.memory_limit
            else ""
        )
        + "\n\n| stage | engine | seconds | peak MB |\n|---|---|---:|---:|\n"
        + table
    )
    print(text)
    if args.record_results:
        append_results("Scale: ingest, conversations, attribute per engine (issue 18)",
                       " ".join(sys.argv[:3]), text)  # fmt: skip


if __name__ == "__main__":
    main()
