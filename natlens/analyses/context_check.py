"""Is the context about these logs? A context saved for another VPC or account, or at another
time, names addresses the logs share by chance (every VPC may use 10.0.0.0/16): used blindly,
it would turn its roles into confident answers about someone else's interfaces. The flow logs
themselves say which interfaces, VPC and instances they saw; where the context disagrees, it is
not used, and natlens says so.
"""

from __future__ import annotations

from dataclasses import replace

from natlens.analyses.conversations import ConversationOptions
from natlens.case import Case
from natlens.engine import Engine
from natlens.formats.describe_json import Context


def prepare(engine: Engine, case: Case, options: ConversationOptions) -> ConversationOptions:
    """Check ``options``' context against ``case`` once: the context that fits replaces it and
    the warnings are kept in ``options.context_warnings`` (the analyses call this; the CLI
    prints the warnings)."""
    if options.context_warnings is None:
        options.context, warnings = check_context(engine, case, options.context)
        options.context_warnings = warnings
    return options


def check_context(
    engine: Engine, case: Case, context: Context | None
) -> tuple[Context | None, list[str]]:
    """The context to use for ``case`` and warnings about what was left out of it."""
    if context is None or not context.interfaces:
        return context, []
    engine.register_case(case)
    seen = engine.query(
        "SELECT interface_id, min(vpc_id) AS vpc_id, min(instance_id) AS instance_id, "
        "count(DISTINCT instance_id) AS instances FROM flows "
        "WHERE interface_id IS NOT NULL GROUP BY interface_id ORDER BY interface_id"
    ).to_pylist()
    if not seen:
        return context, []
    known = {
        e.get("NetworkInterfaceId"): (e.get("Attachment") or {}).get("InstanceId")
        for e in context.interfaces
    }
    logged = [row for row in seen if row["interface_id"] in known]
    if not logged:
        theirs = sorted({r["vpc_id"] for r in seen if r["vpc_id"]})
        ours = sorted(context.vpc_ids())
        where = (
            f" (it describes {', '.join(ours)}; the logs are from {', '.join(theirs)})"
            if theirs and ours
            else ""
        )
        return None, [
            f"none of the {len(seen)} interfaces in the logs is in the context{where}: it is "
            "for another VPC, account or time and is not used. Collect it for the VPC these "
            "logs are from (natlens context collect --vpc-id ...)."
        ]
    warnings = []
    dropped = set()
    for row in logged:
        logged_instance = row["instance_id"]
        described = known[row["interface_id"]]
        if row["instances"] == 1 and logged_instance and described and logged_instance != described:
            dropped.add(row["interface_id"])
            warnings.append(
                f"{row['interface_id']}: the flow logs say instance {logged_instance}, the "
                f"context {described} (re-attached, or collected at another time): what the "
                "context says of its addresses is not used"
            )
    unknown = len(seen) - len(logged)
    if unknown:
        warnings.append(
            f"{unknown} of the {len(seen)} interfaces in the logs are not in the context: their "
            "roles are inferred from the logs"
        )
    if not dropped:
        return context, warnings
    kept = [e for e in context.interfaces if e.get("NetworkInterfaceId") not in dropped]
    return replace(context, interfaces=kept), warnings
