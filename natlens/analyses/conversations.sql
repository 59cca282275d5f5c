-- Conversations: both directions of a connection, across the interfaces that saw it and across
-- capture windows, with who started it, how sure that is, and why.
--
-- The steps, one CTE each:
--   base        data records, with the real endpoints (pkt-* when logged)
--   edges ...   which addresses are gateways (NAT gateways, firewall endpoints) and which
--               instances sit behind one: from the context given, else inferred from the logs
--   keyed       each record on an unordered (address, port) pair: lo < hi, fwd = 1 when it
--               travels lo -> hi
--   sessioned   a new conversation when a pair stays idle longer than the NAT gateway's idle
--               timeout (docs/aws.md §4: 350 s)
--   sightings   one row per interface that logged the conversation, counted once per kind
--   numbered    the interfaces in order, so that the conversation names them in fixed columns
--   convs       one row per conversation: the packets of the interface that saw the most
--   described   roles (context or inferred), private or public, peers of each side (fan-in)
--   scored      each piece of evidence as a signed weight: > 0 says lo opened it, < 0 says hi
--   decided     the sum decides; its size is the confidence
--
-- conversations.py puts in front the context's rows (known_hosts: addresses and their roles;
-- sg_rules: per private address, the inbound security group rules that admit internet
-- addresses) and fills in each $placeholder.
WITH base AS (
    SELECT
        interface_id,
        srcaddr,
        dstaddr,
        coalesce(pkt_srcaddr, srcaddr) AS a_addr,
        coalesce(pkt_dstaddr, dstaddr) AS b_addr,
        coalesce(srcport, 0) AS a_port,
        coalesce(dstport, 0) AS b_port,
        coalesce(protocol, -1) AS protocol,
        coalesce(packets, 0) AS packets,
        coalesce(bytes, 0) AS bytes,
        -- formats without start/end (AWS's NAT gateway example) put everything in one session
        coalesce(start, 0) AS start,
        coalesce("end", start, 0) AS "end",
        action,
        tcp_flags,
        $provenance
    FROM flows
    WHERE srcaddr IS NOT NULL AND dstaddr IS NOT NULL
        AND coalesce(log_status, 'OK') = 'OK'
        AND $time_filter
),
edge_records AS (
    -- Who sends to whom, once per logged address pair: what the roles are inferred from.
    SELECT
        srcaddr,
        dstaddr,
        srcaddr_v4,
        dstaddr_v4,
        -- AWS: NAT gateways use source ports 1024-65535 toward the internet.
        max(CASE WHEN protocol IN (6, 17) AND srcport < 1024 THEN 1 ELSE 0 END) AS low_src_port
    FROM flows
    WHERE srcaddr IS NOT NULL AND dstaddr IS NOT NULL
        AND coalesce(log_status, 'OK') = 'OK'
        AND $time_filter
    GROUP BY srcaddr, dstaddr, srcaddr_v4, dstaddr_v4
),
edges AS (
    SELECT
        srcaddr,
        dstaddr,
        $src_private AS src_private,
        $dst_private AS dst_private,
        low_src_port
    FROM edge_records
),
relays AS (
    -- docs/aws.md §3.6: a NAT gateway's private leg names it in dstaddr and the internet
    -- host in pkt-dstaddr. (A secondary address of an instance differs too, but stays private.)
    SELECT dstaddr AS address
    FROM flows
    WHERE srcaddr IS NOT NULL AND dstaddr IS NOT NULL AND pkt_dstaddr IS NOT NULL
        AND pkt_dstaddr <> dstaddr AND srcaddr <> dstaddr
        AND coalesce(log_status, 'OK') = 'OK'
        AND $time_filter
        AND $pkt_dst_private = 0
    GROUP BY dstaddr
),
gateway_out AS (
    -- private addresses that send to the internet, never from a port below 1024: the
    -- candidates for NAT leg pairs, apart from relays and addresses the context knows
    SELECT e.srcaddr AS address
    FROM edges AS e
    LEFT JOIN relays AS r ON r.address = e.srcaddr
    LEFT JOIN known_hosts AS k ON k.address = e.srcaddr
    WHERE e.src_private = 1 AND e.dst_private = 0 AND r.address IS NULL AND k.address IS NULL
    GROUP BY e.srcaddr
    HAVING max(e.low_src_port) = 0
),
legs_in AS (
    -- Without pkt-* fields, a NAT gateway's interface logs both legs of one connection: private
    -- host -> it on the server's port, and it -> the internet on the same port, with the same
    -- packets and bytes in the same capture window (address translation keeps packet sizes).
    -- Each leg once per minute: a long connection logs the same counts window after window,
    -- and pairing every window with every other would grow with the square of its length.
    SELECT DISTINCT f.interface_id, f.dstaddr AS address, f.dstport, f.protocol, f.packets,
        f.bytes, CAST(floor(f.start / 60) AS BIGINT) AS minute
    FROM flows AS f
    JOIN gateway_out AS g ON f.dstaddr = g.address
    -- records with pkt-* fields show relays instead (and skip whole row groups here)
    WHERE f.pkt_dstaddr IS NULL
        AND f.srcaddr <> f.dstaddr AND f.protocol IN (6, 17) AND f.packets >= 3
        AND coalesce(f.log_status, 'OK') = 'OK'
        AND $f_time_filter
        AND $f_src_private = 1
),
legs_out AS (
    -- the same, each minute also standing for its neighbours: pairs are found by equality
    SELECT DISTINCT o.interface_id, o.address, o.dstport, o.protocol, o.packets, o.bytes,
        o.minute + n.shift AS minute
    FROM (
        SELECT f.interface_id, f.srcaddr AS address, f.dstport, f.protocol, f.packets, f.bytes,
            CAST(floor(f.start / 60) AS BIGINT) AS minute
        FROM flows AS f
        JOIN gateway_out AS g ON f.srcaddr = g.address
        WHERE f.pkt_dstaddr IS NULL AND f.protocol IN (6, 17) AND f.packets >= 3
            AND coalesce(f.log_status, 'OK') = 'OK'
            AND $f_time_filter
            AND $f_dst_private = 0
    ) AS o
    CROSS JOIN (SELECT -1 AS shift UNION ALL SELECT 0 UNION ALL SELECT 1) AS n
),
leg_pairs AS (
    SELECT i.address
    FROM legs_in AS i
    JOIN legs_out AS o
        ON o.interface_id = i.interface_id AND o.address = i.address AND o.dstport = i.dstport
        AND o.protocol = i.protocol AND o.packets = i.packets AND o.bytes = i.bytes
        AND o.minute = i.minute
    GROUP BY i.address
    HAVING count(*) >= 3
),
inferred_gateways AS (
    SELECT c.address
    FROM (SELECT address FROM relays UNION SELECT address FROM leg_pairs) AS c
    LEFT JOIN known_hosts AS k ON k.address = c.address
    WHERE k.address IS NULL
),
inferred_instances AS (
    SELECT e.srcaddr AS address
    FROM edges AS e
    JOIN inferred_gateways AS g ON e.dstaddr = g.address
    LEFT JOIN inferred_gateways AS self ON self.address = e.srcaddr
    LEFT JOIN known_hosts AS k ON k.address = e.srcaddr
    WHERE e.src_private = 1 AND self.address IS NULL AND k.address IS NULL
    GROUP BY e.srcaddr
),
hosts AS (
    SELECT
        address,
        role,
        resource_id,
        interface_id,
        'context' AS origin,
        CASE WHEN role IN ('nat-gateway', 'firewall-endpoint') THEN 1 ELSE 0 END AS gateway,
        -- how strongly "a NAT gateway returns internet packets only as replies" holds
        CASE
            WHEN role = 'nat-gateway' THEN 8
            -- an instance without a public address (or an IPv6 one behind an egress-only
            -- gateway) receives internet packets only as replies, unless a network load
            -- balancer keeps its clients' addresses (then 0)
            WHEN role = 'instance' THEN $instance_weight
            ELSE 0
        END AS nat_weight,
        -- toward whom its source ports are ephemeral anywhere in 1024-65535 (AWS: NAT
        -- gateways toward the internet, load balancers toward their targets, Lambda always)
        CASE
            WHEN role IN ('nat-gateway', 'firewall-endpoint') THEN 'internet'
            WHEN role = 'load-balancer' THEN 'private'
            WHEN role = 'lambda' THEN 'any'
        END AS wide_ports
    FROM known_hosts
    UNION ALL
    SELECT address, 'gateway', CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), 'inferred', 1, 4,
        'internet'
    FROM inferred_gateways
    UNION ALL
    SELECT address, 'instance', CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), 'inferred', 0, 2,
        CAST(NULL AS VARCHAR)
    FROM inferred_instances
),
oriented AS (
    -- A record logged by a gateway between the endpoints (a NAT gateway's private leg, with
    -- the real peer in pkt-*) names the gateway: the connection crossed it.
    SELECT
        b.*,
        CASE WHEN b.a_addr < b.b_addr OR (b.a_addr = b.b_addr AND b.a_port <= b.b_port) THEN 1
            ELSE 0 END AS fwd,
        CASE WHEN r.gateway = 1 THEN r.nat_weight ELSE 0 END AS via_nat,
        CASE WHEN r.gateway = 1 AND r.origin = 'inferred' THEN 1 ELSE 0 END AS via_inferred,
        -- the gateway that relayed it (a NAT gateway's private leg, a firewall endpoint)
        CASE WHEN r.gateway = 1 THEN r.address END AS relay
    FROM base AS b
    LEFT JOIN hosts AS r
        ON r.address = CASE
            WHEN b.srcaddr <> b.a_addr THEN b.srcaddr
            WHEN b.dstaddr <> b.b_addr THEN b.dstaddr
        END
),
keyed AS (
    SELECT
        CASE WHEN fwd = 1 THEN a_addr ELSE b_addr END AS lo_addr,
        CASE WHEN fwd = 1 THEN a_port ELSE b_port END AS lo_port,
        CASE WHEN fwd = 1 THEN b_addr ELSE a_addr END AS hi_addr,
        CASE WHEN fwd = 1 THEN b_port ELSE a_port END AS hi_port,
        protocol,
        fwd,
        interface_id,
        -- Which of the logged addresses are not the real ones (pkt-*): with the interface, a
        -- sighting of the connection (a firewall endpoint logs packets in and out again).
        CASE WHEN srcaddr <> a_addr THEN 1 ELSE 0 END
            + CASE WHEN dstaddr <> b_addr THEN 2 ELSE 0 END
            AS relayed,
        via_nat,
        via_inferred,
        relay,
        packets,
        bytes,
        start,
        "end",
        CASE WHEN action = 'ACCEPT' THEN 1 WHEN action = 'REJECT' THEN 2 ELSE 0 END AS verdict,
        tcp_flags,
        $provenance
    FROM oriented
),
ordered AS (
    SELECT
        *,
        -- Records that start together may come in any order: only the first of them can open
        -- a session (the others see its end), and the RANGE sum below counts them together.
        max("end") OVER (
            PARTITION BY lo_addr, lo_port, hi_addr, hi_port, protocol
            ORDER BY start
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS previous_end
    FROM keyed
),
sessioned AS (
    SELECT
        *,
        sum(CASE WHEN previous_end IS NULL OR start > previous_end + $idle THEN 1 ELSE 0 END)
            OVER (
                PARTITION BY lo_addr, lo_port, hi_addr, hi_port, protocol
                ORDER BY start
                RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            ) AS session
    FROM ordered
),
sightings AS (
    -- One row per interface that logged the conversation. A firewall endpoint logs the same
    -- packets in (its address as dstaddr) and out again (as srcaddr), a NAT gateway's private
    -- leg names the NAT gateway on one side: per direction, the records of one kind (0 as
    -- addressed, 1 relayed out, 2 relayed in) are counted, the largest kind wins.
    SELECT
        lo_addr, lo_port, hi_addr, hi_port, protocol, session, interface_id,
        $kind_sums,
        count(*) AS records,
        min(start) AS first_seen,
        max("end") AS last_seen,
        min(CASE WHEN fwd = 1 THEN start END) AS fwd_start,
        min(CASE WHEN fwd = 0 THEN start END) AS rev_start,
        max(fwd) AS fwd_seen,
        max(1 - fwd) AS rev_seen,
        max(CASE WHEN fwd = 1 AND verdict = 1 THEN 1 ELSE 0 END) AS fwd_accept,
        max(CASE WHEN fwd = 0 AND verdict = 1 THEN 1 ELSE 0 END) AS rev_accept,
        max(CASE WHEN fwd = 1 AND verdict = 2 THEN 1 ELSE 0 END) AS fwd_reject,
        max(CASE WHEN fwd = 0 AND verdict = 2 THEN 1 ELSE 0 END) AS rev_reject,
        -- AWS ORs the flags of a capture window: SYN without ACK is 2 or 3 (SYN+FIN), SYN-ACK is
        -- 18 or 19 (docs/aws.md §1.4).
        max(CASE WHEN fwd = 1 AND (tcp_flags & 18) = 2 THEN 1 ELSE 0 END) AS fwd_syn,
        max(CASE WHEN fwd = 0 AND (tcp_flags & 18) = 2 THEN 1 ELSE 0 END) AS rev_syn,
        max(CASE WHEN fwd = 1 AND (tcp_flags & 18) = 18 THEN 1 ELSE 0 END) AS fwd_synack,
        max(CASE WHEN fwd = 0 AND (tcp_flags & 18) = 18 THEN 1 ELSE 0 END) AS rev_synack,
        max(via_nat) AS via_nat,
        max(via_inferred) AS via_inferred,
        min(relay) AS relay_min,
        max(relay) AS relay_max
    FROM sessioned
    GROUP BY lo_addr, lo_port, hi_addr, hi_port, protocol, session, interface_id
),
numbered AS (
    -- Interfaces in order, so that the conversation can name them without a list aggregate
    -- (whose state no engine spills to disk).
    SELECT
        *,
        row_number() OVER (
            PARTITION BY lo_addr, lo_port, hi_addr, hi_port, protocol, session
            ORDER BY interface_id
        ) AS interface_number
    FROM sightings
),
convs AS (
    SELECT
        lo_addr, lo_port, hi_addr, hi_port, protocol, session,
        -- Each interface saw the same packets: count them once.
        $kind_max,
        CAST(sum(records) AS BIGINT) AS records,
        min(first_seen) AS first_seen,
        max(last_seen) AS last_seen,
        min(fwd_start) AS fwd_start,
        min(rev_start) AS rev_start,
        max(fwd_seen) AS fwd_seen,
        max(rev_seen) AS rev_seen,
        max(fwd_accept) AS fwd_accept,
        max(rev_accept) AS rev_accept,
        max(fwd_reject) AS fwd_reject,
        max(rev_reject) AS rev_reject,
        max(fwd_syn) AS fwd_syn,
        max(rev_syn) AS rev_syn,
        max(fwd_synack) AS fwd_synack,
        max(rev_synack) AS rev_synack,
        max(via_nat) AS via_nat,
        max(via_inferred) AS via_inferred,
        min(relay_min) AS relay_min,
        max(relay_max) AS relay_max,
        count(interface_id) AS interface_count,
        $interface_slots
    FROM numbered
    GROUP BY lo_addr, lo_port, hi_addr, hi_port, protocol, session
),
private_convs AS (
    -- private or public, once per conversation rather than per record
    SELECT *, $lo_private AS lo_private, $hi_private AS hi_private
    FROM convs
),
sg_sides AS (
    -- Each conversation between a private side and the internet, seen from the private side.
    SELECT lo_addr, lo_port, hi_addr, hi_port, protocol, session,
        lo_addr AS inside, lo_port AS inside_port, hi_addr AS peer
    FROM private_convs
    WHERE lo_private = 1 AND hi_private = 0
    UNION ALL
    SELECT lo_addr, lo_port, hi_addr, hi_port, protocol, session,
        hi_addr AS inside, hi_port AS inside_port, lo_addr AS peer
    FROM private_convs
    WHERE hi_private = 1 AND lo_private = 0
),
sg_matches AS (
    -- The security groups of the private side, known from the context, against its internet
    -- peer: do they admit a connection from that address to that port?
    SELECT c.lo_addr, c.lo_port, c.hi_addr, c.hi_port, c.protocol, c.session, r.rule,
        CASE
            WHEN r.protocol IN (-1, c.protocol)
                AND c.inside_port BETWEEN r.from_port AND r.to_port
                AND ($peer_in_rule) THEN 1
            ELSE 0
        END AS admits,
        -- a rule for this one service (not a whole ephemeral range): a port meant to be reached
        CASE
            WHEN r.to_port - r.from_port <= 16
                OR (r.to_port - r.from_port < 4096 AND c.inside_port < 32768) THEN 1
            ELSE 0
        END AS narrow
    FROM sg_sides AS c
    JOIN sg_rules AS r ON r.address = c.inside
),
sg_checked AS (
    -- per conversation with a private side whose groups are known (its only private side)
    SELECT
        lo_addr, lo_port, hi_addr, hi_port, protocol, session,
        max(admits) AS sg_admits,
        max(admits * narrow) AS sg_service,
        min(CASE WHEN admits = 1 THEN rule END) AS sg_rule
    FROM sg_matches
    GROUP BY lo_addr, lo_port, hi_addr, hi_port, protocol, session
),
endpoint_peers AS (
    -- Per endpoint (address, port): how many peers it has, and whether a gateway is one of
    -- them (a connection an instance made through a NAT gateway shows its internet peer's
    -- endpoint at the gateway too).
    SELECT e.address, e.port, e.protocol,
        count(DISTINCT CASE WHEN e.protocol IN (6, 17) THEN e.peer END) AS peers,
        max(coalesce(h.gateway, 0)) AS gateway_peer
    FROM (
        SELECT lo_addr AS address, lo_port AS port, protocol, hi_addr AS peer FROM convs
        UNION ALL
        SELECT hi_addr AS address, hi_port AS port, protocol, lo_addr AS peer FROM convs
    ) AS e
    LEFT JOIN hosts AS h ON h.address = e.peer
    GROUP BY e.address, e.port, e.protocol
),
described AS (
    SELECT
        c.*,
        coalesce(h1.gateway, 0) AS lo_gateway,
        coalesce(h2.gateway, 0) AS hi_gateway,
        coalesce(h1.wide_ports, '') AS lo_wide_ports,
        coalesce(h2.wide_ports, '') AS hi_wide_ports,
        -- An instance inferred from the logs receives internet packets only as replies as far
        -- as its peer's endpoint was also seen at a gateway: otherwise it may be an instance
        -- with a public IP, or a network load balancer's target keeping its clients' addresses.
        CASE WHEN h1.origin = 'inferred' AND h1.gateway = 0 AND coalesce(p2.gateway_peer, 0) = 0
            THEN 0 ELSE coalesce(h1.nat_weight, 0) END AS lo_nat_weight,
        CASE WHEN h2.origin = 'inferred' AND h2.gateway = 0 AND coalesce(p1.gateway_peer, 0) = 0
            THEN 0 ELSE coalesce(h2.nat_weight, 0) END AS hi_nat_weight,
        coalesce(h1.role, CASE WHEN c.lo_private = 1 THEN 'private' ELSE 'internet' END)
            AS lo_role,
        coalesce(h2.role, CASE WHEN c.hi_private = 1 THEN 'private' ELSE 'internet' END)
            AS hi_role,
        h1.resource_id AS lo_resource,
        h2.resource_id AS hi_resource,
        h1.interface_id AS lo_interface,
        h2.interface_id AS hi_interface,
        h1.origin AS lo_origin,
        h2.origin AS hi_origin,
        coalesce(p1.peers, 0) AS lo_peers,
        coalesce(p2.peers, 0) AS hi_peers,
        CASE WHEN g.sg_admits IS NULL THEN 0 ELSE 1 END AS sg_known,
        coalesce(g.sg_admits, 0) AS sg_admits,
        coalesce(g.sg_service, 0) AS sg_service,
        g.sg_rule
    FROM private_convs AS c
    LEFT JOIN hosts AS h1 ON h1.address = c.lo_addr
    LEFT JOIN hosts AS h2 ON h2.address = c.hi_addr
    LEFT JOIN endpoint_peers AS p1
        ON p1.address = c.lo_addr AND p1.port = c.lo_port AND p1.protocol = c.protocol
    LEFT JOIN endpoint_peers AS p2
        ON p2.address = c.hi_addr AND p2.port = c.hi_port AND p2.protocol = c.protocol
    LEFT JOIN sg_checked AS g
        ON g.lo_addr = c.lo_addr AND g.lo_port = c.lo_port AND g.hi_addr = c.hi_addr
        AND g.hi_port = c.hi_port AND g.protocol = c.protocol AND g.session = c.session
),
ranked AS (
    -- How much a port looks like a server's: 3 well-known, 2 a listed service, 1 other,
    -- 0 ephemeral (Linux 32768-60999, Windows 49152-65535; a NAT gateway's translated port
    -- toward the internet, 1024-65535). NULL where ports mean nothing (ICMP).
    SELECT
        *,
        $lo_rank AS lo_rank,
        $hi_rank AS hi_rank
    FROM described
),
scored AS (
    SELECT
        *,
        CASE
            WHEN protocol <> 6 THEN 0
            WHEN fwd_syn = 1 AND rev_syn = 0 THEN 4
            WHEN rev_syn = 1 AND fwd_syn = 0 THEN -4
            ELSE 0
        END AS s_syn,
        -- A SYN-ACK (or RST) with nothing back is backscatter or a scan, not a reply: the
        -- other side sent nothing in the capture.
        CASE
            WHEN protocol <> 6 OR fwd_seen + rev_seen < 2 THEN 0
            WHEN rev_synack = 1 AND fwd_synack = 0 THEN 2 + 2 * fwd_syn * (1 - rev_syn)
            WHEN fwd_synack = 1 AND rev_synack = 0 THEN -2 - 2 * rev_syn * (1 - fwd_syn)
            ELSE 0
        END AS s_synack,
        CASE
            WHEN lo_gateway = 1 AND hi_private = 0 AND fwd_seen = 1 THEN lo_nat_weight
            WHEN hi_gateway = 1 AND lo_private = 0 AND rev_seen = 1 THEN -hi_nat_weight
            -- a NAT gateway never opens connections to the instances behind it
            WHEN lo_gateway = 1 AND hi_gateway = 0 AND hi_private = 1 AND lo_nat_weight > 0
                THEN -lo_nat_weight
            WHEN hi_gateway = 1 AND lo_gateway = 0 AND lo_private = 1 AND hi_nat_weight > 0
                THEN hi_nat_weight
            WHEN lo_gateway = 0 AND hi_gateway = 0 AND lo_private = 1 AND hi_private = 0
                AND greatest(via_nat, lo_nat_weight) > 0 THEN greatest(via_nat, lo_nat_weight)
            WHEN lo_gateway = 0 AND hi_gateway = 0 AND hi_private = 1 AND lo_private = 0
                AND greatest(via_nat, hi_nat_weight) > 0 THEN -greatest(via_nat, hi_nat_weight)
            ELSE 0
        END AS s_nat,
        CASE
            WHEN hi_gateway = 1 AND lo_private = 0 AND fwd_seen = 1 AND rev_seen = 0 THEN 4
            WHEN lo_gateway = 1 AND hi_private = 0 AND rev_seen = 1 AND fwd_seen = 0 THEN -4
            ELSE 0
        END AS s_unsolicited,
        CASE
            WHEN fwd_seen = 1 AND rev_seen = 0 AND fwd_reject = 1 AND fwd_accept = 0 THEN 2
            WHEN rev_seen = 1 AND fwd_seen = 0 AND rev_reject = 1 AND rev_accept = 0 THEN -2
            ELSE 0
        END AS s_reject,
        CASE
            WHEN fwd_seen = 1 AND rev_seen = 0 THEN 1
            WHEN rev_seen = 1 AND fwd_seen = 0 THEN -1
            ELSE 0
        END AS s_oneway,
        -- AWS: security groups are stateful. Packets from the internet side that were accepted
        -- although no rule admits them from that address to that port are replies: the private
        -- side opened the connection. (The groups are as collected, not as they were when the
        -- logs were written: high, never certain.)
        CASE
            WHEN lo_private = 1 AND hi_private = 0 AND sg_known = 1 AND sg_admits = 0
                AND rev_accept = 1 THEN 4
            WHEN hi_private = 1 AND lo_private = 0 AND sg_known = 1 AND sg_admits = 0
                AND fwd_accept = 1 THEN -4
            ELSE 0
        END AS s_sg,
        -- A rule that admits the internet side to this one service port: a port meant to be
        -- reached from the internet.
        CASE
            WHEN lo_private = 1 AND hi_private = 0 AND sg_service = 1 THEN -2
            WHEN hi_private = 1 AND lo_private = 0 AND sg_service = 1 THEN 2
            ELSE 0
        END AS s_sg_open,
        -- A load balancer (from the context) takes connections from its clients and never
        -- opens one to the internet.
        CASE
            WHEN lo_role = 'load-balancer' AND lo_origin = 'context' AND hi_private = 0 THEN -4
            WHEN hi_role = 'load-balancer' AND hi_origin = 'context' AND lo_private = 0 THEN 4
            ELSE 0
        END AS s_lb,
        CASE
            WHEN lo_rank IS NULL OR hi_rank IS NULL THEN 0
            WHEN hi_rank - lo_rank >= 2 THEN 2
            WHEN hi_rank - lo_rank = 1 THEN 1
            WHEN lo_rank - hi_rank >= 2 THEN -2
            WHEN lo_rank - hi_rank = 1 THEN -1
            ELSE 0
        END AS s_port,
        CASE
            WHEN protocol NOT IN (6, 17) THEN 0
            WHEN hi_peers >= $fan_in AND lo_peers = 1 THEN 1
            WHEN lo_peers >= $fan_in AND hi_peers = 1 THEN -1
            ELSE 0
        END AS s_fanin,
        CASE
            WHEN protocol NOT IN (6, 17) OR fwd_start IS NULL OR rev_start IS NULL THEN 0
            WHEN fwd_start < rev_start THEN 1
            WHEN rev_start < fwd_start THEN -1
            ELSE 0
        END AS s_start
    FROM ranked
),
totals AS (
    SELECT
        *,
        s_syn + s_synack + s_nat + s_unsolicited + s_reject + s_sg + s_sg_open + s_lb + s_oneway
            + s_port
            + s_fanin + s_start AS score,
        -- What decides, apart from hints (ports, timing, fan-in, one direction, a SYN-ACK
        -- without a SYN, which scans and backscatter send): flags, REJECTs, and roles, from
        -- the context or inferred from the logs.
        s_syn + CASE WHEN fwd_syn + rev_syn > 0 THEN s_synack ELSE 0 END + s_reject + s_sg
            + s_sg_open + s_lb + CASE
                WHEN lo_origin = 'inferred' OR hi_origin = 'inferred' OR via_inferred = 1 THEN 0
                ELSE s_nat + s_unsolicited
            END AS decisive_known,
        CASE
            WHEN lo_origin = 'inferred' OR hi_origin = 'inferred' OR via_inferred = 1
                THEN s_nat + s_unsolicited
            ELSE 0
        END AS decisive_inferred
    FROM scored
),
decided AS (
    SELECT
        *,
        -- The client: the side the evidence points to; with none, the side seen first.
        CASE
            WHEN score > 0 THEN 1
            WHEN score < 0 THEN 0
            WHEN fwd_start IS NULL THEN 0
            WHEN rev_start IS NULL THEN 1
            WHEN rev_start < fwd_start THEN 0
            ELSE 1
        END AS lo_is_client,
        CASE
            WHEN score = 0 THEN 'unknown'
            -- hints alone never say more than low
            WHEN (decisive_known + decisive_inferred) * score <= 0 THEN 'low'
            WHEN abs(score) < 2 THEN 'low'
            -- ICMP records carry no ports: one conversation can hold several exchanges, opened
            -- from either side, so natlens says no more than medium about it; and no more
            -- than low when the internet side sent more than it got back: an echo request
            -- gets one reply, so the extra packets opened exchanges of their own.
            WHEN protocol NOT IN (6, 17) AND fwd_seen = 1 AND rev_seen = 1 AND (
                (lo_private = 0 AND hi_private = 1 AND fwd_packets > rev_packets)
                OR (hi_private = 0 AND lo_private = 1 AND rev_packets > fwd_packets)
            ) THEN 'low'
            WHEN protocol NOT IN (6, 17) THEN 'medium'
            -- roles inferred from the logs never give more than medium: certain and high are
            -- measured without them
            WHEN decisive_known * score <= 0 THEN 'medium'
            WHEN (score - decisive_inferred) * score >= 8 * abs(score) THEN 'certain'
            WHEN (score - decisive_inferred) * score >= 4 * abs(score) THEN 'high'
            ELSE 'medium'
        END AS confidence,
        CASE WHEN score > 0 THEN 1 WHEN score < 0 THEN -1 ELSE 0 END AS side
    FROM totals
),
explained AS (
    SELECT
        *,
        concat_ws(
            ',',
            CASE WHEN side <> 0 AND s_syn * side > 0 THEN 'tcp-syn' END,
            CASE WHEN side <> 0 AND s_synack * side > 0 THEN 'tcp-synack' END,
            CASE WHEN side <> 0 AND s_nat * side > 0 THEN 'nat-return-only' END,
            CASE WHEN side <> 0 AND s_unsolicited * side > 0 THEN 'nat-unsolicited' END,
            CASE WHEN side <> 0 AND s_reject * side > 0 THEN 'reject-side' END,
            CASE WHEN side <> 0 AND s_sg * side > 0 THEN 'sg-not-admitted' END,
            CASE WHEN side <> 0 AND s_sg_open * side > 0 THEN 'sg-admits' END,
            CASE WHEN side <> 0 AND s_lb * side > 0 THEN 'lb-listener' END,
            CASE WHEN side <> 0 AND s_oneway * side > 0 THEN 'one-way' END,
            CASE
                WHEN side <> 0 AND s_port * side > 0
                    AND (CASE WHEN side > 0 THEN hi_rank ELSE lo_rank END) >= 2
                    THEN 'service-port'
            END,
            CASE
                WHEN side <> 0 AND s_port * side > 0
                    AND (CASE WHEN side > 0 THEN lo_rank ELSE hi_rank END) = 0
                    THEN 'ephemeral-port'
            END,
            CASE WHEN side <> 0 AND s_fanin * side > 0 THEN 'fan-in' END,
            CASE WHEN side <> 0 AND s_start * side > 0 THEN 'earlier-start' END,
            CASE WHEN side = 0 THEN 'no-evidence' END
        ) AS evidence_text,
        concat_ws(
            ',',
            CASE WHEN s_syn * side < 0 OR (side = 0 AND s_syn <> 0) THEN 'tcp-syn' END,
            CASE WHEN s_synack * side < 0 OR (side = 0 AND s_synack <> 0) THEN 'tcp-synack' END,
            CASE WHEN s_nat * side < 0 OR (side = 0 AND s_nat <> 0) THEN 'nat-return-only' END,
            CASE
                WHEN s_unsolicited * side < 0 OR (side = 0 AND s_unsolicited <> 0)
                    THEN 'nat-unsolicited'
            END,
            CASE WHEN s_reject * side < 0 OR (side = 0 AND s_reject <> 0) THEN 'reject-side' END,
            CASE WHEN s_sg * side < 0 OR (side = 0 AND s_sg <> 0) THEN 'sg-not-admitted' END,
            CASE WHEN s_sg_open * side < 0 OR (side = 0 AND s_sg_open <> 0) THEN 'sg-admits' END,
            CASE WHEN s_lb * side < 0 OR (side = 0 AND s_lb <> 0) THEN 'lb-listener' END,
            CASE WHEN s_oneway * side < 0 OR (side = 0 AND s_oneway <> 0) THEN 'one-way' END,
            CASE WHEN s_port * side < 0 OR (side = 0 AND s_port <> 0) THEN 'service-port' END,
            CASE WHEN s_fanin * side < 0 OR (side = 0 AND s_fanin <> 0) THEN 'fan-in' END,
            CASE WHEN s_start * side < 0 OR (side = 0 AND s_start <> 0) THEN 'earlier-start' END
        ) AS against_text
    FROM decided
)
SELECT * FROM explained
