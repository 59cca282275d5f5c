"""A real Spark standalone cluster for the tests: one master and two workers on 127.0.0.1.

Each is its own Java process, started with the launcher script the pyspark package ships
(``bin/spark-class``) and the classes of its own jars: nothing is downloaded. Every port is
chosen by the process itself (port 0) and read back from its log, so runs never collide.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).parent
_PORT = re.compile(r"Successfully started service '(?P<service>[^']+)' on port (?P<port>\d+)")
# Only the cluster's own services: no REST submission server, UIs on a port of their choosing.
PROPERTIES = """\
spark.master.rest.enabled false
spark.ui.showConsoleProgress false
spark.worker.cleanup.enabled false
"""


class SparkCluster:
    def __init__(self, workers: int = 2, cores: int = 1, memory: str = "2g") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="natlens-spark-"))
        (self.dir / "spark-defaults.conf").write_text(PROPERTIES)
        self.env = {
            **os.environ,
            "SPARK_HOME": str(SPARK_HOME),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOG_DIR": str(self.dir),
            # The executors run natlens's own Python (ingest) with this interpreter.
            "PYSPARK_PYTHON": sys.executable,
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        try:
            port = self._start(
                "master",
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--webui-port",
                "0",
            )
            self.url = f"spark://127.0.0.1:{port}"
            for index in range(workers):
                work = self.dir / f"work-{index}"
                work.mkdir()
                self._start(
                    f"worker-{index}",
                    "org.apache.spark.deploy.worker.Worker",
                    self.url,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--webui-port",
                    "0",
                    "--cores",
                    str(cores),
                    "--memory",
                    memory,
                    "--work-dir",
                    str(work),
                )
            self._wait_registered(workers)
        except BaseException:
            self.stop()
            raise

    def _start(self, name: str, main_class: str, *args: str) -> int:
        log = self.dir / f"{name}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.processes.append(
                subprocess.Popen(
                    [
                        str(SPARK_HOME / "bin" / "spark-class"),
                        main_class,
                        *args,
                        "--properties-file",
                        str(self.dir / "spark-defaults.conf"),
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    start_new_session=True,
                )
            )
        service = "sparkMaster" if name == "master" else "sparkWorker"

        def port() -> int | None:
            for match in _PORT.finditer(log.read_text(errors="replace")):
                if match["service"] == service:
                    return int(match["port"])
            return None

        return self._wait(port, log, f"Spark {name} did not start", self.processes[-1])

    def _wait_registered(self, workers: int) -> None:
        master_log = self.logs[0]

        def registered() -> int | None:
            seen = master_log.read_text(errors="replace").count("Registering worker")
            return seen if seen >= workers else None

        self._wait(registered, master_log, "Spark workers did not register")

    @staticmethod
    def _wait(
        found: Callable[[], int | None],
        log: Path,
        failure: str,
        process: subprocess.Popen[bytes] | None = None,
    ) -> int:
        """``found()``'s first answer within 90 s, polling; else the failure and the log."""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            value = found()
            if value is not None:
                return value
            if process is not None and process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"{failure}; its log:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, 15)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
