"""Text for a terminal: values from logs and context files are hostile, so control characters
(escape sequences, carriage returns, bidirectional overrides) are shown, never obeyed."""

from __future__ import annotations

import unicodedata


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
