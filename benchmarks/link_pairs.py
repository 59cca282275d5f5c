"""NAT-link candidate pairs per public leg (issue 15, item 1): do they grow with the volume?

For each case given, the pairs the three candidate joins of links.sql find for the NAT gateways'
public legs, per public leg (mean and maximum), the legs of the densest buckets, and how many
public legs met a bucket holding more legs than the cap (their answers say so).

    python benchmarks/link_pairs.py CASE [CASE ...] [--cap N] [--open-cap N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from sqlglot import exp  # noqa: E402

from natlens.analyses import nat  # noqa: E402
from natlens.analyses.conversations import ConversationOptions  # noqa: E402
from natlens.case import Case  # noqa: E402
from natlens.engine import DuckDBEngine  # noqa: E402
from natlens.sqltree import chain, fragment  # noqa: E402


def measure(case_dir: Path) -> dict[str, float]:
    options = nat.NatOptions(ConversationOptions())
    case = Case.open(case_dir)
    with DuckDBEngine() as engine:
        head, stored = nat._head(engine, case, options)
        stored = stored - {"nat_links"}
        base = nat._with_links(options.conversations, head, stored)
        tail = exp.select(
            fragment("count(*)").as_("rows"),
            fragment("coalesce(sum(n), 0)").as_("pairs"),
            fragment("coalesce(max(n), 0)").as_("most"),
        ).from_(
            exp.select("o.outside_id", fragment("count(m.outside_id)").as_("n"))
            .from_("public_legs AS o")
            .join("nat_matches AS m", on="m.outside_id = o.outside_id", join_type="left")
            .group_by("o.outside_id")
            .subquery("p")
        )
        started = time.perf_counter()
        rows, pairs, most = engine.query(chain(base, tail)).to_pylist()[0].values()
        seconds = time.perf_counter() - started
        crowded = engine.query(chain(base, exp.select("count(*) AS n").from_("nat_crowded")))
        densest = engine.query(
            chain(
                base,
                exp.select("max(near_crowd) AS near", "max(bytes_crowd) AS bytes").from_(
                    "nat_legs"
                ),
            )
        ).to_pylist()[0]
    return {
        "public legs": rows,
        "pairs": int(pairs),
        "pairs per leg": float(pairs) / rows if rows else 0.0,
        "most pairs for one leg": most,
        "densest 2 s bucket": densest["near"],
        "densest same-bytes bucket": densest["bytes"],
        "legs past the cap": crowded.column("n")[0].as_py(),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", type=Path)
    parser.add_argument(
        "--cap", type=int, default=nat.CANDIDATE_CAP, help="legs per 2 s or same-bytes bucket"
    )
    parser.add_argument(
        "--open-cap", type=int, default=nat.OPEN_CAP, help="legs open per 4 s bucket"
    )
    args = parser.parse_args()
    nat.CANDIDATE_CAP, nat.OPEN_CAP = args.cap, args.open_cap
    print(f"caps: {nat.CANDIDATE_CAP} legs per bucket, {nat.OPEN_CAP} open")
    for case_dir in args.cases:
        figures = measure(case_dir)
        print(
            case_dir,
            " · ".join(
                f"{k} {v:,.2f}" if isinstance(v, float) else f"{k} {v:,}"
                for k, v in figures.items()
            ),
        )


if __name__ == "__main__":
    main()
