"""Progress on a terminal: a spinner line on standard error saying what natlens is doing (the
stage, the sources read so far and their bytes), gone when the command ends. Names in it come
from logs and S3 keys: shown, never obeyed (control characters escaped, no rich markup)."""

from __future__ import annotations

from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from natlens.render.terminal import visible


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000:
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count = count / 1000  # type: ignore[assignment]
    return f"{count:,.1f} TB"


class TerminalProgress:
    def __init__(self, stream: TextIO) -> None:
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(file=stream, highlight=False),
            transient=True,
            # Results go to standard output untouched (a Parquet file, millions of JSON lines);
            # the command ends progress before it writes them (progress.output_starts).
            redirect_stdout=False,
        )
        self.task = self.bar.add_task("starting", total=None)
        self.sources = self.bytes = self.records = 0

    def __enter__(self) -> TerminalProgress:
        self.bar.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self.bar.stop()  # once is enough; again does nothing

    def stage(self, text: str) -> None:
        self.bar.update(self.task, description=escape(visible(text)))

    def source_done(self, name: str, size: int | None, records: int) -> None:
        self.sources += 1
        self.bytes += size or 0
        self.records += records
        short = name if len(name) <= 60 else "…" + name[-59:]
        self.stage(
            f"reading: {self.sources:,} sources, {_size(self.bytes)}, {self.records:,} records "
            f"(last: {short})"
        )
