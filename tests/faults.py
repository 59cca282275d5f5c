"""Run the natlens command line in a child process that kills itself (SIGKILL, as the kernel's
OOM killer or a lost machine would) at the K-th file rename or removal inside a directory.

    python -m tests.faults K DIRECTORY natlens-arguments...

K = 0 runs without a fault. Used by tests/test_case_safety.py to stop an ingest at every step of
its commit; nothing else in natlens knows about it.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


def main() -> int:
    k, directory, args = int(sys.argv[1]), os.path.abspath(sys.argv[2]), sys.argv[3:]
    calls = 0

    def faulty(original: Any) -> Any:
        def call(path: Any, *rest: Any, **kwargs: Any) -> Any:
            nonlocal calls
            if os.path.abspath(os.fspath(path)).startswith(directory):
                calls += 1
                if calls == k:
                    os.kill(os.getpid(), signal.SIGKILL)
            return original(path, *rest, **kwargs)

        return call

    os.replace = faulty(os.replace)  # type: ignore[assignment]
    os.unlink = faulty(os.unlink)  # type: ignore[assignment]
    os.rename = faulty(os.rename)  # type: ignore[assignment]
    from natlens.cli import main as natlens

    code = natlens(args)
    sys.stderr.write(f"fault-points {calls}\n")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
