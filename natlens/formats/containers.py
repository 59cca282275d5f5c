"""What a byte stream holds, told by its content rather than its name.

gzip (including several members back to back), Parquet as S3 delivers it, the JSON that
``aws logs filter-log-events``/``get-log-events`` print, CloudWatch Logs subscription payloads
(gzip + base64 JSON with ``logEvents``, alone, per line, or wrapped in a Lambda ``awslogs`` event,
or back to back as Firehose writes them), ``--output text`` CLI dumps, and plain text lines
(with or without a CloudWatch export timestamp in front). Every one becomes pieces for the
record parser.
"""

from __future__ import annotations

import base64
import binascii
import io
import itertools
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from isal import isal_zlib

from natlens.accounting import Problem
from natlens.formats.network_firewall import looks_like_event

BLOCK_BYTES = 1 << 24
MAX_LINE_BYTES = 1 << 20
# JSON documents and Parquet inside gzip are read whole: this bounds the memory they take.
MAX_DOCUMENT_BYTES = 256 << 20
LINES_PER_PIECE = 1 << 20
EVENTS_PER_PIECE = 100_000


@dataclass
class TextPiece:
    """Whole record lines; the first is line ``first_line`` of ``source``."""

    source: str
    block: bytes
    first_line: int


@dataclass
class TablePiece:
    """Columns read from a Parquet file; the first row is row ``first_line`` of ``source``."""

    source: str
    table: pa.Table
    first_line: int


@dataclass
class LinesPassedOver:
    """Lines that are not records and not problems: CLI tokens, control messages.

    They were handed to the parser as blank lines (to keep line numbers); ``count`` moves them
    from the blank count to the metadata count.
    """

    source: str
    count: int


@dataclass
class LinesDropped:
    """Lines reported as problems and handed to the parser empty (to keep line numbers):
    ``count`` takes them back out of the line and blank counts."""

    source: str
    count: int


@dataclass
class SourceProblem:
    """A problem with a source or part of it, found before parsing."""

    problem: Problem


Piece = TextPiece | TablePiece | LinesPassedOver | LinesDropped | SourceProblem


def read_container(source: str, raw: IO[bytes], path: str | None = None) -> Iterator[Piece]:
    """Read one file or object, whatever container it is in. ``path``: the file on disk, when
    there is one, so that Parquet is read a row group at a time instead of whole."""
    stream: Any = io.BufferedReader(raw, buffer_size=1 << 20)
    head = stream.peek(8)[:8]
    if not head:
        return
    if head[:2] == b"\x1f\x8b":
        inner = Gunzip(stream)
        try:
            inner_head = inner.peek(8)[:8]
        except (OSError, EOFError, zlib.error) as exc:
            yield SourceProblem(
                Problem("bad-container", source, None, f"not valid gzip: {exc}", count=0)
            )
            return
        yield from _read_decoded(source, inner, inner_head, compressed=True)
        return
    if head[:4] == b"PAR1" and path is not None:
        yield from _read_parquet(source, path)
        return
    yield from _read_decoded(source, stream, head, compressed=False)


_ISAL_ERROR: type[Exception] = isal_zlib.error  # type: ignore[assignment]


class Gunzip:
    """Streaming gunzip over any number of gzip members, keeping every byte before a cut.

    ``read1`` returns decompressed bytes as they come; at a cut or damaged stream it raises
    (EOFError or zlib.error) only once everything before it has been returned.
    """

    RAW_CHUNK = 1 << 20
    OUT_CHUNK = 1 << 22

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.pending_input = b""
        self.inflate = isal_zlib.decompressobj(wbits=31)
        self.in_member = False  # bytes of a member were fed and its end has not come yet
        self.buffer = b""
        self.pending_error: Exception | None = None
        self.done = False

    def _fill(self) -> None:
        """Decompress at most OUT_CHUNK bytes at a time: a small file that inflates to gigabytes
        (a decompression bomb) never sits in memory whole."""
        while not self.buffer and not self.done and self.pending_error is None:
            data = self.pending_input
            if not data:
                data = self.raw.read(self.RAW_CHUNK)
                if not data:
                    self.done = True
                    if self.in_member:
                        self.pending_error = EOFError(
                            "compressed stream ended before the end of its last gzip member"
                        )
                    return
            self.pending_input = b""
            try:
                self.in_member = True
                self.buffer = self.inflate.decompress(data, self.OUT_CHUNK)
                if self.inflate.unconsumed_tail:
                    self.pending_input = self.inflate.unconsumed_tail
                elif self.inflate.eof:
                    # One member ended; the next (if any) starts with the unused bytes.
                    self.pending_input = self.inflate.unused_data
                    self.inflate = isal_zlib.decompressobj(wbits=31)
                    self.in_member = False
            except (zlib.error, _ISAL_ERROR) as exc:
                self.pending_error = zlib.error(f"damaged gzip data: {exc}")

    def read1(self, size: int = -1) -> bytes:
        self._fill()
        if not self.buffer:
            if self.pending_error is not None:
                error, self.pending_error = self.pending_error, None
                self.done = True
                raise error
            return b""
        if size < 0 or size >= len(self.buffer):
            out, self.buffer = self.buffer, b""
        else:
            out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out

    def read(self, size: int = -1) -> bytes:
        chunks: list[bytes] = []
        got = 0
        while size < 0 or got < size:
            chunk = self.read1(-1 if size < 0 else size - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def peek(self, size: int = 1) -> bytes:
        self._fill()
        if not self.buffer and self.pending_error is not None:
            error, self.pending_error = self.pending_error, None
            raise error
        return self.buffer[: max(size, 1)]


def _read_decoded(source: str, stream: Any, head: bytes, compressed: bool) -> Iterator[Piece]:
    try:
        yield from _read_decoded_whole(source, stream, head, compressed)
    except TooLarge:
        yield SourceProblem(
            Problem(
                "bad-container",
                source,
                None,
                f"a JSON or compressed Parquet document over {MAX_DOCUMENT_BYTES >> 20} MiB, "
                "which natlens would have to hold whole: split it (for CloudWatch Logs, fewer "
                "events per file)",
                count=0,
            )
        )


def _read_decoded_whole(source: str, stream: Any, head: bytes, compressed: bool) -> Iterator[Piece]:
    if head[:4] == b"PAR1":
        yield from _read_parquet(source, io.BytesIO(_read_all(source, stream)))
        return
    first = head.lstrip()[:1]
    if first == b"{" and _firewall_lines(stream):
        # Network Firewall logs: one JSON event per line, read as lines (docs/aws.md §6).
        yield from _read_text(source, stream)
        return
    if first in (b"{", b"["):
        yield from _read_json(source, _read_all(source, stream))
        return
    if head.startswith(b"H4sI"):  # base64 of a gzip header: subscription payloads, one per line
        yield from _read_json(source, _read_all(source, stream), base64_lines=True)
        return
    if not compressed and _looks_binary(stream.peek(8192)[:8192]):
        yield SourceProblem(
            Problem("not-text", source, None, "binary data, not a log file: nothing read")
        )
        return
    yield from _read_text(source, stream)


def _firewall_lines(stream: Any) -> bool:
    sample = stream.peek(65536)[:65536]
    first = sample.split(b"\n", 1)[0]
    return looks_like_event(first.decode("utf-8", "replace"))


def _looks_binary(sample: bytes) -> bool:
    """Mostly control bytes: an image, an archive. One stray NUL in a log does not count."""
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return len(sample) > 0 and controls / len(sample) > 0.1


class TooLarge(Exception):
    """A document natlens must hold whole (JSON, Parquet inside gzip) is over MAX_DOCUMENT_BYTES."""


def _read_all(source: str, stream: IO[bytes]) -> bytes:
    """The whole stream; a truncated document then fails to parse and is reported there.
    Raises TooLarge past MAX_DOCUMENT_BYTES (a small gzip can inflate to gigabytes)."""
    chunks = []
    size = 0
    while True:
        chunk, error = _read_block(stream)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_DOCUMENT_BYTES:
            raise TooLarge(source)
        if error is not None or not chunk:
            return b"".join(chunks)


def _read_block(stream: Any) -> tuple[bytes, Exception | None]:
    """Up to BLOCK_BYTES, gathered one underlying read at a time so that what was read before a
    broken stream is kept."""
    chunks: list[bytes] = []
    size = 0
    while size < BLOCK_BYTES:
        try:
            chunk = stream.read1(BLOCK_BYTES - size)
        except (OSError, EOFError, zlib.error) as exc:
            return b"".join(chunks), exc
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), None


def _read_text(source: str, stream: Any) -> Iterator[Piece]:
    """Blocks of whole lines; a cut stream keeps every whole line before the cut."""
    line = 1
    rest = b""
    cli_text: bool | None = None
    while True:
        chunk, error = _read_block(stream)
        if error is not None:
            data = rest + chunk
            cut = data.rfind(b"\n")
            if cut >= 0:
                block, data = data[: cut + 1], data[cut + 1 :]
                yield from _text_piece(source, block, line, cli_text)
                line += block.count(b"\n")
            yield SourceProblem(
                Problem(
                    "truncated",
                    source,
                    line,
                    f"the compressed stream ends early ({error}); every line before this one "
                    "was read",
                    count=1 if data else 0,
                )
            )
            return
        if not chunk:
            if rest:
                yield from _text_piece(source, rest + b"\n", line, cli_text)
            return
        data = rest + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            if len(data) > MAX_LINE_BYTES:
                yield _lines_problem(
                    "not-text", source, line, f"a line longer than {MAX_LINE_BYTES} bytes"
                )
                line += 1
                after = _skip_to_newline(stream)
                if after is None:
                    return
                rest = after
                continue
            rest = data
            continue
        block, rest = data[: cut + 1], data[cut + 1 :]
        if cli_text is None:
            head = block[:65536]
            cli_text = head.startswith(b"EVENTS\t") or b"\nEVENTS\t" in head
        yield from _text_piece(source, block, line, cli_text)
        line += block.count(b"\n")


def _skip_to_newline(stream: IO[bytes]) -> bytes | None:
    """Drop bytes up to the next newline; returns what follows it, or None at the end."""
    while True:
        chunk = stream.read(BLOCK_BYTES)
        if not chunk:
            return None
        cut = chunk.find(b"\n")
        if cut >= 0:
            return chunk[cut + 1 :]


def _drop_long_lines(source: str, block: bytes, line: int) -> tuple[bytes, list[SourceProblem]]:
    """Lines over MAX_LINE_BYTES never reach a parser: each is reported and left empty (its
    number kept); the caller takes them back out of the blank count."""
    ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
    starts = np.concatenate(([0], ends[:-1] + 1))
    long_rows = np.flatnonzero(ends - starts > MAX_LINE_BYTES)
    if not len(long_rows):
        return block, []
    parts, problems, at = [], [], 0
    for row in long_rows:
        parts.append(block[at : int(starts[row])])
        at = int(ends[row])
        problems.append(
            _lines_problem(
                "not-text", source, line + int(row), f"a line longer than {MAX_LINE_BYTES} bytes"
            )
        )
    parts.append(block[at:])
    return b"".join(parts), problems


def _lines_problem(reason: str, source: str, line: int, message: str) -> SourceProblem:
    return SourceProblem(Problem(reason, source, line, message, count=1))


def _text_piece(source: str, block: bytes, line: int, cli_text: bool | None) -> Iterator[Piece]:
    if len(block) > MAX_LINE_BYTES and _may_have_long_line(block):
        block, dropped = _drop_long_lines(source, block, line)
        yield from dropped
        if dropped:
            yield LinesDropped(source, len(dropped))
    if block.count(b"\n") > LINES_PER_PIECE:
        # Millions of short lines (a run of newlines): pieces of at most LINES_PER_PIECE lines,
        # so that what the parser builds per line stays small.
        ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
        cuts = [0, *(int(e) + 1 for e in ends[LINES_PER_PIECE - 1 :: LINES_PER_PIECE])]
        del ends
        if cuts[-1] < len(block):
            cuts.append(len(block))
        for low, high in itertools.pairwise(cuts):
            yield from _line_piece(source, block[low:high], line, cli_text)
            line += LINES_PER_PIECE
        return
    yield from _line_piece(source, block, line, cli_text)


def _may_have_long_line(block: bytes) -> bool:
    """Whether a line may be longer than MAX_LINE_BYTES: such a line covers a whole window of
    half that size, which then holds no newline. A few memchr calls rule it out."""
    window = MAX_LINE_BYTES // 2
    return any(block.find(b"\n", i, i + window) < 0 for i in range(0, len(block), window))


def _line_piece(source: str, block: bytes, line: int, cli_text: bool | None) -> Iterator[Piece]:
    if not cli_text:
        yield TextPiece(source, block, line)
        return
    # aws logs ... --output text prints each event as EVENTS and its scalar keys in sorted order:
    # filter-log-events: eventId ingestionTime logStreamName message timestamp;
    # get-log-events: ingestionTime message timestamp. Other lines are page tokens and the
    # SEARCHEDLOGSTREAMS list.
    out, passed = [], 0
    for raw in block.split(b"\n")[:-1]:
        parts = raw.rstrip(b"\r").split(b"\t")
        if parts[0] == b"EVENTS" and len(parts) == 6:
            out.append(parts[4])
        elif parts[0] == b"EVENTS" and len(parts) == 4:
            out.append(parts[2])
        else:
            out.append(b"")
            passed += int(bool(raw.strip()))
    yield TextPiece(source, b"\n".join(out) + b"\n", line)
    if passed:
        yield LinesPassedOver(source, passed)


def _read_parquet(source: str, file: str | IO[bytes]) -> Iterator[Piece]:
    try:
        parquet = pq.ParquetFile(file)
        row = 1
        for batch in parquet.iter_batches(batch_size=1 << 20):
            table = pa.Table.from_batches([batch])
            yield TablePiece(source, table, row)
            row += table.num_rows
    except (pa.ArrowException, OSError) as exc:
        yield SourceProblem(
            Problem("bad-container", source, None, f"damaged Parquet file: {exc}", count=0)
        )


# -- CloudWatch Logs JSON ----------------------------------------------------------------------


def _read_json(source: str, data: bytes, base64_lines: bool = False) -> Iterator[Piece]:
    """Events from CloudWatch Logs JSON; each event's message is one record line.

    Event numbers stand in for line numbers: event N of the file is reported as ``source:N``.
    """
    reader = _EventReader(source)
    if base64_lines:
        for raw in data.split(b"\n"):
            if raw.strip():
                reader.payload(raw.strip())
    else:
        reader.document(data)
    yield from reader.problems
    messages = reader.messages
    for start in range(0, len(messages), EVENTS_PER_PIECE):
        chunk = messages[start : start + EVENTS_PER_PIECE]
        yield TextPiece(source, "\n".join(chunk).encode() + b"\n", start + 1)
    if reader.control:
        yield TextPiece(source, b"\n" * reader.control, len(messages) + 1)
        yield LinesPassedOver(source, reader.control)


class _EventReader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.messages: list[str] = []
        self.inflated = 0  # bytes the subscription payloads inflated to, together
        self.problems: list[SourceProblem] = []
        self.control = 0

    def _bad(self, message: str) -> None:
        self.problems.append(
            SourceProblem(Problem("bad-json", self.source, None, message, count=0))
        )

    def document(self, data: bytes) -> None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._bad(f"not UTF-8 JSON ({exc})")
            return
        decoder = json.JSONDecoder()
        pos = 0
        while True:
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
            if pos >= len(text):
                return
            try:
                value, pos = decoder.raw_decode(text, pos)
            except RecursionError:
                self._bad("JSON nested too deeply to be CloudWatch Logs events")
                return
            except json.JSONDecodeError as exc:
                self._bad(f"line {exc.lineno} column {exc.colno}: {exc.msg}")
                nxt = text.find("\n", exc.pos)
                if nxt < 0:
                    return
                pos = nxt + 1
                continue
            self.value(value)

    def payload(self, encoded: bytes) -> None:
        """A subscription payload: base64 of gzip of JSON."""
        try:
            self.document(self._inflate(base64.b64decode(encoded, validate=True)))
        except (binascii.Error, OSError, EOFError, zlib.error, _ISAL_ERROR) as exc:
            self.problems.append(
                SourceProblem(
                    Problem(
                        "bad-container",
                        self.source,
                        None,
                        f"a subscription payload is not base64 gzip: {exc}",
                        count=0,
                    )
                )
            )

    def _inflate(self, data: bytes) -> bytes:
        """A payload's gzip, inflated no further than what is left of the document limit: all
        the payloads of one file together count as one document (MAX_DOCUMENT_BYTES)."""
        inflate = isal_zlib.decompressobj(wbits=31)
        out = inflate.decompress(data, MAX_DOCUMENT_BYTES - self.inflated + 1)
        self.inflated += len(out)
        if self.inflated > MAX_DOCUMENT_BYTES:
            raise TooLarge(self.source)
        if not inflate.eof:
            raise EOFError("the gzip stream ends early")
        return out

    def value(self, value: object, depth: int = 0) -> None:
        if depth > 8:  # events sit at most a few levels down (a Lambda event, a list of pages)
            self._bad("JSON nested too deeply to be CloudWatch Logs events")
            return
        if isinstance(value, list):
            for item in value:
                self.value(item, depth + 1)
        elif isinstance(value, str):
            self.messages.append(_one_line(value))
        elif isinstance(value, dict):
            self.object(value, depth)
        else:
            self._bad(f"a JSON {type(value).__name__} where an event or a message was expected")

    def object(self, obj: dict[str, object], depth: int = 0) -> None:
        if obj.get("messageType") == "CONTROL_MESSAGE":
            self.control += 1
            return
        awslogs = obj.get("awslogs")
        if isinstance(awslogs, dict) and isinstance(awslogs.get("data"), str):
            self.payload(str(awslogs["data"]).encode())  # a Lambda subscription event
            return
        for key in ("logEvents", "events"):
            events = obj.get(key)
            if isinstance(events, list):
                for event in events:
                    self.value(event, depth + 1)
                return
        message = obj.get("message")
        if isinstance(message, str):
            self.messages.append(_one_line(message))
            return
        keys = ", ".join(sorted(obj)[:6])
        self._bad(f"a JSON object with no events and no message (keys: {keys})")


def _one_line(message: str) -> str:
    return message.replace("\r", " ").replace("\n", " ")
