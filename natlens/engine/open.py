"""An engine by name, as the command line asks for one."""

from __future__ import annotations

from collections.abc import Sequence

from natlens.engine.base import ENGINES, Engine
from natlens.engine.duck import DuckDBEngine
from natlens.engine.spark import SparkEngine
from natlens.errors import UsageError


def open_engine(
    name: str = "duckdb",
    spark_master: str | None = None,
    memory_limit: str | None = None,
    spark_conf: Sequence[tuple[str, str]] = (),
) -> Engine:
    if name == "duckdb":
        return DuckDBEngine(memory_limit=memory_limit)
    if name == "spark":
        return SparkEngine(spark_master or "local[2]", spark_conf)
    raise UsageError(f"unknown engine {name!r}", hint=f"use one of {ENGINES}")
