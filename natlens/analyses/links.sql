-- Link each row of outside_rows (a NAT gateway's public leg, or a firewall flow whose source is
-- a NAT gateway address) to the instance behind it: nat.py renames outside_rows, and the link_
-- prefix of these CTEs (nat_, fw_). outside_rows's columns: outside_id, nat_addr, destination,
-- destination_port, protocol, first_seen, last_seen, packets/bytes out and in.
--
--   link_outside    each outside row in its time bucket and the two beside it
--   link_pairs      the instance legs that could be behind it: same destination (or same NAT
--                   address when the instance's destination is unknown), port, protocol, time
--   link_scored     each pair's score: start and end times, packets, bytes, what is known
--   link_margins    per outside row, the best instance's score and the next one's
--   link_links      the decision: the top instance when no other scores as well, and how sure
WITH link_outside AS (
    SELECT o.*, CAST(floor(o.first_seen / $slack) AS BIGINT) + f.d AS bucket
    FROM outside_rows AS o
    CROSS JOIN (SELECT -1 AS d UNION ALL SELECT 0 AS d UNION ALL SELECT 1 AS d) AS f
),
link_pairs AS (
    SELECT
        o.outside_id,
        i.conversation AS instance_conversation,
        i.instance_addr,
        i.instance_port,
        i.instance_id,
        i.instance_interface,
        i.nat_addr AS instance_nat,
        i.destination AS instance_destination,
        i.method,
        i.private_seen,
        i.instance_seen,
        abs(i.first_seen - o.first_seen) AS start_gap,
        CASE WHEN o.first_seen BETWEEN i.first_seen - 2 AND i.last_seen + 2 THEN 1 ELSE 0 END
            AS within,
        abs(i.last_seen - o.last_seen) AS end_gap,
        CASE WHEN o.packets_out IS NULL THEN 0
            WHEN i.packets_out = o.packets_out AND i.packets_in = o.packets_in THEN 2
            ELSE 0 END AS s_packets,
        CASE WHEN o.bytes_out IS NULL THEN 0
            WHEN i.bytes_out = o.bytes_out AND i.bytes_in = o.bytes_in THEN 3
            WHEN i.bytes_out = o.bytes_out THEN 1
            ELSE 0 END AS s_bytes
    FROM link_outside AS o
    JOIN instance_buckets AS i
        ON i.destination = o.destination AND i.destination_port = o.destination_port
        AND i.protocol = o.protocol AND i.bucket = o.bucket
    WHERE (i.nat_addr IS NULL OR i.nat_addr = o.nat_addr)
        AND abs(i.first_seen - o.first_seen) <= $slack
    UNION ALL
    SELECT
        o.outside_id,
        i.conversation AS instance_conversation,
        i.instance_addr,
        i.instance_port,
        i.instance_id,
        i.instance_interface,
        i.nat_addr AS instance_nat,
        i.destination AS instance_destination,
        i.method,
        i.private_seen,
        i.instance_seen,
        abs(i.first_seen - o.first_seen) AS start_gap,
        CASE WHEN o.first_seen BETWEEN i.first_seen - 2 AND i.last_seen + 2 THEN 1 ELSE 0 END
            AS within,
        abs(i.last_seen - o.last_seen) AS end_gap,
        CASE WHEN o.packets_out IS NULL THEN 0
            WHEN i.packets_out = o.packets_out AND i.packets_in = o.packets_in THEN 2
            ELSE 0 END AS s_packets,
        CASE WHEN o.bytes_out IS NULL THEN 0
            WHEN i.bytes_out = o.bytes_out AND i.bytes_in = o.bytes_in THEN 3
            WHEN i.bytes_out = o.bytes_out THEN 1
            ELSE 0 END AS s_bytes
    FROM link_outside AS o
    JOIN instance_buckets AS i
        ON i.nat_addr = o.nat_addr AND i.destination_port = o.destination_port
        AND i.protocol = o.protocol AND i.bucket = o.bucket
    WHERE i.destination IS NULL AND abs(i.first_seen - o.first_seen) <= $slack
),
link_scored AS (
    SELECT
        *,
        s_start + s_end + s_packets + s_bytes + s_destination + s_nat AS score
    FROM (
        SELECT
            *,
            CASE WHEN start_gap = 0 THEN 3 WHEN start_gap <= 2 THEN 2
                WHEN start_gap <= 10 OR within = 1 THEN 1 ELSE 0 END AS s_start,
            CASE WHEN end_gap <= 2 THEN 1 ELSE 0 END AS s_end,
            CASE WHEN instance_destination IS NOT NULL THEN 2 ELSE 0 END AS s_destination,
            CASE WHEN instance_nat IS NOT NULL THEN 1 ELSE 0 END AS s_nat
        FROM link_pairs
    ) AS s
    WHERE start_gap <= 2 OR within = 1 OR s_packets + s_bytes >= 3
),
link_by_instance AS (
    SELECT
        outside_id,
        instance_addr,
        max(score) AS score
    FROM link_scored
    GROUP BY outside_id, instance_addr
),
link_instance_ranks AS (
    SELECT
        *,
        row_number() OVER (PARTITION BY outside_id ORDER BY score DESC, instance_addr) AS r
    FROM link_by_instance
),
link_margins AS (
    SELECT
        outside_id,
        max(CASE WHEN r = 1 THEN score END) AS best,
        max(CASE WHEN r = 2 THEN score END) AS second,
        count(*) AS candidate_count
    FROM link_instance_ranks
    GROUP BY outside_id
),
link_top AS (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY outside_id
            ORDER BY score DESC, instance_addr, instance_port, instance_conversation
        ) AS k
    FROM link_scored
),
link_candidates AS (
    SELECT
        outside_id,
        $slots
    FROM link_top
    WHERE k <= $candidate_slots
    GROUP BY outside_id
),
link_links AS (
    SELECT
        o.*,
        coalesce(m.candidate_count, 0) AS candidate_count,
        m.best AS score,
        CASE WHEN m.second IS NOT NULL AND m.second >= m.best THEN 1 ELSE 0 END AS ambiguous,
        CASE
            WHEN m.best IS NULL THEN 'unknown'
            WHEN m.second IS NOT NULL AND m.second >= m.best THEN 'unknown'
            -- ICMP has no ports: one leg can hold the pings of several instances
            WHEN o.protocol NOT IN (6, 17) THEN 'medium'
            WHEN m.second IS NULL AND t.instance_destination IS NOT NULL
                AND t.instance_nat IS NOT NULL AND t.s_bytes = 3 AND t.s_start >= 2
                THEN 'certain'
            WHEN m.best - coalesce(m.second, 0) >= 4 AND m.best >= 7 THEN 'high'
            WHEN m.best - coalesce(m.second, 0) >= 2 AND m.best >= 5 THEN 'medium'
            ELSE 'low'
        END AS confidence,
        t.instance_addr AS top_addr,
        t.instance_port AS top_port,
        t.instance_id AS top_instance_id,
        t.instance_interface AS top_interface,
        t.instance_conversation AS top_conversation,
        t.method AS top_method,
        t.private_seen AS top_private_seen,
        t.instance_seen AS top_instance_seen,
        c.candidate_1, c.candidate_2, c.candidate_3, c.candidate_4, c.candidate_5
    FROM outside_rows AS o
    LEFT JOIN link_margins AS m ON m.outside_id = o.outside_id
    LEFT JOIN link_top AS t ON t.outside_id = o.outside_id AND t.k = 1
    LEFT JOIN link_candidates AS c ON c.outside_id = o.outside_id
)
SELECT * FROM link_links
