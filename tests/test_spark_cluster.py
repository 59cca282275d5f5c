"""natlens on a Spark standalone cluster (tests/spark_cluster.py: a master and two workers, each
its own process on 127.0.0.1), run through the CLI as a user runs it, with
``--engine spark --spark-master spark://127.0.0.1:PORT``: every analysis gives what DuckDB gives.

The case sits in a directory whose name Spark would read as a glob pattern ('[', '{', '*'): the
executors must read the case's own files, not links or copies only the driver can see.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.spark

ODD_NAME = "case [1]{a,b}*?"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from benchmarks import accuracy

    root = tmp_path_factory.mktemp("cluster")
    built = accuracy.build_world(root, "fw-after-nat", "v5", minutes=3, seed=11)
    shutil.move(built / "case", built / ODD_NAME)
    return built


def fresh(world: Path, where: Path) -> Path:
    """A copy of the case without derived tables (each engine computes every stage itself)."""
    target = where / ODD_NAME
    shutil.copytree(world / ODD_NAME, target, ignore=shutil.ignore_patterns("derived"))
    return target


def rows(*args: object) -> list[dict[str, object]]:
    run = run_cli(*args)
    assert run.code == 0, run.err
    return [json.loads(line) for line in run.out.splitlines() if line.strip()]


@pytest.mark.parametrize("analysis", ["conversations", "inbound", "nat", "attribute"])
def test_analyses_agree_with_duckdb(
    analysis: str, world: Path, spark_cluster: str, tmp_path: Path
) -> None:
    common = (analysis, "--context", world / "context", "--format", "jsonl")
    duck = rows(*common[:1], fresh(world, tmp_path / "duckdb"), *common[1:])
    spark = rows(
        *common[:1], fresh(world, tmp_path / "spark"), *common[1:],
        "--engine", "spark", "--spark-master", spark_cluster,
    )  # fmt: skip
    assert len(spark) == len(duck) > 5
    assert spark == duck


def test_explain_agrees_with_duckdb(world: Path, spark_cluster: str, tmp_path: Path) -> None:
    verdicts = rows(
        "inbound", world / ODD_NAME, "--context", world / "context", "--format", "jsonl"
    )
    address = str(verdicts[0]["address"])
    common = ("--context", world / "context", "--format", "json")
    duck = run_cli("explain", fresh(world, tmp_path / "duckdb"), address, *common)
    spark = run_cli(
        "explain", fresh(world, tmp_path / "spark"), address, *common,
        "--engine", "spark", "--spark-master", spark_cluster,
    )  # fmt: skip
    assert duck.code == spark.code == 0, spark.err
    assert json.loads(spark.out) == json.loads(duck.out)
    assert json.loads(duck.out)["conversations"]


def accounting(run_json: dict[str, object]) -> dict[str, object]:
    """An ingest's report without what differs between any two runs (times, part names)."""
    return {k: v for k, v in run_json.items() if k not in ("case", "parts", "seconds")}


def spark_jobs() -> int:
    """Jobs the process's Spark context has run so far (0 before it has one)."""
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    return 0 if session is None else len(session.sparkContext.statusTracker().getJobIdsForGroup())


def records(case: Path) -> list[str]:
    run = run_cli("records", case, "--format", "jsonl")
    assert run.code == 0, run.err
    return sorted(run.out.splitlines())


def test_ingest_on_the_cluster_reads_what_a_local_ingest_reads(
    world: Path, spark_cluster: str, tmp_path: Path
) -> None:
    """Executors parse the files and write the parts; the driver commits once. A source given
    twice is read once; a second run reads nothing again; damaged lines are accounted alike."""
    sources = [world / "flowlogs", world / "firewall"]
    damaged = tmp_path / "damaged.log"
    first = next((world / "flowlogs").rglob("*.log*"))
    damaged.write_text("version srcaddr\nnot-a-number 10.0.0.1\n\x00\x01binary\n")
    # A file whose name is a glob pattern, found by listing its directory: each executor must
    # open that very file, not read its name as a pattern.
    odd = tmp_path / "odd"
    odd.mkdir()
    shutil.copy(first, odd / "flows [1]*?.log.gz")
    sources += [damaged, first, odd]
    local = run_cli("ingest", *sources, "--case", tmp_path / "local", "--json")
    jobs = spark_jobs()
    spark = run_cli(
        "ingest", *sources, "--case", tmp_path / ODD_NAME, "--json",
        "--engine", "spark", "--spark-master", spark_cluster,
    )  # fmt: skip
    assert local.code == spark.code, spark.err
    assert spark_jobs() == jobs + 1  # the sources were read by one Spark job
    want, got = accounting(json.loads(local.out)), accounting(json.loads(spark.out))
    assert got == want
    assert want["records_written"] > 500 and want["skipped"]
    assert records(tmp_path / ODD_NAME) == records(tmp_path / "local")
    check = run_cli("case", "check", tmp_path / ODD_NAME, "--json")
    found = json.loads(check.out)
    assert check.code == 0 and not any(found[k] for k in ("temporary", "unreferenced", "missing"))
    again = run_cli(
        "ingest", *sources, "--case", tmp_path / ODD_NAME, "--json",
        "--engine", "spark", "--spark-master", spark_cluster,
    )  # fmt: skip
    assert json.loads(again.out)["records_written"] == 0


def test_strict_ingest_on_the_cluster_commits_nothing(
    world: Path, spark_cluster: str, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged.log"
    damaged.write_text("version srcaddr\nnot-a-number 10.0.0.1\n")
    case = tmp_path / "case"
    run = run_cli(
        "ingest", world / "flowlogs", damaged, "--case", case, "--strict",
        "--engine", "spark", "--spark-master", spark_cluster,
    )  # fmt: skip
    assert run.code == 2
    assert "damaged.log:2" in run.err and "--strict" in run.err
    assert not case.exists()  # a case this run created is removed again


@pytest.mark.s3
def test_in_place_on_the_cluster(world: Path, spark_cluster: str, tmp_path: Path) -> None:
    """--in-place on the cluster: the executors read the flow log files where they lie (the
    firewall's logs are read first into a temporary case), and attribute gives the rows it
    gives on DuckDB's ingested case."""
    common = ("--context", world / "context", "--format", "jsonl")
    duck = rows("attribute", fresh(world, tmp_path / "duckdb"), *common)
    run = run_cli(
        "attribute", world / "flowlogs", world / "firewall", *common, "--in-place",
        "--engine", "spark", "--spark-master", spark_cluster,
    )  # fmt: skip
    assert run.code == 0, run.err
    assert "in place" in run.err
    spark = [json.loads(line) for line in run.out.splitlines() if line.strip()]
    assert len(spark) == len(duck) > 5
    assert spark == duck


def test_ingest_on_the_cluster_from_s3(
    world: Path, spark_cluster: str, s3_server, tmp_path: Path
) -> None:
    """Each executor lists and fetches its objects itself (its own client, the same endpoint)."""
    import uuid

    client = s3_server.client()
    bucket = f"natlens-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    for path in sorted((world / "flowlogs").rglob("*")):
        if path.is_file():
            key = "AWSLogs/" + str(path.relative_to(world / "flowlogs"))
            client.upload_file(str(path), bucket, key)
    source = f"s3://{bucket}/AWSLogs/"
    common = ("--endpoint-url", s3_server.endpoint, "--json")
    local = run_cli("ingest", source, "--case", tmp_path / "local", *common)
    jobs = spark_jobs()
    spark = run_cli(
        "ingest", source, "--case", tmp_path / "spark", *common,
        "--engine", "spark", "--spark-master", spark_cluster,
    )  # fmt: skip
    assert local.code == spark.code == 0, spark.err
    assert spark_jobs() == jobs + 1
    assert accounting(json.loads(spark.out)) == accounting(json.loads(local.out))
    assert json.loads(local.out)["records_written"] > 500
    assert records(tmp_path / "spark") == records(tmp_path / "local")


def test_executors_without_natlens_are_named(world: Path, tmp_path: Path) -> None:
    """Spark's Python workers run a Python where natlens is not installed: the run stops with
    what to install where, and the case is not created."""
    import os
    import subprocess
    import sys

    system_python = "/usr/bin/python3"
    probe = subprocess.run(
        [system_python, "-c", "import natlens"], cwd=tmp_path, capture_output=True, check=False
    )
    if probe.returncode == 0:
        pytest.skip("the system Python has natlens")
    case = tmp_path / "case"
    run = subprocess.run(
        [sys.executable, "-m", "natlens", "ingest", world / "flowlogs", "--case", case,
         "--engine", "spark"],
        capture_output=True, text=True, env={**os.environ, "PYSPARK_PYTHON": system_python},
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert run.returncode == 3, run.stderr
    assert "No module named 'natlens'" in run.stderr
    assert "spark.pyspark.python" in run.stderr
    assert not case.exists()
