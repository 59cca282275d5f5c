"""HTML report benchmark: its size, and its time against the analyses it shows.

Target (issue 16): on 10 million records, `natlens report` writes a page under 10 MB in at most
1.2x the time of the analyses it shows, run as a user would, one command after another on the
same case: `inbound`, `attribute --log-type alert`, `nat --top-talkers` and `topology` (the
first makes the derived tables the others reuse). Both start from a copy of the case with
nothing derived.

    python benchmarks/report_benchmark.py CASE CONTEXT [--memory-limit 1.3GB] [--record-results]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from ingest_benchmark import append_results, print_checks, run  # noqa: E402

NATLENS = [sys.executable, "-m", "natlens"]


def fresh(case: Path, where: Path) -> Path:
    copy = where / "case"
    shutil.copytree(case, copy, ignore=shutil.ignore_patterns("derived"))
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", type=Path)
    parser.add_argument("context", type=Path)
    parser.add_argument("--memory-limit", default="1.3GB")
    parser.add_argument("--record-results", action="store_true")
    args = parser.parse_args()
    limit = ["--memory-limit", args.memory_limit]
    context = ["--context", str(args.context)]
    with tempfile.TemporaryDirectory(dir=args.case.parent) as tmp:
        root = Path(tmp)
        (root / "a").mkdir()
        case = fresh(args.case, root / "a")
        floor = {}
        for name, command in (
            ("inbound", ["inbound", str(case), *context, "--format", "parquet"]),
            ("attribute", ["attribute", str(case), *context, "--log-type", "alert",
                           "--format", "parquet"]),
            ("nat --top-talkers", ["nat", str(case), *context, "--top-talkers",
                                   "--format", "parquet"]),
        ):  # fmt: skip
            out = root / f"{name.split()[0]}.parquet"
            floor[name], _rss, _ = run([*NATLENS, *command, "--output", str(out), *limit])
            print(f"{name:20} {floor[name]:8.1f} s")
        floor["topology"], _rss, _ = run([*NATLENS, "topology", *context, "--format", "json"])
        print(f"{'topology':20} {floor['topology']:8.1f} s")
        shutil.rmtree(root / "a")
        (root / "b").mkdir()
        case = fresh(args.case, root / "b")
        page = root / "report.html"
        seconds, rss, _ = run(
            [*NATLENS, "report", str(case), *context, "--output", str(page), *limit]
        )
        size = page.stat().st_size
    analyses = sum(floor.values())
    ratio = seconds / analyses
    print(f"{'analyses':20} {analyses:8.1f} s")
    print(f"{'report':20} {seconds:8.1f} s, {size / 1e6:.2f} MB, peak {rss / 1e9:.2f} GB")
    checks = print_checks(
        [
            (f"report {seconds:.1f} s = {ratio:.2f}x the analyses it shows "
             f"({analyses:.1f} s) (<= 1.2x)", ratio <= 1.2),
            (f"report {size / 1e6:.2f} MB (< 10 MB)", size < 10e6),
        ]
    )  # fmt: skip
    if args.record_results:
        rows = "\n".join(f"| {name} | {t:.1f} |" for name, t in floor.items())
        text = (
            f"\n\nCase `{args.case}`, `--memory-limit {args.memory_limit}`.\n\n"
            f"| analysis | seconds |\n|---|---:|\n{rows}\n| **sum** | **{analyses:.1f}** |\n"
            f"| `natlens report` | {seconds:.1f} ({size / 1e6:.2f} MB, peak "
            f"{rss / 1e9:.2f} GB) |\n\n" + "\n".join(checks)
        )
        append_results(
            "HTML report (issue 16)",
            f"python benchmarks/report_benchmark.py {args.case} {args.context}",
            text,
        )


if __name__ == "__main__":
    main()
