-- Canonical flow records, in input order in a case (source, then line) or by time elsewhere.
SELECT {columns}
FROM flows
ORDER BY {order}
LIMIT {limit}
