"""The analyses whose SQL a user can print.

``QUERIES`` names every analysis whose SQL a user can print for their own engine
(``natlens sql --dialect athena NAME``); each entry gives the query with its default settings,
for a natlens case's table or (``in_case=False``) an existing table with AWS's columns only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from natlens.engine import SQL

if TYPE_CHECKING:
    from sqlglot import exp

    from natlens.analyses.nat import NatOptions


def _records(in_case: bool) -> SQL:
    from natlens.analyses.records import records_sql
    from natlens.schema import DEFAULT_FORMAT, FLOW_FIELDS, column_name

    if in_case:
        return records_sql([f.column for f in FLOW_FIELDS] + ["source", "line"], None)
    return records_sql([column_name(f) for f in DEFAULT_FORMAT], None, in_case=False)


def _conversations(in_case: bool) -> SQL:
    from natlens.analyses.conversations import conversations_sql

    return conversations_sql(in_case=in_case)


def _inbound(in_case: bool) -> SQL:
    from natlens.analyses.inbound import inbound_sql

    return inbound_sql(in_case=in_case)


def _nat_options(in_case: bool) -> tuple[NatOptions, exp.Query | None]:
    from natlens.analyses.conversations import ConversationOptions, conversation_ctes
    from natlens.analyses.nat import NatOptions

    options = NatOptions(ConversationOptions())
    return options, None if in_case else conversation_ctes(options.conversations, in_case=False)


def _nat(in_case: bool) -> SQL:
    from natlens.analyses.nat import nat_links_sql

    return nat_links_sql(*_nat_options(in_case))


def _attribute(in_case: bool) -> SQL:
    """Every firewall event with its instance. The events are always natlens's
    ``firewall_events`` table: who opened a flow is told by the order Suricata wrote its netflow
    events in (``line``), which AWS's Athena tables of the JSON logs do not keep."""
    from natlens.analyses.nat import attribute_sql

    return attribute_sql(*_nat_options(in_case))


def _top_talkers(in_case: bool) -> SQL:
    from natlens.analyses.nat import top_talkers_sql

    return top_talkers_sql(*_nat_options(in_case))


QUERIES: dict[str, Callable[[bool], SQL]] = {
    "records": _records,
    "conversations": _conversations,
    "inbound": _inbound,
    "nat": _nat,
    "top-talkers": _top_talkers,
    "attribute": _attribute,
}
