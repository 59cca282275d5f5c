-- Per interface, the one IPv6 address in every IPv6 record it logged: its own (a record holds
-- the interface's address as source or destination unless the interface forwards packets).
-- conversations.infer_inside takes the VPC's IPv6 blocks from them.
WITH v6 AS (
    SELECT interface_id, srcaddr, dstaddr FROM flows
    WHERE srcaddr LIKE '%:%' AND dstaddr LIKE '%:%' AND interface_id IS NOT NULL
        AND srcaddr <> dstaddr
),
sides AS (
    SELECT interface_id, srcaddr AS address FROM v6
    UNION ALL
    SELECT interface_id, dstaddr AS address FROM v6
),
seen AS (SELECT interface_id, address, count(*) AS n FROM sides GROUP BY interface_id, address),
totals AS (SELECT interface_id, count(*) AS n FROM v6 GROUP BY interface_id)
SELECT s.interface_id, min(s.address) AS address
FROM seen AS s JOIN totals AS t ON s.interface_id = t.interface_id AND s.n = t.n
GROUP BY s.interface_id
HAVING count(*) = 1
