"""Start-up: the CPU time every natlens command spends before its work begins (issue 15: at
most 0.15 s), measured as ``natlens COMMAND --help`` (parse the arguments, print, exit), against
the floor of starting the same Python with nothing to do.

    .venv/bin/python benchmarks/startup.py [--runs 7]

Prints one line per command (median user + system CPU of the runs) and PASS or FAIL.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

TARGET = 0.15  # seconds of CPU


def cpu(command: list[str], runs: int) -> float:
    """The median CPU seconds (user + system) one run of ``command`` takes."""
    times = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times)


def commands() -> list[tuple[str, ...]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from natlens.cli import build_parser

    found: list[tuple[str, ...]] = []

    def walk(parser: argparse.ArgumentParser, prefix: tuple[str, ...]) -> None:
        found.append(prefix)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*prefix, name))

    walk(build_parser(), ())
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    python = sys.executable
    env_note = f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
    floor = cpu([python, "-c", "pass"], args.runs)
    print(f"start-up CPU, median of {args.runs} ({env_note}); floor `python -c pass` {floor:.3f} s")
    failed = 0
    for command in commands():
        seconds = cpu([python, "-m", "natlens", *command, "--help"], args.runs)
        verdict = "PASS" if seconds <= TARGET else "FAIL"
        failed += verdict == "FAIL"
        name = " ".join(command) or "(none)"
        print(f"{name:22} {seconds:.3f} s  {seconds / floor:4.1f}x floor  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
