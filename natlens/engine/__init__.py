"""Run analysis SQL on DuckDB (the embedded default) or Apache Spark.

Analyses are written once in a restricted DuckDB dialect and translated by sqlglot. sqlglot
passes some DuckDB-only syntax through untouched, so ``check_portable`` rejects it before it can
reach another engine: GROUP BY must name expressions (no aliases, no ALL), no QUALIFY, no list or
struct slicing, ORDER BY only at the top level. Sessions run in UTC.
"""

from natlens.engine.base import (
    DIALECTS,
    ENGINES,
    SQL,
    Engine,
    check_portable,
    check_size,
    engine_error,
    real_path,
    sql_string,
    translate,
)
from natlens.engine.duck import DuckDBEngine, load_httpfs
from natlens.engine.open import open_engine
from natlens.engine.spark import SparkEngine, spark_session

__all__ = [
    "DIALECTS",
    "ENGINES",
    "SQL",
    "DuckDBEngine",
    "Engine",
    "SparkEngine",
    "check_portable",
    "check_size",
    "engine_error",
    "load_httpfs",
    "open_engine",
    "real_path",
    "spark_session",
    "sql_string",
    "translate",
]
