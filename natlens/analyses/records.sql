-- Canonical flow records in input order: by source, then line (or row, or event number).
SELECT {columns}
FROM flows
ORDER BY source, line
LIMIT {limit}
