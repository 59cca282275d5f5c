"""Analyses: SQL files in the portable DuckDB subset, each with a thin Python function."""

from __future__ import annotations

from importlib import resources


def load_sql(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.sql").read_text()
