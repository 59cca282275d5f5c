"""Shared fixtures: engines (DuckDB and one Spark session per run), the S3 server, the CLI."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from natlens.cli import main
from natlens.engine import DuckDBEngine, Engine, SparkEngine

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parents[1]
# Every record line of AWS's examples page (docs/aws.md §3), one file each, with a header as S3
# delivers it; their meanings, written from AWS's explanations, are in fixtures/aws.
AWS_EXAMPLES = ROOT / "examples" / "aws-docs"
AWS_MEANINGS = FIXTURES / "aws"

# Tests never reach the network beyond this machine, and boto3 must never find real credentials:
# these are the local S3 server's (tests/s3server.py).
os.environ["AWS_ACCESS_KEY_ID"] = "natlens-test"
os.environ["AWS_SECRET_ACCESS_KEY"] = "natlens-test-secret"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
# Spark's driver, and the cluster's processes, listen and advertise on the loopback only.
os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
# Spark's Python workers (ingest on Spark) run this Python, where natlens is installed.
os.environ["PYSPARK_PYTHON"] = sys.executable
for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(variable, None)


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)

    def jsonl(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


def run_cli(*args: str | os.PathLike[str]) -> Run:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session", autouse=True)
def _temporary_files_under_pytest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """What natlens writes to the temporary directory (cases of sources read without --case,
    scratch links), here and in the processes the tests start, goes under pytest's own, like
    everything the tests write."""
    import tempfile

    scratch = tmp_path_factory.mktemp("tmp")
    before, before_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = str(scratch)
    os.environ["TMPDIR"] = str(scratch)  # for the processes tests start (and kill)
    yield
    tempfile.tempdir = before
    if before_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = before_env


@pytest.fixture
def natlens():
    return run_cli


@pytest.fixture(scope="session")
def spark_cluster() -> Iterator[str]:
    """The URL of a Spark standalone cluster on 127.0.0.1 (tests/spark_cluster.py): one master and
    two workers, each its own process, for the whole run."""
    from tests.spark_cluster import SparkCluster

    cluster = SparkCluster()
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def spark_engine(request: pytest.FixtureRequest) -> Iterator[SparkEngine]:
    """Spark in local mode: the agreement tests' engine. NATLENS_TEST_SPARK_MASTER=cluster runs
    them on the standalone cluster instead (slower on two cores: each executor is one more Java
    process); test_spark_cluster.py runs every analysis there in any case."""
    master = os.environ.get("NATLENS_TEST_SPARK_MASTER") or "local[2]"
    if master == "cluster":
        master = request.getfixturevalue("spark_cluster")
    engine = SparkEngine(master)
    yield engine
    engine.close()


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Runs a test once on DuckDB and once on Spark: every analysis must agree on both."""
    if request.param == "duckdb":
        with DuckDBEngine() as duck:
            yield duck
    else:
        yield request.getfixturevalue("spark_engine")


@pytest.fixture(scope="session")
def v5_worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Six simulated minutes of an exposed instance and of a firewall after the NAT gateways,
    version 5 fields, read into cases with their firewall logs: what the report and the terminal
    tests read (they only read: a test that needs a fresh case copies one)."""
    from benchmarks import accuracy

    root = tmp_path_factory.mktemp("v5-worlds")
    return {
        scenario: accuracy.build_world(root, scenario, "v5", minutes=6, seed=3)
        for scenario in ("exposed-instance", "fw-after-nat")
    }


def fresh_copy(case: str | os.PathLike[str], where: Path) -> Path:
    """A copy of a case without its derived tables: an engine given it computes every stage
    itself, instead of reading what an earlier run kept."""
    import shutil

    target = where / "case"
    shutil.copytree(case, target, ignore=shutil.ignore_patterns("derived"))
    return target


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from tests.s3server import S3Server

    server = S3Server(tmp_path_factory.mktemp("weed"))
    yield server
    server.stop()
