"""The simulator's vocabulary: kinds of connection, their variants and shape families, and the
ports and signatures they use."""

from __future__ import annotations

import numpy as np

# Kinds of connection.
EGRESS = 0  # a private instance to the internet, through its AZ's NAT gateway
SCAN = 1  # an internet host to a NAT gateway's public address, unsolicited: dropped there
EXPOSED_IN = 2  # an internet host to an instance with a public IP
EXPOSED_OUT = 3  # an instance with a public IP to the internet, through the internet gateway
LB_IN = 4  # an internet client to a load balancer's listener, passed on to a private target
KIND_NAMES = ("egress", "scan", "exposed-inbound", "exposed-outbound", "load-balancer-inbound")
# Variants of a TCP connection's life. Backscatter: the answer (SYN-ACK or RST) of a host whose
# address a spoofed SYN carried, arriving unasked.
# Probe: a scanner's SYN answered with SYN-ACK, which the scanner resets.
NORMAL, LONG, SHORT, IDLE_RST, BLOCKED, BACKSCATTER, BACKSCATTER_RST, PROBE = range(8)
VARIANT_NAMES = ("normal", "long-lived", "short", "idle-timeout", "blocked", "backscatter",
                 "backscatter-rst", "probe")  # fmt: skip
# Shape families: the four of every scenario, then those of aws-shapes (docs/simulate.md).
FAMILIES = (
    "nat-egress",  # private instances through their NAT gateway
    "nat-scan",  # unsolicited packets to a NAT gateway, some rejected by a network ACL
    "exposed-served",  # internet clients of an exposed instance (SSH, HTTPS)
    "public-outbound",  # the exposed instance going out through the internet gateway
    "pre-capture",  # long-lived connections begun before the capture: no SYN ever seen
    "low-port-clients",  # clients from 443/80/53/22/123 to high service ports, TCP and UDP
    "udp-both-ways",  # NTP 123<->123, QUIC, DNS served, a VPN port on both sides
    "icmp-both-ways",  # pings served; a scanner's ping merged with an instance's ping of it
    "nat-port-reuse",  # one NAT port, one destination, several instances in turn
    "backscatter",  # SYN-ACK and RST answers to spoofed SYNs, to a NAT gateway and an instance
    "instance-probes",  # scans of public instances: admitted (answered), or rejected by SG/NACL
    "load-balancer",  # NLB with client IP preservation, ALB without
    "ipv6",  # IPv6 out through an egress-only gateway, in to an exposed instance; ICMPv6
    "public-outbound-only",  # an instance with a public IP that only goes out
)
FAMILY = {name: k for k, name in enumerate(FAMILIES)}
# The family of a connection whose generator names none, by kind.
KIND_FAMILY = ("nat-egress", "nat-scan", "exposed-served", "public-outbound", "load-balancer")
LB_TARGET_PORT = 8080
ICMP_PROTOCOLS = (1, 58)  # ICMP and ICMPv6: ports are 0 in flow logs (docs/aws.md §11.6)
# docs/aws.md §4: a NAT gateway times a connection out after 350 s idle and answers the next
# packet from inside with RST.
NAT_IDLE_TIMEOUT = 350
SCAN_PORTS = np.array([22, 23, 80, 443, 445, 3389, 5900, 8080, 8443, 6379], dtype=np.int64)
# Ports a network ACL on the NAT gateways' subnets denies (world._nacls): logged REJECT.
DENIED_PORTS = (23,)
SIGNATURES = (
    # (signature_id, signature, category, severity, sni/host)
    (1000101, "blocked domain: paste site", "policy", 2, "paste.example-share.net"),
    (1000102, "blocked domain: crypto miner pool", "coin-mining", 1, "pool.mine-fast.io"),
    (1000103, "alert: unapproved file sharing", "policy", 3, "files.quickdrop.app"),
)
