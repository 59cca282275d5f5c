"""What a long run is doing, for the person waiting: the library says where it is (a stage, a
source read); the command line shows it on standard error when that is a terminal, and nowhere
else (pipes, files, --json and the library's own callers see nothing)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Protocol


class Reporter(Protocol):
    def stage(self, text: str) -> None: ...

    def source_done(self, name: str, size: int | None, records: int) -> None: ...

    def stop(self) -> None: ...


class _Quiet:
    def stage(self, text: str) -> None:
        pass

    def source_done(self, name: str, size: int | None, records: int) -> None:
        pass

    def stop(self) -> None:
        pass


_current: Reporter = _Quiet()


@contextlib.contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    global _current
    before, _current = _current, reporter
    try:
        yield reporter
    finally:
        _current = before


def stage(text: str) -> None:
    """A new step of a long run begins: ``text`` says what it does."""
    _current.stage(text)


def output_starts() -> None:
    """The command starts writing its result to standard output: progress ends first, so that
    the two never share a line (and the output goes straight to its file or pipe)."""
    _current.stop()


def source_done(name: str, fingerprint: str, records: int) -> None:
    """A source (file, object, log stream) was read."""
    found = re.search(r"size=(\d+)", fingerprint)
    _current.source_done(name, int(found.group(1)) if found else None, records)
