-- Network Firewall log lines read column-wise: the two statements firewall_columns.py runs.
--
-- `fw_lines(pos, text)` holds the non-blank lines of a block. Nothing here is built from
-- values: the lines and the accepted key lists are tables, the structure is a parameter.

-- statement: shapes
-- The key lists of the objects natlens maps (the shapes of the lines), on a sample of lines:
-- `fw_sample(text)`. A shape the sample misses is read by the line parser.
SELECT keys, count(*) AS lines
FROM (
  SELECT
    json_keys(text, [
      '$', '$.event', '$.event.alert', '$.event.netflow', '$.event.tcp', '$.event.tls',
      '$.event.http', '$.event.verdict', '$.event.revocation_check', '$.event.tls_error'
    ]) AS keys
  FROM fw_sample
  WHERE json_valid(text) AND NOT regexp_matches(text, ',\s*[}\]]')
)
GROUP BY keys
ORDER BY lines DESC, keys;

-- statement: leaves
-- Every leaf, as JSON text, of the lines DuckDB reads as JSON the way Python does (DuckDB also
-- accepts a trailing comma; Python does not) and whose key lists are in `fw_shapes(shape, keys)`.
WITH keyed AS (
  SELECT
    pos,
    text,
    json_keys(text, [
      '$', '$.event', '$.event.alert', '$.event.netflow', '$.event.tcp', '$.event.tls',
      '$.event.http', '$.event.verdict', '$.event.revocation_check', '$.event.tls_error'
    ]) AS keys
  FROM fw_lines
  WHERE json_valid(text) AND NOT regexp_matches(text, ',\s*[}\]]')
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
