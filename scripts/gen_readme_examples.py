"""Run every `$ natlens ...` line of the README's ```console blocks again and write what it
prints under it (tests/test_docs.py checks that the README says what natlens prints). Run it in
the repository: python scripts/gen_readme_examples.py"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import tempfile
from contextlib import chdir
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH = "100"
sys.path.insert(0, str(ROOT))

from tests.conftest import run_cli  # noqa: E402


def _run(command: str, scratch: Path) -> str:
    os.environ["COLUMNS"] = WIDTH  # as tests/test_docs.py runs them
    with chdir(scratch):
        run = run_cli(*shlex.split(command))
    return (run.err + run.out).rstrip("\n")


def regenerate(text: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        shutil.copytree(ROOT / "examples", scratch / "examples")

        def block(match: re.Match[str]) -> str:
            lines = []
            for line in match.group(1).splitlines():
                if line.startswith("$ natlens "):
                    lines += [line, _run(line[len("$ natlens ") :], scratch)]
            return "```console\n" + "\n".join(lines) + "\n```"

        return re.sub(r"```console\n(.*?)```", block, text, flags=re.S)


if __name__ == "__main__":
    readme = ROOT / "README.md"
    readme.write_text(regenerate(readme.read_text()))
