"""Derived tables kept in the case, so that the analyses built on conversations (conversations,
inbound, explain) pair the records once.

A derived table lives in ``CASE/derived/NAME-KEY/``; the key is a hash of the SQL that made it
(which holds the context's addresses, the time range and natlens's own version of the query), of
the engine and of the case's parts. Ingesting more sources, another --context, another engine or
another natlens makes another key; older derived tables of the same name are removed. A case
that cannot hold it (a read-only copy) is still analysed, only without keeping the result.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from natlens import progress
from natlens.case import TMP_PREFIX, Case
from natlens.engine import SQL, Engine
from natlens.sqltree import to_sql

DERIVED = "derived"
COMPLETE = "_complete"


def derived_table(engine: Engine, case: Case, name: str, sql: SQL, make: bool = True) -> bool:
    """Register the rows of ``sql`` as table ``name`` from the case's derived copy, making it
    first when needed (with ``make=False``, only when an earlier run made it). False when the
    case cannot hold it (or does not, with ``make=False``): the caller runs ``sql`` itself.

    Several analyses may run at once on one case. A derived table is written under a temporary
    name and renamed into place whole (the first to finish wins; the others use its copy), and
    each reader holds a shared lock on its ``_complete`` file, so an older copy is removed only
    when nobody reads it.
    """
    # Each engine keeps its own copy: the answers are the same (the tests compare them), and
    # each engine is then tested on its own work.
    # The manifest's tables list every part file and its row count.
    text = to_sql(sql)  # written out once: the key, and the query run
    margin = [engine.flows_margin] if engine.flows_margin and engine.window != (None, None) else []
    state = json.dumps(
        [engine.name, engine.window, text, case.manifest["tables"], *margin], sort_keys=True
    )
    key = hashlib.sha256(state.encode()).hexdigest()[:16]
    root = case.path / DERIVED
    directory = root / f"{name}-{key}"
    for _attempt in range(3):
        if not (directory / COMPLETE).exists() and (
            not make or not _build(engine, root, directory, text, key)
        ):
            return False
        held = _hold(directory)
        if held is not None:
            engine.hold(held)
            break
    else:
        return False
    for old in root.glob(f"{name}-*"):
        if old != directory:
            _remove_unread(old)
    engine.register_parquet(name, directory)
    return True


# What each derived table is, for the person waiting while it is made.
STAGES = {
    "conversation_facts": "pairing records into conversations",
    "nat_nat_addresses": "finding the NAT gateways' addresses",
    "nat_owners": "finding who owns each address",
    "nat_instance_buckets": "indexing the instances' legs to the NAT gateways by time",
    "nat_public_legs": "finding the NAT gateways' public legs",
    "nat_nat_links": "linking every public leg to its instance",
}


def _build(engine: Engine, root: Path, directory: Path, sql: SQL, key: str) -> bool:
    name = directory.name.rsplit("-", 1)[0]
    progress.stage(STAGES.get(name, f"computing {name}") + " (kept in the case for next time)")
    temporary = root / f"{TMP_PREFIX}{directory.name}-{uuid.uuid4().hex[:8]}"
    try:
        temporary.mkdir(parents=True)
        engine.write_parquet(sql, temporary)
        (temporary / COMPLETE).write_text(key + "\n")
        try:
            os.rename(temporary, directory)
        except OSError:
            if not (directory / COMPLETE).exists():
                raise
            # Another run made the same table first: use its copy.
            shutil.rmtree(temporary, ignore_errors=True)
    except OSError:
        shutil.rmtree(temporary, ignore_errors=True)
        return False
    return True


def _hold(directory: Path) -> int | None:
    """A shared lock on a complete derived table, or None when it was removed meanwhile."""
    try:
        fd = os.open(directory / COMPLETE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    with contextlib.suppress(OSError):  # a file system without locks
        fcntl.flock(fd, fcntl.LOCK_SH)
    if not (directory / COMPLETE).exists():  # removed between the open and the lock
        os.close(fd)
        return None
    return fd


def _remove_unread(directory: Path) -> None:
    """Remove an older derived table unless an analysis is reading it."""
    try:
        fd = os.open(directory / COMPLETE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return  # half-made by a run still going, or already gone: not ours to remove
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return
    try:
        (directory / COMPLETE).unlink(missing_ok=True)
        shutil.rmtree(directory, ignore_errors=True)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
