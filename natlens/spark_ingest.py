"""Ingest on Spark (``natlens ingest --engine spark``): executors read, the driver commits.

The driver lists the sources and leaves out those read before and unchanged, as a local ingest
does. Each Spark task takes a share of the files and S3 objects and reads them with the code a
local ingest runs (``read_units``: the same readers, parsers and accounting), one source at a
time, writing its Parquet parts into the case's table folders under temporary names. It returns
its parts and each source's accounting. The driver takes the parts and merges the accounting in
the sources' order, so a report reads as a local ingest's, and commits the manifest once.

A run that stops (an error, an interruption, ``--strict``) leaves the case as it was: nothing is
committed, the parts this run took are removed, and a failed task's leftovers are removed with
them (or by the next ingest's recovery). Sources the executors cannot reach by name (CloudWatch
Logs time ranges) are read by the driver, by the same code.

The case directory must be on storage every node sees at the same path: any local directory on
one machine; a shared file system (EFS, FSx, ``/dbfs``, ``/Volumes``) on a cluster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from natlens import progress
from natlens.accounting import Accounting, Problem
from natlens.case import Case, new_part_path
from natlens.engine import SparkEngine
from natlens.errors import EnvironmentProblem, StrictError
from natlens.formats.containers import Piece, SourceProblem
from natlens.ingest import IngestOptions, Parts, UnitDone, UnitUnchanged, planned, read_units
from natlens.sources.local import file_unit
from natlens.sources.units import SourceOptions, Unit, expand


@dataclass(frozen=True)
class _Task:
    """One source, as a task is given it: by name (its reader is built again where it runs)."""

    index: int
    id: str
    fingerprint: str


@dataclass
class _Read:
    """What reading one source gave: its accounting and how it ended."""

    index: int
    fingerprint: str
    acct: Accounting
    records: int
    failed: bool
    incomplete: bool


@dataclass
class _Outcome:
    """A task's whole result: its sources', its parts (table, temporary path, rows), or the
    problem that stopped it under --strict (and the source it was in)."""

    reads: list[_Read]
    parts: list[tuple[str, str, int]]
    strict: tuple[int, str, str | None] | None = None


class SparkReader:
    """An ingest's reader (``IngestOptions.reader``) that reads on ``engine``'s executors."""

    def __init__(self, engine: SparkEngine) -> None:
        self.engine = engine

    def __call__(
        self,
        case: Case,
        units: Iterator[Unit],
        known: dict[str, dict[str, Any]],
        acct: Accounting,
        options: IngestOptions,
    ) -> tuple[list[UnitDone], list[tuple[str, Path, int]]]:
        """Read ``units`` on the executors into ``case``: what ``read_units`` gives, and the
        parts written (adopted by the case: committed by its next save)."""
        todo: list[Unit] = []
        for unit in planned(units, known):
            if isinstance(unit, UnitUnchanged):
                acct.sources_skipped_unchanged += 1
            else:
                todo.append(unit)
        remote = [
            _Task(i, u.id, u.fingerprint)
            for i, u in enumerate(todo)
            if u.coverage is None and u.fingerprint != "unreadable"
        ]
        on_driver = [
            i for i, u in enumerate(todo) if u.coverage is not None or u.fingerprint == "unreadable"
        ]
        portable = _portable(options)
        outcomes: list[_Outcome] = []
        try:
            if remote:
                outcomes.extend(_run_on_executors(self.engine, str(case.path), portable, remote))
            if on_driver:
                outcomes.append(_read_each(case.path, options, [(i, todo[i]) for i in on_driver]))
            written: list[tuple[str, Path, int]] = []
            for outcome in outcomes:
                for table, path, rows in outcome.parts:
                    case.adopt_part(Path(path), table)
                    written.append((table, Path(path), rows))
            stops = sorted(o.strict for o in outcomes if o.strict is not None)
            if stops:
                _index, message, hint = stops[0]
                raise StrictError(message, hint=hint)
        finally:
            case.remove_strays()
        reads = sorted((r for o in outcomes for r in o.reads), key=lambda r: r.index)
        done = []
        for read in reads:
            unit = dataclasses.replace(todo[read.index], fingerprint=read.fingerprint)
            acct.merge(read.acct)
            done.append(UnitDone(unit, read.records, read.failed, read.incomplete))
            progress.source_done(unit.id, unit.fingerprint, read.records)
        return done, written


def _portable(options: IngestOptions) -> IngestOptions:
    """The options as a task is sent them: no engine, no clients (each task builds its own,
    from the standard credential chain where it runs)."""
    sources = options.sources
    return dataclasses.replace(
        options,
        reader=None,
        sources=SourceOptions(
            time_range=sources.time_range,
            endpoint_url=sources.endpoint_url,
            profile=sources.profile,
            region=sources.region,
            log_stream=sources.log_stream,
        ),
    )


def _run_on_executors(
    engine: SparkEngine, root: str, options: IngestOptions, tasks: list[_Task]
) -> list[_Outcome]:
    context = engine.spark.sparkContext
    slices = min(len(tasks), max(1, context.defaultParallelism) * 2)
    # Round robin: neighbouring sources (often of similar size) go to different tasks.
    groups = [tasks[i::slices] for i in range(slices)]
    try:
        return list(
            context.parallelize(groups, slices)
            .map(lambda group: _task(root, options, group))
            .collect()
        )
    except Exception as exc:
        if isinstance(exc, StrictError):
            raise
        detail = _python_error(str(exc))
        raise EnvironmentProblem(
            f"the Spark executors could not read the sources ({detail})",
            hint="every node needs natlens installed (pip install natlens) in the Python that "
            "spark.pyspark.python names, and the case directory at the same path",
        ) from None


def _python_error(text: str) -> str:
    """The Python exception a failed task raised, out of Spark's report of it."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.split(":", 1)[0].endswith(("Error", "Exception")) and not line.startswith(
            ("org.apache", "py4j", "at ")
        ):
            return line[:300]
    return (lines[0] if lines else type(text).__name__)[:300]


def _task(root: str, options: IngestOptions, group: list[_Task]) -> _Outcome:
    """What runs on an executor: each source of ``group`` found again by its name, then read."""
    return _read_each(
        Path(root), options, [(t.index, _found_again(t, options.sources)) for t in group]
    )


def _read_each(root: Path, options: IngestOptions, units: Iterable[tuple[int, Unit]]) -> _Outcome:
    parts = Parts(lambda table: new_part_path(root, table))
    outcome = _Outcome([], [])
    try:
        for index, unit in units:
            acct = Accounting(strict=options.strict)
            try:
                done = read_units(iter([unit]), {}, acct, options, parts)
            except StrictError as exc:
                outcome.strict = (index, exc.message, exc.hint)
                break
            for entry in done:
                outcome.reads.append(
                    _Read(index, entry.unit.fingerprint, acct, entry.records, entry.failed,
                          entry.incomplete)
                )  # fmt: skip
        outcome.parts = [(table, str(path), rows) for table, path, rows in parts.close()]
    except BaseException:
        parts.abort()
        raise
    return outcome


def _found_again(task: _Task, options: SourceOptions) -> Unit:
    """The unit named ``task.id``, found again where the task runs: a file by its exact path
    (its name may hold glob characters), an S3 object by listing its key; if it is gone, a unit
    that says so (it is read again by the next ingest, as any unreadable source)."""
    if not task.id.startswith("s3://"):
        return file_unit(Path(task.id))  # a file that is gone reads as unreadable
    try:
        for unit in expand([task.id], options, {}):
            if unit.id == task.id:
                return unit
        message = "listed by the driver, then not found by the Spark executor that read it"
    except Exception as exc:
        message = f"the Spark executor could not list it: {type(exc).__name__}: {exc}"[:300]

    def gone() -> Iterator[Piece]:
        yield SourceProblem(Problem("unreadable", task.id, None, message, count=0))

    return Unit(task.id, task.fingerprint, gone)
