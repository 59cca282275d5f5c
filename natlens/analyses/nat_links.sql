-- NAT links: one row per connection a NAT gateway made to the internet (nat_links), with the
-- instance behind it when one candidate stands out; never a guess when two score the same.
SELECT
    l.nat_gateway,
    l.nat_addr AS nat_address,
    l.nat_interface,
    l.nat_port,
    l.destination,
    l.destination_port,
    l.protocol,
    l.first_seen,
    l.last_seen,
    l.packets_out,
    l.bytes_out,
    l.packets_in,
    l.bytes_in,
    -- a top candidate's fields only when no other scores as well: never a guess
    CASE WHEN l.ambiguous = 0 THEN l.top_addr END AS instance_address,
    CASE WHEN l.ambiguous = 0 THEN l.top_port END AS instance_port,
    CASE WHEN l.ambiguous = 0 THEN l.top_instance_id END AS instance_id,
    CASE WHEN l.ambiguous = 0 THEN l.top_interface END AS instance_interface,
    CASE WHEN l.top_method IS NOT NULL THEN l.top_method END AS method,
    l.confidence,
    l.score,
    l.candidate_count,
    CASE WHEN l.ambiguous = 1 THEN true ELSE false END AS ambiguous,
    CASE WHEN l.candidate_1 IS NULL THEN CAST([] AS VARCHAR[])
        ELSE list_filter(
            [l.candidate_1, l.candidate_2, l.candidate_3, l.candidate_4, l.candidate_5],
            x -> x IS NOT NULL
        ) END AS candidates,
    -- the legs of the link the flow logs show: the public one always, then the others
    CASE WHEN l.top_addr IS NULL THEN CAST([] AS VARCHAR[])
        ELSE list_filter([
            'public',
            CASE WHEN l.top_private_seen = 1 THEN 'private' END,
            CASE WHEN l.top_instance_seen = 1 THEN 'instance' END
        ], x -> x IS NOT NULL) END AS legs,
    l.outside_id AS public_conversation,
    CASE WHEN l.ambiguous = 0 THEN l.top_conversation END AS instance_conversation
FROM nat_links AS l
ORDER BY first_seen, nat_address, nat_port, destination, destination_port
