"""Derived tables kept in the case, so that the analyses built on conversations (conversations,
inbound, explain) pair the records once.

A derived table lives in ``CASE/derived/NAME-KEY/``; the key is a hash of the SQL that made it
(which holds the context's addresses, the time range and natlens's own version of the query), of
the engine and of the case's parts. Ingesting more sources, another --context, another engine or
another natlens makes another key; older derived tables of the same name are removed. A case
that cannot hold it (a read-only copy) is still analysed, only without keeping the result.
"""

from __future__ import annotations

import hashlib
import json
import shutil

from natlens.case import Case
from natlens.engine import Engine

DERIVED = "derived"
COMPLETE = "_complete"


def derived_table(engine: Engine, case: Case, name: str, sql: str) -> bool:
    """Register the rows of ``sql`` as table ``name`` from the case's derived copy, making it
    first when needed. False when the case cannot hold it: the caller runs ``sql`` itself."""
    # Each engine keeps its own copy: the answers are the same (the tests compare them), and
    # each engine is then tested on its own work.
    # The manifest's tables list every part file and its row count.
    state = json.dumps([engine.name, sql, case.manifest["tables"]], sort_keys=True)
    key = hashlib.sha256(state.encode()).hexdigest()[:16]
    root = case.path / DERIVED
    directory = root / f"{name}-{key}"
    if not (directory / COMPLETE).exists():
        try:
            directory.mkdir(parents=True, exist_ok=True)
            engine.write_parquet(sql, directory)
            (directory / COMPLETE).write_text(key + "\n")
        except OSError:
            shutil.rmtree(directory, ignore_errors=True)
            return False
        for old in root.glob(f"{name}-*"):
            if old != directory:
                shutil.rmtree(old, ignore_errors=True)
    engine.register_parquet(name, directory)
    return True
