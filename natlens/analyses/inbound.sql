-- Inbound verdicts: for every internet address that sent ACCEPT records into the VPC, why they
-- were there. One row per (address, conversation) first, then one per address.
WITH inbound_parts AS (
    SELECT
        CASE WHEN lo_private = 0 THEN lo_addr ELSE hi_addr END AS address,
        CASE WHEN lo_private = 0 THEN lo_port ELSE hi_port END AS outside_port,
        CASE WHEN lo_private = 0 THEN hi_addr ELSE lo_addr END AS inside_addr,
        CASE WHEN lo_private = 0 THEN hi_port ELSE lo_port END AS inside_port,
        CASE WHEN lo_private = 0 THEN hi_resource ELSE lo_resource END AS inside_resource,
        CASE WHEN lo_private = 0 THEN hi_gateway ELSE lo_gateway END AS inside_gateway,
        CASE WHEN lo_private = 0 THEN hi_origin ELSE lo_origin END AS inside_origin,
        CASE WHEN lo_private = 0 THEN hi_role ELSE lo_role END AS inside_role,
        sg_rule AS inside_sg_rule,
        CASE WHEN lo_private = 0 THEN fwd_packets ELSE rev_packets END AS packets_in,
        CASE WHEN lo_private = 0 THEN rev_packets ELSE fwd_packets END AS packets_out,
        CASE WHEN lo_private = 0 THEN fwd_bytes ELSE rev_bytes END AS bytes_in,
        protocol,
        first_seen,
        last_seen,
        evidence_text,
        CASE
            -- ICMP at a NAT gateway, more in than out: a NAT gateway answers no echo request,
            -- so what it sent were an instance's; the extra packets in were unsolicited
            -- (inbound_causes). Both, whatever the conversation's one answer says.
            WHEN protocol NOT IN (6, 17)
                AND (CASE WHEN lo_private = 0 THEN hi_gateway ELSE lo_gateway END) = 1
                AND (CASE WHEN lo_private = 0 THEN rev_packets ELSE fwd_packets END) > 0
                AND (CASE WHEN lo_private = 0 THEN fwd_packets ELSE rev_packets END)
                    > (CASE WHEN lo_private = 0 THEN rev_packets ELSE fwd_packets END)
                THEN 'response'
            -- Every cause needs at least medium confidence: "nothing to do" (response) needs
            -- as much evidence as "exposed" does, and a guess decides neither.
            WHEN confidence IN ('low', 'unknown') THEN 'undetermined'
            -- the internet side opened it
            WHEN (lo_private = 0 AND lo_is_client = 1) OR (hi_private = 0 AND lo_is_client = 0)
                THEN CASE
                    WHEN (CASE WHEN lo_private = 0 THEN hi_gateway ELSE lo_gateway END) = 1
                        THEN 'unsolicited'
                    ELSE 'exposed'
                END
            ELSE 'response'
        END AS cause
    FROM explained
    WHERE lo_private + hi_private = 1
        -- ACCEPT records from the internet side (or records without an action field)
        AND (
            (lo_private = 0 AND fwd_seen = 1 AND (fwd_accept = 1 OR fwd_reject = 0))
            OR (hi_private = 0 AND rev_seen = 1 AND (rev_accept = 1 OR rev_reject = 0))
        )
),
inbound_causes AS (
    SELECT
        *,
        -- ICMP carries no ports: an echo request the internet sent to a NAT gateway's address
        -- shares its conversation with an instance's own ping of the same host through it.
        -- More packets in than out at the NAT gateway: the extra ones were unsolicited.
        CASE
            WHEN cause = 'response' AND protocol NOT IN (6, 17) AND inside_gateway = 1
                AND packets_in > packets_out THEN 1
            ELSE 0
        END AS extra_unsolicited
    FROM inbound_parts
),
inbound AS (
    SELECT
        address,
        CAST(sum(CASE WHEN cause = 'unsolicited' OR extra_unsolicited = 1 THEN 1 ELSE 0 END)
            AS BIGINT) AS unsolicited,
        CAST(sum(CASE WHEN cause = 'response' THEN 1 ELSE 0 END) AS BIGINT) AS response,
        CAST(sum(CASE WHEN cause = 'exposed' THEN 1 ELSE 0 END) AS BIGINT) AS exposed,
        CAST(sum(CASE WHEN cause = 'undetermined' THEN 1 ELSE 0 END) AS BIGINT) AS undetermined,
        -- undecided conversations with an address that is not a NAT gateway's could be
        -- connections the internet opened
        CAST(sum(CASE WHEN cause = 'undetermined' AND inside_gateway = 0 THEN 1 ELSE 0 END)
            AS BIGINT) AS open_questions,
        CAST(count(*) AS BIGINT) AS conversation_count,
        CAST(sum(packets_in) AS BIGINT) AS packets_in,
        CAST(sum(bytes_in) AS BIGINT) AS bytes_in,
        min(first_seen) AS first_seen,
        max(last_seen) AS last_seen,
        array_sort(
            array_agg(DISTINCT coalesce(inside_resource, inside_addr))
                FILTER (WHERE inside_gateway = 1)
        ) AS gateways,
        array_sort(
            array_agg(DISTINCT coalesce(inside_resource, inside_addr))
                FILTER (WHERE inside_gateway = 0)
        ) AS instances,
        array_sort(
            array_agg(DISTINCT concat(coalesce(inside_resource, inside_addr), ':',
                CAST(inside_port AS VARCHAR)))
                FILTER (WHERE cause = 'exposed')
        ) AS exposed_on,
        array_sort(
            array_agg(DISTINCT inside_port)
                FILTER (WHERE cause = 'unsolicited' OR extra_unsolicited = 1)
        ) AS probed_ports,
        array_sort(
            array_agg(DISTINCT coalesce(inside_resource, inside_addr))
                FILTER (WHERE cause = 'exposed' AND inside_role = 'load-balancer')
        ) AS via,
        array_sort(
            array_agg(DISTINCT inside_sg_rule)
                FILTER (WHERE cause = 'exposed' AND inside_sg_rule IS NOT NULL)
        ) AS exposed_rules,
        array_sort(array_agg(DISTINCT outside_port) FILTER (WHERE cause = 'response'))
            AS service_ports,
        max(CASE WHEN inside_origin = 'inferred' THEN 1 ELSE 0 END) AS inferred,
        max(CASE WHEN inside_origin = 'context' THEN 1 ELSE 0 END) AS from_context,
        $evidence_flags
    FROM inbound_causes
    GROUP BY address
)
SELECT
    address,
    CASE
        WHEN exposed > 0 THEN 'exposed'
        -- "nothing to do" is never said while a conversation that may be an exposure is open
        WHEN open_questions > 0 THEN 'undetermined'
        WHEN unsolicited > 0 AND response > 0 THEN 'mixed'
        WHEN unsolicited > 0 THEN 'unsolicited'
        WHEN response > 0 THEN 'response'
        ELSE 'undetermined'
    END AS verdict,
    conversation_count AS conversations,
    unsolicited,
    response,
    exposed,
    undetermined,
    packets_in,
    bytes_in,
    first_seen,
    last_seen,
    coalesce(gateways, CAST([] AS VARCHAR[])) AS gateways,
    coalesce(instances, CAST([] AS VARCHAR[])) AS instances,
    coalesce(exposed_on, CAST([] AS VARCHAR[])) AS exposed_on,
    coalesce(via, CAST([] AS VARCHAR[])) AS via,
    coalesce(exposed_rules, CAST([] AS VARCHAR[])) AS exposed_rules,
    coalesce(probed_ports, CAST([] AS INTEGER[])) AS probed_ports,
    coalesce(service_ports, CAST([] AS INTEGER[])) AS service_ports,
    -- where natlens learned which addresses are NAT gateways and instances
    CASE WHEN inferred = 1 THEN 'inferred' WHEN from_context = 1 THEN 'context' ELSE 'none' END
        AS roles_from,
    $evidence AS evidence
FROM inbound
WHERE $where
ORDER BY address
