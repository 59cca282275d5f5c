"""Write docs/cli.md from the command line's own --help (the docs cannot drift from it)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "cli.md"


def render() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal width
    from natlens.cli import build_parser

    parser = build_parser()
    parts = [
        "# Command line reference\n",
        "Generated from `natlens --help` by `scripts/gen_cli_docs.py`; a test checks that it is "
        "current.\n",
        "```\n" + parser.format_help().rstrip() + "\n```\n",
    ]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        parts.append(f"## natlens {name}\n")
        parts.append("```\n" + sub.format_help().rstrip() + "\n```\n")
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        for action in nested:
            for inner, parser_ in action.choices.items():
                parts.append(f"## natlens {name} {inner}\n")
                parts.append("```\n" + parser_.format_help().rstrip() + "\n```\n")
    return "\n".join(parts)


def main() -> None:
    text = render()
    if "--check" in sys.argv:
        raise SystemExit(0 if TARGET.read_text() == text else "docs/cli.md is out of date")
    TARGET.write_text(text)


if __name__ == "__main__":
    main()
