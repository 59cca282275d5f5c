-- Alert attribution: the instance behind each Network Firewall event whose source is a NAT
-- gateway address.
--
--   fw_events   alert, flow (netflow) and TLS events; events of one flow share flow_id
--   fw_openers  per flow, the event that says who opened it: Suricata writes the to-server
--               netflow event first (its source opened the flow); an alert's direction says
--               which side its source is
--   fw_flows    one row per flow, its opener's addresses, its time and, from the netflow
--               events, packets and bytes each way
--   fw_public   the NAT gateway's public leg in the flow logs for each NAT-sourced flow: same
--               addresses, translated port and destination, at the same time; fw_public_legs
--               those legs, the only ones linked when the case keeps no NAT links yet
--   fw_own      NAT-sourced flows scored on their own (no public leg logged, or ICMP)
WITH fw_events AS (
    SELECT
        *,
        CASE
            WHEN flow_id IS NOT NULL
                THEN concat_ws('|', firewall_name, availability_zone, CAST(flow_id AS VARCHAR))
            ELSE concat_ws('|', source, CAST(line AS VARCHAR))
        END AS fw_flow
    FROM firewall_events
    WHERE log_type IN ('alert', 'flow', 'tls')
        AND $log_types
),
fw_ordered AS (
    SELECT
        fw_flow,
        CASE WHEN direction = 'to_client' THEN dest_ip ELSE src_ip END AS opener_addr,
        CASE WHEN direction = 'to_client' THEN dest_port ELSE src_port END AS opener_port,
        CASE WHEN direction = 'to_client' THEN src_ip ELSE dest_ip END AS peer_addr,
        CASE WHEN direction = 'to_client' THEN src_port ELSE dest_port END AS peer_port,
        -- TLS logs name no protocol: TLS inspection is of TCP
        coalesce(
            CASE upper(proto) WHEN 'TCP' THEN 6 WHEN 'UDP' THEN 17 WHEN 'ICMP' THEN 1
                WHEN 'IPV6-ICMP' THEN 58 END,
            CASE WHEN log_type = 'tls' THEN 6 END
        ) AS protocol,
        row_number() OVER (
            PARTITION BY fw_flow
            ORDER BY
                CASE WHEN event_type = 'netflow' THEN 0 ELSE 1 END,
                CASE WHEN direction = 'to_client' THEN 1 ELSE 0 END,
                source,
                line
        ) AS k
    FROM fw_events
),
fw_openers AS (
    -- whether the opener's address is private: once per flow, not once per use per event
    SELECT *, $private AS opener_private FROM fw_ordered WHERE k = 1
),
instance_hosts AS (
    -- what the context and the logs say about a private address that is a flow's source
    SELECT
        a.address,
        coalesce(max(c.client_resource), max(x.instance_id)) AS instance_id,
        coalesce(max(c.client_interface), max(w.interface_id), max(x.interface_id))
            AS interface_id
    FROM (SELECT DISTINCT opener_addr AS address FROM fw_openers) AS a
    LEFT JOIN named AS c ON c.client_addr = a.address
    LEFT JOIN owners AS w ON w.address = a.address
    LEFT JOIN context_instances AS x ON x.address = a.address
    GROUP BY a.address
),
fw_flows AS (
    SELECT
        o.fw_flow AS outside_id,
        o.opener_addr AS nat_addr,
        coalesce(o.opener_port, 0) AS nat_port,
        o.peer_addr AS destination,
        coalesce(o.peer_port, 0) AS destination_port,
        o.protocol,
        coalesce(min(e.flow_start), min(e.event_time)) AS first_seen,
        coalesce(max(e.flow_end), max(e.event_time)) AS last_seen,
        sum(CASE WHEN e.event_type = 'netflow' AND e.src_ip = o.opener_addr
            THEN e.netflow_pkts END) AS packets_out,
        sum(CASE WHEN e.event_type = 'netflow' AND e.src_ip = o.opener_addr
            THEN e.netflow_bytes END) AS bytes_out,
        CASE WHEN max(CASE WHEN e.event_type = 'netflow' THEN 1 ELSE 0 END) = 1
            THEN coalesce(sum(CASE WHEN e.event_type = 'netflow' AND e.src_ip <> o.opener_addr
                THEN e.netflow_pkts END), 0) END AS packets_in,
        CASE WHEN max(CASE WHEN e.event_type = 'netflow' THEN 1 ELSE 0 END) = 1
            THEN coalesce(sum(CASE WHEN e.event_type = 'netflow' AND e.src_ip <> o.opener_addr
                THEN e.netflow_bytes END), 0) END AS bytes_in
    FROM fw_openers AS o
    JOIN fw_events AS e ON e.fw_flow = o.fw_flow
    GROUP BY o.fw_flow, o.opener_addr, o.opener_port, o.peer_addr, o.peer_port, o.protocol
),
fw_nat_flows AS (
    SELECT f.*
    FROM fw_flows AS f
    JOIN nat_addresses AS n ON n.address = f.nat_addr
),
fw_public_ranked AS (
    SELECT
        f.outside_id AS fw_flow,
        p.outside_id AS public_leg,
        row_number() OVER (
            PARTITION BY f.outside_id
            ORDER BY abs(p.first_seen - f.first_seen), p.outside_id
        ) AS k
    FROM fw_nat_flows AS f
    JOIN public_legs AS p
        ON p.nat_addr = f.nat_addr AND p.nat_port = f.nat_port
        AND p.destination = f.destination AND p.destination_port = f.destination_port
        AND p.protocol = f.protocol
    WHERE f.first_seen BETWEEN p.first_seen - $slack AND p.last_seen + $slack
),
fw_public AS (
    SELECT fw_flow, public_leg FROM fw_public_ranked WHERE k = 1
),
fw_public_legs AS (
    -- the public legs to link (unless the NAT links of every public leg are kept already)
    SELECT p.*
    FROM public_legs AS p
    WHERE p.outside_id IN (SELECT public_leg FROM fw_public)
),
fw_own AS (
    -- flows scored on their own: those whose public leg was not logged, and ICMP flows with
    -- their netflow volumes (ICMP has no ports: one public leg holds every ping to an address)
    SELECT f.*
    FROM fw_nat_flows AS f
    LEFT JOIN fw_public AS p ON p.fw_flow = f.outside_id
    WHERE p.fw_flow IS NULL OR (f.protocol NOT IN (6, 17) AND f.packets_out IS NOT NULL)
)
-- nat.py puts in front context_instances (the instances' addresses the context names, even
-- without flow logs) and, after these, links.sql's CTEs for fw_own (fw_outside ... fw_links).
SELECT
    e.event_time,
    e.log_type,
    e.event_type,
    e.firewall_name,
    e.availability_zone,
    e.flow_id,
    e.src_ip,
    e.src_port,
    e.dest_ip,
    e.dest_port,
    e.proto,
    e.alert_action,
    e.signature_id,
    e.signature,
    coalesce(e.sni, e.http_hostname) AS hostname,
    CASE
        WHEN n.address IS NOT NULL THEN 'nat-gateway'
        WHEN o.opener_private = 1 THEN 'private'
        ELSE 'internet'
    END AS source_kind,
    -- A low answer is shown as a candidate, never as the instance.
    CASE
        WHEN n.address IS NOT NULL
            AND coalesce(fl.confidence, pl.confidence, 'unknown') NOT IN ('low', 'unknown')
            THEN coalesce(
                CASE WHEN fl.ambiguous = 0 THEN fl.top_addr END,
                CASE WHEN pl.ambiguous = 0 THEN pl.top_addr END
            )
        WHEN n.address IS NULL AND o.opener_private = 1
            AND (h.instance_id IS NOT NULL OR h.interface_id IS NOT NULL) THEN o.opener_addr
    END AS instance_address,
    CASE
        WHEN n.address IS NOT NULL
            AND coalesce(fl.confidence, pl.confidence, 'unknown') NOT IN ('low', 'unknown')
            THEN coalesce(
                CASE WHEN fl.ambiguous = 0 THEN fl.top_port END,
                CASE WHEN pl.ambiguous = 0 THEN pl.top_port END
            )
        WHEN n.address IS NULL AND o.opener_private = 1
            AND (h.instance_id IS NOT NULL OR h.interface_id IS NOT NULL) THEN o.opener_port
    END AS instance_port,
    CASE
        WHEN n.address IS NOT NULL
            AND coalesce(fl.confidence, pl.confidence, 'unknown') NOT IN ('low', 'unknown')
            THEN coalesce(
                CASE WHEN fl.ambiguous = 0 THEN fl.top_instance_id END,
                CASE WHEN pl.ambiguous = 0 THEN pl.top_instance_id END
            )
        WHEN n.address IS NULL AND o.opener_private = 1 THEN h.instance_id
    END AS instance_id,
    CASE
        WHEN n.address IS NOT NULL
            AND coalesce(fl.confidence, pl.confidence, 'unknown') NOT IN ('low', 'unknown')
            THEN coalesce(
                CASE WHEN fl.ambiguous = 0 THEN fl.top_interface END,
                CASE WHEN pl.ambiguous = 0 THEN pl.top_interface END
            )
        WHEN n.address IS NULL AND o.opener_private = 1 THEN h.interface_id
    END AS instance_interface,
    CASE WHEN n.address IS NOT NULL THEN n.nat_gateway END AS nat_gateway,
    CASE
        WHEN n.address IS NOT NULL THEN coalesce(fl.top_method, pl.top_method)
        WHEN o.opener_private = 1 THEN 'source-address'
    END AS method,
    CASE
        WHEN n.address IS NOT NULL THEN coalesce(fl.confidence, pl.confidence, 'unknown')
        -- the context names the instance; the logs show an interface of its own (and no NAT
        -- gateway was seen at it); or nothing says it is not a NAT gateway's address
        WHEN o.opener_private = 1 AND h.instance_id IS NOT NULL THEN 'certain'
        WHEN o.opener_private = 1 AND h.interface_id IS NOT NULL THEN 'medium'
        WHEN o.opener_private = 1 THEN 'low'
    END AS confidence,
    CASE WHEN n.address IS NOT NULL THEN coalesce(fl.candidate_count, pl.candidate_count, 0)
        WHEN o.opener_private = 1 THEN 1 ELSE 0 END AS candidate_count,
    CASE WHEN coalesce(fl.ambiguous, pl.ambiguous, 0) = 1 THEN true ELSE false END AS ambiguous,
    CASE
        WHEN fl.outside_id IS NOT NULL
            THEN CASE WHEN fl.candidate_1 IS NULL THEN CAST([] AS VARCHAR[])
            ELSE list_filter(
                [fl.candidate_1, fl.candidate_2, fl.candidate_3, fl.candidate_4,
                    fl.candidate_5],
                x -> x IS NOT NULL
            ) END
        WHEN pl.outside_id IS NOT NULL
            THEN CASE WHEN pl.candidate_1 IS NULL THEN CAST([] AS VARCHAR[])
            ELSE list_filter(
                [pl.candidate_1, pl.candidate_2, pl.candidate_3, pl.candidate_4,
                    pl.candidate_5],
                x -> x IS NOT NULL
            ) END
        WHEN n.address IS NULL AND o.opener_private = 1
            AND NOT (h.instance_id IS NOT NULL OR h.interface_id IS NOT NULL)
            THEN [concat(o.opener_addr, ':', CAST(o.opener_port AS VARCHAR))]
        ELSE CAST([] AS VARCHAR[])
    END AS candidates,
    CASE WHEN pl.outside_id IS NOT NULL THEN true ELSE false END AS public_leg_logged,
    e.source,
    e.line
FROM fw_events AS e
JOIN fw_openers AS o ON o.fw_flow = e.fw_flow
LEFT JOIN nat_addresses AS n ON n.address = o.opener_addr
LEFT JOIN fw_public AS fp ON fp.fw_flow = e.fw_flow
LEFT JOIN nat_links AS pl ON pl.outside_id = fp.public_leg
LEFT JOIN fw_links AS fl ON fl.outside_id = e.fw_flow
LEFT JOIN instance_hosts AS h ON h.address = o.opener_addr
ORDER BY event_time, source, line
