"""make demo: natlens on AWS's own example records and on a million generated ones.

Runs the natlens command line as a user would and prints each command before its output.
The traffic simulator (a later release) will replace the generated file with a labelled world.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / ".demo"
NATLENS = str(Path(sys.executable).with_name("natlens"))


def show(*args: str) -> None:
    shown = " ".join(a if " " not in a else f"'{a}'" for a in args)
    print(f"\n$ natlens {shown}", flush=True)
    result = subprocess.run([NATLENS, *args], cwd=ROOT, check=False)
    if result.returncode not in (0,):
        raise SystemExit(f"natlens exited with {result.returncode}")


def main() -> None:
    shutil.rmtree(DEMO / "case", ignore_errors=True)
    DEMO.mkdir(exist_ok=True)
    print("natlens demo: every record line of AWS's flow log examples page, in eight formats.")
    show("ingest", "examples/aws-docs", "--case", ".demo/case")
    print(
        "\nAWS's TCP flag example (version 3, bytes before packets, a double space in the last"
        " line):\nSYN (2) in, SYN-ACK (18) out, FIN (1) at the close; 3 and 19 for a short"
        " connection.\nA file can be read straight away: natlens uses a temporary case."
    )
    show(
        "records", "examples/aws-docs/tcp-flags.log",
        "--columns", "srcaddr,srcport,dstaddr,dstport,tcp_flags,packets,bytes,start,line",
    )  # fmt: skip

    generated = DEMO / "flows-v2-1m.log.gz"
    if not generated.exists():
        print("\nGenerating one million default-format records (gzip, as S3 delivers them) ...")
        subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "generate_flows.py"), str(generated),
             "--records", "1000000"],
            check=True,
        )  # fmt: skip
    shutil.rmtree(DEMO / "big", ignore_errors=True)
    show("ingest", ".demo/flows-v2-1m.log.gz", "--case", ".demo/big")
    print("\nThe case is Parquet and a manifest: DuckDB, Spark or Athena read it as it is.")
    show("records", ".demo/big", "--limit", "5", "--columns", "interface_id,srcaddr,dstaddr,"
         "srcport,dstport,protocol,action,log_status")  # fmt: skip


if __name__ == "__main__":
    main()
