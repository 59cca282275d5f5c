"""The topology checks: id, the highest severity of its findings, title, in the order they run.

One table, read by the command line (``topology --check``, its help) without loading the checks
and the network model, and by ``checks.check``, which registers each check's code under its id.
"""

from __future__ import annotations

from natlens.vocabulary import Severity

CATALOG: dict[str, tuple[Severity, str]] = {
    "firewall-after-nat": (Severity.MEDIUM, "The firewall sits after the NAT gateway"),
    "asymmetric-return-path": (Severity.HIGH, "One direction bypasses the firewall"),
    "egress-bypasses-firewall": (Severity.HIGH, "Internet traffic bypasses the firewall"),
    "cross-az-hop": (
        Severity.MEDIUM,
        "A subnet uses a NAT gateway or firewall endpoint in another AZ",
    ),
    "blackhole-route": (Severity.HIGH, "A route points at a target that no longer exists"),
    "nacl-admits-unsolicited": (
        Severity.LOW,
        "The NAT gateway's network ACL admits unsolicited traffic",
    ),
    "firewall-endpoint-not-ready": (Severity.MEDIUM, "A firewall endpoint is not ready"),
    "egress-dead-end": (Severity.HIGH, "Traffic for the internet stops inside the VPC"),
}
SEVERITIES = tuple(Severity)
