"""Text for a terminal: values from logs and context files are hostile, so control characters
(escape sequences, carriage returns, bidirectional overrides) are shown, never obeyed."""

from __future__ import annotations

import unicodedata
from typing import Protocol


class Writer(Protocol):
    """Where text goes: a file, standard output, or a SafeWriter in front of one."""

    def write(self, text: str, /) -> int: ...


def visible(text: str) -> str:
    """``text`` with every control or format character written as a ``\\x``/``\\u`` escape."""
    out = []
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") and char != " ":
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def line_safe(text: str) -> str:
    """Like ``visible`` but keeps newlines: for text natlens lays out in lines itself."""
    return "\n".join(visible(part) for part in text.split("\n"))


class SafeWriter:
    """A text stream that shows control characters instead of passing them to the terminal.
    Human-readable reports write through it: their values (paths, S3 keys, log stream names,
    ids, messages quoting log text) are hostile."""

    def __init__(self, out: Writer) -> None:
        self.out = out

    def write(self, text: str) -> int:
        return self.out.write(line_safe(text))

    def flush(self) -> None:
        flush = getattr(self.out, "flush", None)
        if flush is not None:
            flush()
