"""Local files, directories (recursive) and globs."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from pathlib import Path

from natlens.accounting import Problem
from natlens.case import MANIFEST, is_case
from natlens.errors import SourceError
from natlens.formats.containers import Piece, SourceProblem, read_container
from natlens.sources.units import Unit


def units(source: str) -> Iterator[Unit]:
    path = Path(source).expanduser()
    # A name that exists is that file or directory, even with pattern characters in it.
    if any(ch in source for ch in "*?[") and not os.path.lexists(path):
        matches = sorted(glob.glob(os.path.expanduser(source), recursive=True))
        files = [Path(m) for m in matches if Path(m).is_file()]
        if not files:
            raise SourceError(f"{source}: the pattern matches no files")
    elif path.is_dir():
        # A link to nothing is listed too: reading it reports it, rather than passing it over.
        # A natlens case inside the directory is not a source (its Parquet is ours).
        # A subdirectory that cannot be listed is reported, never passed over in silence.
        found, unlisted = _walk(path)
        cases = {p.parent for p in found if p.name == MANIFEST and is_case(p.parent)}
        files = sorted(
            p
            for p in found
            if (p.is_file() or (p.is_symlink() and not p.exists()))
            and not _hidden(p, path)
            and not any(c == p.parent or c in p.parents for c in cases)
        )
        for directory, error in unlisted:
            if not _hidden(directory, path):
                yield _unlisted(directory, error)
    elif path.exists():
        files = [path]
    else:
        raise SourceError(
            f"{source}: no such file or directory",
            hint="give files, directories, globs, s3://bucket/prefix or cwl://log-group",
        )
    for file in files:
        yield file_unit(file)


def _walk(root: Path) -> tuple[list[Path], list[tuple[Path, OSError]]]:
    """Every file under ``root`` (links to directories followed, each directory once), and the
    directories that could not be listed."""
    found: list[Path] = []
    unlisted: list[tuple[Path, OSError]] = []
    seen = {os.path.realpath(root)}

    def failed(error: OSError) -> None:
        unlisted.append((Path(error.filename or root), error))

    for directory, dirs, names in os.walk(root, onerror=failed, followlinks=True):
        base = Path(directory)
        found.extend(base / name for name in names)
        for name in list(dirs):
            real = os.path.realpath(base / name)
            if real in seen:
                dirs.remove(name)  # a link back up the tree, or a second link to one place
            else:
                seen.add(real)
    return found, unlisted


def _unlisted(directory: Path, error: OSError) -> Unit:
    message = f"the directory cannot be listed: {error.strerror or error}; its files were not read"

    def read() -> Iterator[Piece]:
        yield SourceProblem(Problem("unreadable", str(directory), None, message, count=0))

    return Unit(str(directory), "unreadable", read)


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def file_unit(path: Path) -> Unit:
    """The unit of one file, by its exact path (never read as a pattern)."""
    resolved = path if path.is_symlink() and not path.exists() else path.resolve()
    try:
        stat = resolved.stat()
        fingerprint = f"size={stat.st_size};mtime_ns={stat.st_mtime_ns}"
    except OSError:
        fingerprint = "unreadable"
    return Unit(str(resolved), fingerprint, lambda: _read(str(resolved)))


def _read(path: str) -> Iterator[Piece]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, after the generator is done
    except OSError as exc:
        yield SourceProblem(Problem("unreadable", path, None, exc.strerror or str(exc), count=0))
        return
    with handle:
        yield from read_container(path, handle, path=path)
