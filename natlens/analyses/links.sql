-- Link each row of outside_rows (a NAT gateway's public leg, or a firewall flow whose source is
-- a NAT gateway address) to the instance behind it: nat.py renames outside_rows, and the link_
-- prefix of these CTEs (nat_, fw_). outside_rows's columns: outside_id, nat_addr, destination,
-- destination_port, protocol, first_seen, last_seen, packets/bytes out and in.
--
--   link_matches    the instance legs that could be behind it: same destination (or same NAT
--                   address when the leg names no destination), port and protocol, and a
--                   start within 2 s, open at its start, or the same bytes out (within $slack s)
--   link_pairs      each such pair's measures
--   link_scored     each pair's score: start and end times, packets, bytes, what is known
--   link_margins    per outside row, the best instance's score and the next one's
--   link_links      the decision: the top instance when no other scores as well, and how sure
--
-- Each join compares an outside row with a bounded number of legs per bucket: the first $cap to
-- start within 2 s or with the same bytes out, and no leg only open at its start when more than
-- $open_cap were; so the pairs per row stay bounded however dense the traffic to one destination
-- grows. A row that meets a fuller bucket (link_crowded) was not compared with every leg that
-- could be behind it: its margin is taken over the best score a leg left out could have, and it
-- is never certain.
WITH link_legs AS (
    -- the instance legs on their keys, ranked in their buckets (nat.sql, instance_buckets)
    SELECT * FROM instance_buckets
),
link_shifts AS (
    SELECT -1 AS d UNION ALL SELECT 0 AS d UNION ALL SELECT 1 AS d
),
link_outside AS (
    -- each outside row on both keys, in its time buckets
    SELECT
        o.*,
        k.by_destination,
        CASE WHEN k.by_destination = 1 THEN o.destination ELSE o.nat_addr END AS k_addr,
        CAST(floor(o.first_seen / 4) AS BIGINT) AS open_bucket
    FROM outside_rows AS o
    CROSS JOIN (SELECT 1 AS by_destination UNION ALL SELECT 0 AS by_destination) AS k
),
link_beside AS (
    -- ... and beside them: the 2-second and the $slack-second buckets either side
    SELECT
        o.*,
        CAST(floor(o.first_seen / 2) AS BIGINT) + s.d AS near_bucket,
        CAST(floor(o.first_seen / $slack) AS BIGINT) + s.d AS bucket
    FROM link_outside AS o
    CROSS JOIN link_shifts AS s
),
link_open AS (
    -- legs that started more than 2 s before an outside row and were still open when it
    -- started (the within test below), found by the 4-second buckets their span covers (at
    -- most $slack seconds of it: no pair is further apart)
    SELECT l.*, CAST(floor((l.first_seen - 2) / 4) AS BIGINT) + n.k AS open_bucket
    FROM link_legs AS l
    JOIN (
        SELECT a.d + 1 + 3 * (b.d + 1) + 9 * (c.d + 1) AS k
        FROM link_shifts AS a CROSS JOIN link_shifts AS b CROSS JOIN link_shifts AS c
    ) AS n
        ON n.k <= CAST(floor(least(l.last_seen + 2, l.first_seen + $slack) / 4) AS BIGINT)
            - CAST(floor((l.first_seen - 2) / 4) AS BIGINT)
),
link_open_crowds AS (
    -- the 4-second buckets where more than $open_cap legs were open: their rows skip the open
    -- join (a leg only open at the start scores at most 7 without the same bytes)
    SELECT by_destination, k_addr, destination_port, protocol, open_bucket
    FROM link_open
    GROUP BY by_destination, k_addr, destination_port, protocol, open_bucket
    HAVING count(*) > $open_cap
),
link_open_kept AS (
    -- the legs of the other buckets: a row meets only its own bucket's
    SELECT i.*
    FROM link_open AS i
    LEFT JOIN link_open_crowds AS x
        ON x.by_destination = i.by_destination AND x.k_addr = i.k_addr
        AND x.destination_port = i.destination_port AND x.protocol = i.protocol
        AND x.open_bucket = i.open_bucket
    WHERE x.open_bucket IS NULL
),
link_crowding AS (
    -- The outside rows that met a bucket past its cap, and the most a leg left out
    -- could score: one that started within 2 s but has other bytes 9, one open at the start
    -- with other bytes 7 (the bytes join finds those with the same bytes), any leg when the
    -- same bytes out crowd a bucket 12.
    SELECT o.outside_id, 9 AS hidden, 0 AS open_crowded
    FROM link_beside AS o
    JOIN link_legs AS i
        ON i.by_destination = o.by_destination AND i.k_addr = o.k_addr
        AND i.destination_port = o.destination_port AND i.protocol = o.protocol
        AND i.near_bucket = o.near_bucket
    WHERE i.near_crowd > $cap AND i.near_rank = 1
    UNION ALL
    SELECT o.outside_id, 12 AS hidden, 0 AS open_crowded
    FROM link_beside AS o
    JOIN link_legs AS i
        ON i.by_destination = o.by_destination AND i.k_addr = o.k_addr
        AND i.destination_port = o.destination_port AND i.protocol = o.protocol
        AND i.bytes_out = o.bytes_out AND i.bucket = o.bucket
    WHERE i.bytes_crowd > $cap AND i.bytes_rank = 1
    UNION ALL
    SELECT o.outside_id, 7 AS hidden, 1 AS open_crowded
    FROM link_outside AS o
    JOIN link_open_crowds AS i
        ON i.by_destination = o.by_destination AND i.k_addr = o.k_addr
        AND i.destination_port = o.destination_port AND i.protocol = o.protocol
        AND i.open_bucket = o.open_bucket
),
link_crowded AS (
    SELECT outside_id, max(hidden) AS hidden, max(open_crowded) AS open_crowded
    FROM link_crowding
    GROUP BY outside_id
),
link_matches AS (
    -- The legs that can be behind an outside row, found by equality (so that the pairs grow
    -- with the candidates, not with the traffic to a destination): legs that started within
    -- 2 s of it; legs open when it started; legs with the same bytes out within $slack s.
    -- The three are apart (start gap, within), so no pair is found twice.
    SELECT
        o.outside_id, o.first_seen AS o_first_seen, o.last_seen AS o_last_seen,
        o.packets_out AS o_packets_out, o.packets_in AS o_packets_in, o.bytes_out AS o_bytes_out,
        o.bytes_in AS o_bytes_in,
        i.conversation, i.instance_addr, i.instance_port, i.instance_id,
        i.instance_interface, i.nat_addr, i.destination, i.method, i.private_seen, i.instance_seen,
        i.first_seen, i.last_seen, i.packets_out, i.packets_in, i.bytes_out, i.bytes_in
    FROM link_beside AS o
    JOIN link_legs AS i
        ON i.by_destination = o.by_destination AND i.k_addr = o.k_addr
        AND i.destination_port = o.destination_port AND i.protocol = o.protocol
        AND i.near_bucket = o.near_bucket AND i.near_rank <= $cap
    WHERE abs(i.first_seen - o.first_seen) <= 2
        AND (o.by_destination = 0 OR i.nat_addr IS NULL OR i.nat_addr = o.nat_addr)
    UNION ALL
    SELECT
        o.outside_id, o.first_seen AS o_first_seen, o.last_seen AS o_last_seen,
        o.packets_out AS o_packets_out, o.packets_in AS o_packets_in, o.bytes_out AS o_bytes_out,
        o.bytes_in AS o_bytes_in,
        i.conversation, i.instance_addr, i.instance_port, i.instance_id,
        i.instance_interface, i.nat_addr, i.destination, i.method, i.private_seen, i.instance_seen,
        i.first_seen, i.last_seen, i.packets_out, i.packets_in, i.bytes_out, i.bytes_in
    FROM link_outside AS o
    JOIN link_open_kept AS i
        ON i.by_destination = o.by_destination AND i.k_addr = o.k_addr
        AND i.destination_port = o.destination_port AND i.protocol = o.protocol
        AND i.open_bucket = o.open_bucket
    WHERE abs(i.first_seen - o.first_seen) > 2 AND abs(i.first_seen - o.first_seen) <= $slack
        AND o.first_seen BETWEEN i.first_seen - 2 AND i.last_seen + 2
        AND (o.by_destination = 0 OR i.nat_addr IS NULL OR i.nat_addr = o.nat_addr)
    UNION ALL
    SELECT
        o.outside_id, o.first_seen AS o_first_seen, o.last_seen AS o_last_seen,
        o.packets_out AS o_packets_out, o.packets_in AS o_packets_in, o.bytes_out AS o_bytes_out,
        o.bytes_in AS o_bytes_in,
        i.conversation, i.instance_addr, i.instance_port, i.instance_id,
        i.instance_interface, i.nat_addr, i.destination, i.method, i.private_seen, i.instance_seen,
        i.first_seen, i.last_seen, i.packets_out, i.packets_in, i.bytes_out, i.bytes_in
    FROM link_beside AS o
    JOIN link_legs AS i
        ON i.by_destination = o.by_destination AND i.k_addr = o.k_addr
        AND i.destination_port = o.destination_port AND i.protocol = o.protocol
        AND i.bytes_out = o.bytes_out AND i.bucket = o.bucket AND i.bytes_rank <= $cap
    LEFT JOIN link_crowded AS c ON c.outside_id = o.outside_id AND c.open_crowded = 1
    WHERE abs(i.first_seen - o.first_seen) <= $slack
        -- the legs the joins above left out: past the cap within 2 s, or open at the start
        -- of a row whose open legs crowd a bucket
        AND NOT (abs(i.first_seen - o.first_seen) <= 2 AND i.near_rank <= $cap)
        AND (abs(i.first_seen - o.first_seen) <= 2 OR c.outside_id IS NOT NULL
            OR NOT coalesce(o.first_seen BETWEEN i.first_seen - 2 AND i.last_seen + 2, false))
        AND (o.by_destination = 0 OR i.nat_addr IS NULL OR i.nat_addr = o.nat_addr)
),
link_pairs AS (
    SELECT
        m.outside_id,
        m.conversation AS instance_conversation,
        m.instance_addr,
        m.instance_port,
        m.instance_id,
        m.instance_interface,
        m.nat_addr AS instance_nat,
        m.destination AS instance_destination,
        m.method,
        m.private_seen,
        m.instance_seen,
        abs(m.first_seen - m.o_first_seen) AS start_gap,
        CASE WHEN m.o_first_seen BETWEEN m.first_seen - 2 AND m.last_seen + 2 THEN 1 ELSE 0 END
            AS within,
        abs(m.last_seen - m.o_last_seen) AS end_gap,
        CASE WHEN m.o_packets_out IS NULL THEN 0
            WHEN m.packets_out = m.o_packets_out AND m.packets_in = m.o_packets_in THEN 2
            ELSE 0 END AS s_packets,
        CASE WHEN m.o_bytes_out IS NULL THEN 0
            WHEN m.bytes_out = m.o_bytes_out AND m.bytes_in = m.o_bytes_in THEN 3
            WHEN m.bytes_out = m.o_bytes_out THEN 1
            ELSE 0 END AS s_bytes
    FROM link_matches AS m
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
        -- a tie, or a leg left out that could score as well: never a guess
        CASE WHEN m.second IS NOT NULL AND m.second >= m.best THEN 1
            WHEN cr.hidden >= m.best THEN 1 ELSE 0 END AS ambiguous,
        CASE
            WHEN m.best IS NULL THEN 'unknown'
            WHEN m.second IS NOT NULL AND m.second >= m.best THEN 'unknown'
            -- more legs could be behind it than were compared: the margin is over the best
            -- score one of them could have
            WHEN cr.hidden >= m.best THEN 'unknown'
            WHEN cr.outside_id IS NOT NULL THEN CASE
                WHEN o.protocol IN (6, 17)
                    AND m.best - greatest(coalesce(m.second, 0), cr.hidden) >= 4
                    AND m.best >= 7 THEN 'high'
                WHEN m.best - greatest(coalesce(m.second, 0), cr.hidden) >= 2 AND m.best >= 5
                    THEN 'medium'
                ELSE 'low'
            END
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
    LEFT JOIN link_crowded AS cr ON cr.outside_id = o.outside_id
)
SELECT * FROM link_links
