"""One exception tree, and the exit codes the command line maps it to.

NatlensError
├── UsageError            a bad option or argument (exit 64)
├── InputError            input natlens cannot read as asked (exit 2)
│   ├── FormatError       no field order fits: give --log-format
│   └── StrictError       --strict stopped at the first problem
├── SourceError           a source cannot be reached: S3, CloudWatch Logs, a missing path (exit 2)
├── CaseError             a case directory is missing or damaged (exit 2)
├── EnvironmentProblem    something natlens needs is not installed or not running (exit 3)
└── InternalError         natlens failed in a way it did not foresee: a bug (exit 70)

The command line says other failures as these: an OS error (a file that cannot be read or
written) and a Spark failure as an InputError, a DuckDB error as engine.engine_error decides,
anything else as an InternalError.

Every message names what went wrong, where (file, line, field where known) and what to do.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1  # reserved for analyses that fail a --fail-on threshold
EXIT_INPUT = 2
EXIT_ENVIRONMENT = 3
EXIT_USAGE = 64
EXIT_INTERNAL = 70  # a bug: natlens failed in a way it did not foresee


class NatlensError(Exception):
    exit_code = EXIT_INPUT
    label = "error"  # how the command line introduces the message

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(NatlensError):
    exit_code = EXIT_USAGE


class InputError(NatlensError):
    exit_code = EXIT_INPUT


class FormatError(InputError):
    pass


class StrictError(InputError):
    pass


class SourceError(NatlensError):
    exit_code = EXIT_INPUT


class CaseError(NatlensError):
    exit_code = EXIT_INPUT


class EnvironmentProblem(NatlensError):
    exit_code = EXIT_ENVIRONMENT


class InternalError(NatlensError):
    exit_code = EXIT_INTERNAL
    label = "internal error"
