-- The top talkers per NAT gateway: the instances behind it (what the private legs say), and
-- where it sent their traffic (the public legs), ranked by bytes or by connections, the
-- first few of each ($order, $top).
WITH talkers AS (
    -- the instances behind each NAT gateway (what the private legs say), and where the NAT
    -- gateway sent their traffic (the public legs): AWS's "top contributors" questions
    SELECT nat_addr, 'instance' AS side, instance_addr AS address,
        max(instance_id) AS resource, count(*) AS connections,
        CAST(sum(bytes_out) AS BIGINT) AS bytes_out, CAST(sum(bytes_in) AS BIGINT) AS bytes_in
    FROM instance_legs
    WHERE nat_addr IS NOT NULL
    GROUP BY nat_addr, instance_addr
    UNION ALL
    SELECT nat_addr, 'destination', destination, CAST(NULL AS VARCHAR), count(*),
        CAST(sum(bytes_out) AS BIGINT), CAST(sum(bytes_in) AS BIGINT)
    FROM public_legs
    GROUP BY nat_addr, destination
),
talkers_ranked AS (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY nat_addr, side ORDER BY $order DESC, address
        ) AS talker_rank
    FROM talkers
)
SELECT
    n.nat_gateway,
    r.nat_addr AS nat_address,
    r.side,
    r.talker_rank AS rank,
    r.address,
    r.resource AS instance_id,
    r.connections,
    r.bytes_out,
    r.bytes_in,
    r.bytes_out + r.bytes_in AS bytes
FROM talkers_ranked AS r
LEFT JOIN nat_addresses AS n ON n.address = r.nat_addr
WHERE r.talker_rank <= $top
ORDER BY nat_address, CASE WHEN r.side = 'instance' THEN 0 ELSE 1 END, rank
