"""The entry point: run a command, and turn every failure into a message and an exit code."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence

from natlens.cli.inputs import safe
from natlens.cli.parser import build_parser
from natlens.errors import (
    EXIT_OK,
    EXIT_USAGE,
    InputError,
    InternalError,
    NatlensError,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        with _progress(args):
            return int(args.run(args))
    except NatlensError as exc:
        safe(sys.stderr).write(f"natlens: error: {exc}\n")
        return exc.exit_code
    except BrokenPipeError:
        # The reader of our output went away (natlens records ... | head): not an error.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        problem = _as_natlens_error(exc)
        safe(sys.stderr).write(f"natlens: {problem.label}: {problem}\n")
        if os.environ.get("NATLENS_DEBUG"):
            import traceback

            traceback.print_exc()
        return problem.exit_code


@contextlib.contextmanager
def _progress(args: object) -> Iterator[None]:
    """Progress on standard error while the command runs, when that is a terminal and the
    output is not JSON for a program."""
    quiet = getattr(args, "json", False) or getattr(args, "format", None) == "json"
    if quiet or not sys.stderr.isatty() or os.environ.get("NATLENS_PROGRESS") == "0":
        yield
        return
    from natlens import progress
    from natlens.render.live import TerminalProgress

    with TerminalProgress(sys.stderr) as bar, progress.reporting(bar):
        yield


def _as_natlens_error(exc: Exception) -> NatlensError:
    """What went wrong outside natlens's own checks, said as a natlens error."""
    if isinstance(exc, OSError):
        # A file natlens was asked to read or write: missing, not permitted, disk full.
        where = f"{exc.filename}: " if exc.filename else ""
        return InputError(f"{where}{exc.strerror or exc}")
    duckdb = sys.modules.get("duckdb")
    if duckdb is not None and isinstance(exc, duckdb.Error):
        # Raised while results stream out, after the query started.
        from natlens.engine import engine_error

        return engine_error(exc)
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    if "pyspark" in sys.modules and type(exc).__module__.startswith(("pyspark", "py4j")):
        return InputError(
            f"Spark stopped: {type(exc).__name__}: {first}",
            hint="natlens case check CASE tells whether the case is damaged; --engine duckdb "
            "runs the same analysis on this machine",
        )
    return InternalError(
        f"{type(exc).__name__}: {first}",
        hint="this is a bug in natlens; NATLENS_DEBUG=1 prints the traceback to report",
    )
