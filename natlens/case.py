"""The case: a directory of Parquet tables and a JSON manifest that any engine can read.

    CASE/
      manifest.json          sources read, formats seen, time range, accounting
      flows/part-*.parquet   canonical flow records (schema.FLOWS_SCHEMA)
      firewall_events/part-*.parquet   Network Firewall log events (schema.FIREWALL_EVENTS_SCHEMA)

Each ingest writes new part files; a source read before with the same fingerprint is not read
again, and a source whose content changed replaces its earlier rows.

Consistency (docs/case.md says it for users): parts are written under hidden temporary names
and renamed in only at the commit, which holds the read lock exclusively, moves replaced parts
out of the glob (``.old``) and replaces the manifest atomically; ingests run one at a time
(``.ingest.lock``), analyses hold the read lock shared. ``recover`` (run by every ingest and by
``natlens case check``) puts the case back to its last committed state after an interruption.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from natlens import __version__
from natlens.errors import CaseError
from natlens.schema import FIREWALL_EVENTS_SCHEMA, FLOWS_SCHEMA

if TYPE_CHECKING:
    from natlens.formats.inplace import InPlace

MANIFEST = "manifest.json"
CASE_FORMAT = 1
TABLES = {"flows": FLOWS_SCHEMA, "firewall_events": FIREWALL_EVENTS_SCHEMA}
ROW_GROUP_ROWS = 1 << 20
READ_LOCK = ".read.lock"
INGEST_LOCK = ".ingest.lock"
TMP_SUFFIX = ".tmp"
TMP_PREFIX = "."
OLD_PREFIX = "."
OLD_SUFFIX = ".old"
# What natlens itself leaves in a case directory before its first commit.
_OWN_NAMES = {READ_LOCK, INGEST_LOCK, MANIFEST + ".tmp", *TABLES}


def is_case(path: str | os.PathLike[str]) -> bool:
    manifest = Path(path) / MANIFEST
    try:
        if not manifest.is_file():
            return False
        return "natlens_case" in json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False


# Shared read locks this process holds, per case directory: a commit cannot wait for readers
# in its own process (they would never let go while it waits).
_OWN_READERS: dict[str, int] = {}


def _reader_key(path: Path) -> str:
    return os.path.realpath(path)


def _lock_file(path: Path, shared: bool, wait_message: str | None) -> int | None:
    """An flock on ``path``: the file descriptor, or None when the case cannot hold a lock
    file (a read-only copy: nothing can change it under us)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        if wait_message:
            sys.stderr.write(f"natlens: {wait_message}\n")
        fcntl.flock(fd, mode)
    except OSError:  # a file system without locks
        pass
    return fd


@dataclass
class Recovery:
    """What ``recover`` found, and did when asked to repair."""

    temporary: list[str] = field(default_factory=list)  # uncommitted parts
    unreferenced: list[str] = field(default_factory=list)  # parts no manifest names
    restored: list[str] = field(default_factory=list)  # old parts of a commit that did not happen
    superseded: list[str] = field(default_factory=list)  # old parts of a commit that did
    missing: list[str] = field(default_factory=list)  # named by the manifest, not on disk
    forgotten_sources: list[str] = field(default_factory=list)  # to be read again
    derived: list[str] = field(default_factory=list)  # derived tables left half-written

    def problems(self) -> int:
        return sum(
            len(x)
            for x in (
                self.temporary, self.unreferenced, self.restored, self.superseded,
                self.missing, self.derived,
            )
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {name: list(value) for name, value in self.__dict__.items()}

    def lines(self, done: bool = True) -> list[str]:
        """One line per kind of finding: what was done, or (``done=False``) what to do."""
        removed, restored, forgotten = (
            ("removed", "restored", "are forgotten") if done
            else ("to remove", "to restore", "to forget")
        )  # fmt: skip
        words = {
            "temporary": f"temporary part(s) of an interrupted ingest {removed}",
            "unreferenced": f"part(s) no manifest names {removed} (an ingest stopped before its "
            "commit)",
            "restored": f"part(s) of an interrupted commit {restored}",
            "superseded": f"replaced part(s) {removed}",
            "missing": f"part(s) named by the manifest were missing and {forgotten}",
            "forgotten_sources": "source(s) whose rows were lost: the next ingest reads them "
            "again",
            "derived": f"half-written derived table(s) {removed}",
        }  # fmt: skip
        return [f"{len(v)} {words[k]}" for k, v in self.to_json().items() if v]


class Case:
    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self._read_fd: int | None = None
        self._ingest_fd: int | None = None
        self._saved = (path / MANIFEST).is_file()
        # Parts written by this run, by their committed name: the temporary file that holds them.
        self._pending: dict[Path, Path] = {}
        # Parts a cut-short commit moved aside (read from there until an ingest restores them).
        self._aside: dict[Path, Path] = {}
        self._superseded: list[Path] = []
        self._created = False  # this run made the directory: a failed run removes it again
        self.recovery = Recovery()
        # Flow log files read where they lie (--in-place, formats/inplace.py): engines show them
        # in the flows table beside the parts. Only a temporary case has them.
        self.in_place: InPlace | None = None

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Case:
        """A committed case for reading. Held open, it keeps other runs from removing its parts
        (the read lock is shared; a commit takes it exclusively for a moment)."""
        root = Path(path)
        fd = None
        if root.is_dir():
            fd = _lock_file(
                root / READ_LOCK,
                shared=True,
                wait_message=f"{root}: waiting for an ingest to commit",
            )
        try:
            case = cls(root, read_manifest(root))
        except BaseException:
            if fd is not None:
                os.close(fd)
            raise
        case._read_fd = fd
        case._count_reader(+1)
        for name in TABLES:
            for part in case.parts(name):
                old = part.with_name(OLD_PREFIX + part.name + OLD_SUFFIX)
                if not part.exists() and old.is_file():
                    # A commit was cut short after it moved this part aside: the manifest is
                    # the old one, so read the old part where it is (the next ingest puts it
                    # back).
                    case._aside[part] = old
        missing = [p for name in TABLES for p in case.parts(name) if not p.is_file()]
        if missing:
            case.close()
            raise CaseError(
                f"{root}: {len(missing)} part file(s) the manifest names are missing "
                f"(first: {missing[0]})",
                hint=f"natlens case check {root} --repair forgets them and the sources they "
                "held, so that the next ingest reads those sources again",
            )
        return case

    @classmethod
    def for_ingest(cls, path: str | os.PathLike[str]) -> Case:
        """A case to add to: created when new, taken for this run alone (other ingests wait),
        and put back to its last committed state if an earlier run was interrupted."""
        root = Path(path)
        created = not root.exists()
        if root.exists() and not root.is_dir():
            raise CaseError(f"{root}: is a file, not a case directory", hint="give a directory")
        if root.is_dir() and not is_case(root):
            foreign = [p.name for p in root.iterdir() if not _natlens_leftover(p)]
            if foreign:
                raise CaseError(
                    f"{root}: exists and is not a natlens case",
                    hint="give an empty or new directory to --case",
                )
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CaseError(
                f"{root}: cannot create the case directory ({exc.strerror or exc})",
                hint="give a --case path in a directory you can write to",
            ) from None
        ingest_fd = _lock_file(
            root / INGEST_LOCK, shared=False,
            wait_message=f"{root}: another ingest is writing to this case; waiting for it",
        )  # fmt: skip
        if ingest_fd is None:
            raise CaseError(
                f"{root}: cannot be written to", hint="give a --case directory you can write to"
            )
        try:
            manifest = read_manifest(root) if is_case(root) else _new_manifest()
            case = cls(root, manifest)
            case._ingest_fd = ingest_fd
            case._created = created
            case._read_fd = _lock_file(root / READ_LOCK, shared=True, wait_message=None)
            case._count_reader(+1)
            case.recovery = case.recover(repair=True) if case._saved else Recovery()
        except BaseException:
            os.close(ingest_fd)
            raise
        return case

    @classmethod
    def check(cls, path: str | os.PathLike[str], repair: bool) -> Recovery:
        """What an interrupted run left in the case at ``path``; with ``repair``, put right
        (taking the case as an ingest does, so no ingest runs meanwhile)."""
        if repair:
            with cls.for_ingest(path) as case:
                return case.recovery
        root = Path(path)
        return cls(root, read_manifest(root)).recover(repair=False)

    def _count_reader(self, step: int) -> None:
        if getattr(self, "_read_fd", None) is not None:
            key = _reader_key(self.path)
            _OWN_READERS[key] = _OWN_READERS.get(key, 0) + step

    def close(self) -> None:
        self._count_reader(-1)
        for name in ("_read_fd", "_ingest_fd"):
            fd = getattr(self, name, None)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, None)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit, module globals may be gone
            self.close()

    def __enter__(self) -> Case:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- tables --------------------------------------------------------------------------------

    def _table(self, table: str) -> dict[str, Any]:
        # Cases written before a table existed have no entry for it.
        entry: dict[str, Any] = self.manifest["tables"].setdefault(
            table, {"parts": [], "records": 0}
        )
        return entry

    def parts(self, table: str = "flows") -> list[Path]:
        """The files that hold the table's rows now (a part written by this run and not yet
        committed is read from its temporary file)."""
        paths = [self.path / part for part in self._table(table)["parts"]]
        return [self._pending.get(p) or self._aside.get(p, p) for p in paths]

    def has(self, table: str = "flows") -> bool:
        """Whether the table has rows to read: parts, or (flows) files read in place."""
        in_place = table == "flows" and self.in_place is not None and self.in_place.files > 0
        return bool(self.parts(table)) or in_place

    def new_part_path(self, table: str = "flows") -> Path:
        """Where to write a new part: a hidden temporary file, renamed into place at commit."""
        temporary = new_part_path(self.path, table)
        self._pending[_final_name(temporary)] = temporary
        return temporary

    def adopt_part(self, temporary: Path, table: str) -> None:
        """Take a part another process wrote (a Spark executor) with ``new_part_path``: it is
        renamed into place at commit, or removed with the rest of an unfinished run."""
        folder = self.path / table
        name = temporary.name
        if (
            table not in TABLES
            or temporary.parent != folder
            or not (name.startswith(TMP_PREFIX + "part-") and name.endswith(TMP_SUFFIX))
        ):
            raise CaseError(f"{temporary}: not a part of {table} in this case")
        if not temporary.is_file():
            raise CaseError(
                f"{temporary}: written by a Spark executor, and not found here",
                hint="the case directory must be on storage every node sees at the same path "
                "(a shared file system such as EFS, /dbfs or /Volumes)",
            )
        self._pending[_final_name(temporary)] = temporary

    def add_part(self, path: Path, records: int, table: str = "flows") -> None:
        final = self._final(path)
        entry = self._table(table)
        entry["parts"].append(str(final.relative_to(self.path)))
        entry["records"] += records

    def committed_name(self, path: Path) -> str:
        return str(self._final(path).relative_to(self.path))

    def _final(self, path: Path) -> Path:
        for final, temporary in self._pending.items():
            if temporary == path:
                return final
        return path

    def remove_strays(self) -> None:
        """Remove the temporary parts this run did not take (a failed Spark task's): only an
        ingest, which holds the case alone, may call this."""
        pending = set(self._pending.values())
        for table in TABLES:
            folder = self.path / table
            if folder.is_dir():
                for path in folder.iterdir():
                    if _temporary(path.name) and path not in pending:
                        path.unlink(missing_ok=True)

    def discard(self) -> None:
        """Forget everything this run wrote; a case this run created is removed again."""
        for temporary in self._pending.values():
            temporary.unlink(missing_ok=True)
        self._pending.clear()
        if getattr(self, "_created", False) and not self._saved:
            self.close()
            shutil.rmtree(self.path, ignore_errors=True)

    def remove_sources(self, source_ids: set[str], table: str = "flows") -> int:
        """Rewrite the parts that hold rows of these sources without them; returns rows removed.

        Each part is streamed through a row group at a time, so memory does not grow with its
        size. The old parts stay on disk until the commit has made the new manifest durable.
        """
        removed = 0
        entry = self._table(table)
        kept_parts = []
        gone = pa.array(sorted(source_ids), pa.string())
        for rel in entry["parts"]:
            part = self._pending.get(self.path / rel, self.path / rel)
            counts = _rows_by_source(part)
            count = sum(n for source, n in counts.items() if source in source_ids)
            if count == 0:
                kept_parts.append(rel)
                continue
            removed += count
            if count < sum(counts.values()):
                new = self.new_part_path(table)
                source = pq.ParquetFile(part)
                with pq.ParquetWriter(new, source.schema_arrow, compression="zstd") as writer:
                    for batch in source.iter_batches():
                        keep = pc.invert(pc.is_in(batch.column("source").cast(pa.string()), gone))
                        writer.write_batch(batch.filter(keep))
                kept_parts.append(self.committed_name(new))
            if part in self._pending.values():
                part.unlink()
                self._pending = {f: t for f, t in self._pending.items() if t != part}
            else:
                self._superseded.append(part)
        entry["parts"] = kept_parts
        entry["records"] -= removed
        return removed

    # -- committing ------------------------------------------------------------------------------

    def save(self) -> None:
        """Commit: this run's parts into place and the manifest replaced, all or nothing."""
        self.manifest["updated"] = _now()
        if self._read_fd is not None:
            self._lock_for_commit(self._read_fd)
        try:
            old = []
            for part in self._superseded:
                hidden = part.with_name(OLD_PREFIX + part.name + OLD_SUFFIX)
                os.replace(part, hidden)
                old.append(hidden)
            folders = {self.path}
            for final, temporary in self._pending.items():
                _fsync_file(temporary)
                os.replace(temporary, final)
                folders.add(final.parent)
            self._pending.clear()
            self._superseded = []
            tmp = self.path / (MANIFEST + ".tmp")
            with open(tmp, "w") as handle:
                handle.write(json.dumps(self.manifest, indent=2) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            for folder in folders:
                _fsync_dir(folder)
            os.replace(tmp, self.path / MANIFEST)
            _fsync_dir(self.path)
            self._saved = True
            for hidden in old:
                hidden.unlink(missing_ok=True)
        finally:
            if self._read_fd is not None:
                with contextlib.suppress(OSError):
                    fcntl.flock(self._read_fd, fcntl.LOCK_SH)

    def _lock_for_commit(self, fd: int) -> None:
        """The read lock, exclusively: no analysis in another process reads the parts while
        they are swapped. Readers in this very process cannot let go while it waits: after a
        short wait for the others, the commit goes ahead with a warning."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError:
            return
        if _OWN_READERS.get(_reader_key(self.path), 0) > 1:
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                time.sleep(0.05)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except OSError:
                    continue
            sys.stderr.write(
                f"natlens: {self.path}: this process still has the case open for reading; "
                "committing without waiting (close it first: Case.close or a with block)\n"
            )
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_SH)
            return
        sys.stderr.write(
            f"natlens: {self.path}: waiting for analyses reading this case to finish\n"
        )
        fcntl.flock(fd, fcntl.LOCK_EX)

    # -- recovery --------------------------------------------------------------------------------

    def recover(self, repair: bool) -> Recovery:
        """Compare the directory with the manifest; with ``repair``, make them agree."""
        found = Recovery()
        named = {self.path / part for table in TABLES for part in self._table(table)["parts"]}
        for table in TABLES:
            folder = self.path / table
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                name = path.name
                if name.startswith(OLD_PREFIX) and name.endswith(OLD_SUFFIX):
                    original = path.with_name(name[len(OLD_PREFIX) : -len(OLD_SUFFIX)])
                    if original in named and not original.exists():
                        found.restored.append(str(original.relative_to(self.path)))
                        if repair:
                            os.replace(path, original)
                    else:
                        found.superseded.append(str(path.relative_to(self.path)))
                        if repair:
                            path.unlink(missing_ok=True)
                elif _temporary(name):
                    if path in self._pending.values():
                        continue
                    found.temporary.append(str(path.relative_to(self.path)))
                    if repair:
                        path.unlink(missing_ok=True)
                elif name.endswith(".parquet") and path not in named:
                    found.unreferenced.append(str(path.relative_to(self.path)))
                    if repair:
                        path.unlink(missing_ok=True)
        derived = self.path / "derived"
        if derived.is_dir():
            for path in derived.iterdir():
                if path.name.startswith(TMP_PREFIX):
                    found.derived.append(str(path.relative_to(self.path)))
                    if repair:
                        shutil.rmtree(path, ignore_errors=True)
        for table in TABLES:
            entry = self._table(table)
            gone = [p for p in entry["parts"] if not (self.path / p).is_file()]
            found.missing.extend(gone)
        if found.missing:
            found.forgotten_sources = self._forget_missing(repair)
        if repair and found.missing:  # restoring a part leaves the manifest as it was
            self.save()
        return found

    def _forget_missing(self, repair: bool) -> list[str]:
        """Drop parts that are gone; the sources with rows that no remaining part holds are
        forgotten, so that the next ingest reads them again."""
        counts: dict[str, int] = {}
        for table in TABLES:
            entry = self._table(table)
            kept = [p for p in entry["parts"] if (self.path / p).is_file()]
            records = 0
            for rel in kept:
                for source, n in _rows_by_source(self.path / rel).items():
                    counts[source] = counts.get(source, 0) + n
                    records += n
            if repair:
                entry["parts"], entry["records"] = kept, records
        lost = sorted(
            source
            for source, seen in self.manifest["sources"].items()
            if seen.get("records", 0) > counts.get(source, 0)
        )
        if repair:
            for source in lost:
                del self.manifest["sources"][source]
        # CloudWatch Logs rows are kept by time range, not by source: a range whose rows were
        # in a lost part cannot be told from one that is whole. Say so; do not guess.
        lost += [
            f"{key} (may be incomplete: ingest it into a new case)"
            for key in self.manifest["cloudwatch_coverage"]
        ]
        return lost


def new_part_path(root: Path, table: str) -> Path:
    """A new part's temporary name in the case at ``root``: hidden until the commit renames it."""
    folder = root / table
    folder.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    final = folder / f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
    return folder / f"{TMP_PREFIX}{final.name}{TMP_SUFFIX}"


def _temporary(name: str) -> bool:
    """A part's name while its run has not committed it (new_part_path)."""
    return name.startswith(TMP_PREFIX) and name.endswith(TMP_SUFFIX)


def _final_name(temporary: Path) -> Path:
    return temporary.with_name(temporary.name[len(TMP_PREFIX) : -len(TMP_SUFFIX)])


def _rows_by_source(part: Path) -> dict[str, int]:
    """Rows per source in one part (its ``source`` column only is read)."""
    column = pq.read_table(part, columns=["source"]).column("source").cast(pa.string())
    return {row["values"]: row["counts"] for row in pc.value_counts(column).to_pylist()}


def _natlens_leftover(path: Path) -> bool:
    """Files natlens itself leaves in a case directory that was never committed."""
    if path.name in _OWN_NAMES:
        if path.is_dir():
            return all(
                p.name.startswith(TMP_PREFIX) or p.suffix == ".parquet" for p in path.iterdir()
            )
        return True
    return False


def read_manifest(root: Path) -> dict[str, Any]:
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise CaseError(
            f"{root}: not a natlens case (no {MANIFEST})",
            hint="create one with: natlens ingest SOURCE... --case DIR",
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise CaseError(f"{manifest_path}: cannot be read ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("natlens_case"), int):
        raise CaseError(f"{manifest_path}: not a natlens manifest")
    if manifest["natlens_case"] > CASE_FORMAT:
        raise CaseError(
            f"{root}: written by a newer natlens (case format {manifest['natlens_case']})",
            hint="upgrade natlens",
        )
    if not isinstance(manifest.get("tables"), dict):
        raise CaseError(f"{manifest_path}: not a natlens manifest (no tables)")
    return manifest


def _new_manifest() -> dict[str, Any]:
    now = _now()
    return {
        "natlens_case": CASE_FORMAT,
        "natlens_version": __version__,
        "created": now,
        "updated": now,
        "tables": {name: {"parts": [], "records": 0} for name in TABLES},
        "sources": {},
        "cloudwatch_coverage": {},
        "formats": [],
        "time_range": None,
        "coverage_gaps": [],
        "ingests": [],
    }


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def opened(path: str | os.PathLike[str]) -> Iterator[Case]:
    case = Case.open(path)
    try:
        yield case
    finally:
        case.close()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
