-- Network Firewall log lines read column-wise: the statements firewall_columns.py runs.
--
-- `fw_lines(pos, text)` holds the non-blank lines of a block. Nothing here is built from
-- values: the lines and the accepted key lists are tables, the structure is a parameter.

-- statement: setup
-- Run once per connection. The key lists of the objects natlens maps, for a line DuckDB reads
-- as JSON the way Python does (DuckDB also accepts a trailing comma; Python does not).
CREATE OR REPLACE MACRO fw_keys(text) AS CASE
  WHEN json_valid(text) AND NOT regexp_matches(text, ',\s*[}\]]') THEN json_keys(text, [
    '$', '$.event', '$.event.alert', '$.event.netflow', '$.event.tcp', '$.event.tls',
    '$.event.http', '$.event.verdict', '$.event.revocation_check', '$.event.tls_error'
  ])
END;

-- statement: shapes
-- The key lists of the objects natlens maps (the shapes of the lines), on a sample of lines:
-- `fw_sample(text)`. A shape the sample misses is read by the line parser.
SELECT keys, count(*) AS lines
FROM (SELECT fw_keys(text) AS keys FROM fw_sample)
WHERE keys IS NOT NULL
GROUP BY keys
ORDER BY lines DESC, keys;

-- statement: leaves
-- Every leaf, as JSON text, of the lines whose key lists are in `fw_shapes(shape, keys)`.
WITH keyed AS (
  SELECT pos, text, keys
  FROM (SELECT pos, text, fw_keys(text) AS keys FROM fw_lines)
  WHERE keys IS NOT NULL
)
SELECT
  k.pos,
  s.shape,
  list_contains(k.keys[2], 'tls_error') OR list_contains(k.keys[2], 'revocation_check')
    AS tls_keys,
  json_transform(k.text, $structure) AS d
FROM keyed AS k
JOIN fw_shapes AS s ON k.keys IS NOT DISTINCT FROM s.keys
ORDER BY k.pos
