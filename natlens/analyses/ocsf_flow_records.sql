-- Flow records as OCSF Network Activity (class 4001), one event per record, read by a local
-- DuckDB from three inputs: `records` (the case's flow records), `initiators` (per record,
-- whether its sender opened the connection: record_initiators_sql) and `convs` (each
-- conversation's roles and confidence). docs/export.md gives the mapping.
--
-- OCSF's src_endpoint is the connection's initiator. When natlens decided who opened the
-- connection (a confidence other than unknown) and it was the record's receiver, the record's
-- two ends are swapped and its bytes are bytes_in (dst to src); otherwise they stay as logged.
WITH joined AS (
    SELECT
        r.*,
        i.conversation,
        c.confidence AS initiator_confidence,
        coalesce(c.confidence, 'unknown') <> 'unknown' AS decided,
        coalesce(c.confidence, 'unknown') <> 'unknown' AND i.initiator = 'dst' AS swapped,
        c.client_role,
        c.server_role,
        i.evidence
    FROM records AS r
    LEFT JOIN initiators AS i ON r.source = i.source AND r.line = i.line
    LEFT JOIN convs AS c ON i.conversation = c.conversation
    WHERE coalesce(r.log_status, 'OK') = 'OK' AND coalesce(r.start, r."end") IS NOT NULL
),
ends AS (
    SELECT
        *,
        {
            'ip': coalesce(pkt_srcaddr, srcaddr),
            'port': srcport,
            'intermediate_ips': CASE WHEN pkt_srcaddr IS NOT NULL AND pkt_srcaddr <> srcaddr
                THEN [srcaddr] END,
            'svc_name': pkt_src_aws_service,
            'interface_uid': CASE WHEN flow_direction = 'egress' THEN interface_id END,
            'instance_uid': CASE WHEN flow_direction = 'egress' THEN instance_id END,
            'subnet_uid': CASE WHEN flow_direction = 'egress' THEN subnet_id END,
            'vpc_uid': CASE WHEN flow_direction = 'egress' THEN vpc_id END
        } AS sender,
        {
            'ip': coalesce(pkt_dstaddr, dstaddr),
            'port': dstport,
            'intermediate_ips': CASE WHEN pkt_dstaddr IS NOT NULL AND pkt_dstaddr <> dstaddr
                THEN [dstaddr] END,
            'svc_name': pkt_dst_aws_service,
            'interface_uid': CASE WHEN flow_direction = 'ingress' THEN interface_id END,
            'instance_uid': CASE WHEN flow_direction = 'ingress' THEN instance_id END,
            'subnet_uid': CASE WHEN flow_direction = 'ingress' THEN subnet_id END,
            'vpc_uid': CASE WHEN flow_direction = 'ingress' THEN vpc_id END
        } AS receiver,
        CASE WHEN action = 'REJECT' THEN 5 WHEN action = 'ACCEPT' THEN 6 ELSE 0 END AS activity,
        CASE
            WHEN NOT decided THEN 0
            WHEN client_role = 'internet' AND server_role <> 'internet' THEN 1
            WHEN client_role <> 'internet' AND server_role = 'internet' THEN 2
            WHEN client_role <> 'internet' AND server_role <> 'internet' THEN 3
            ELSE 99
        END AS direction
    FROM joined
)
SELECT
    activity AS activity_id,
    CASE activity WHEN 5 THEN 'Refuse' WHEN 6 THEN 'Traffic' ELSE 'Unknown' END AS activity_name,
    4 AS category_uid,
    'Network Activity' AS category_name,
    4001 AS class_uid,
    'Network Activity' AS class_name,
    400100 + activity AS type_uid,
    'Network Activity: '
        || CASE activity WHEN 5 THEN 'Refuse' WHEN 6 THEN 'Traffic' ELSE 'Unknown' END AS type_name,
    1 AS severity_id,
    'Informational' AS severity,
    coalesce(start, "end") * 1000 AS "time",
    start * 1000 AS start_time,
    "end" * 1000 AS end_time,
    log_status AS status_code,
    CASE action WHEN 'ACCEPT' THEN 1 WHEN 'REJECT' THEN 2 ELSE 0 END AS disposition_id,
    CASE action WHEN 'ACCEPT' THEN 'Allowed' WHEN 'REJECT' THEN 'Blocked' ELSE 'Unknown' END
        AS disposition,
    {
        'provider': 'AWS',
        'region': region,
        'zone': az_id,
        'account': CASE WHEN account_id IS NOT NULL
            THEN {'uid': account_id, 'type_id': 10, 'type': 'AWS Account'} END
    } AS cloud,
    CASE WHEN swapped THEN receiver ELSE sender END AS src_endpoint,
    CASE WHEN swapped THEN sender ELSE receiver END AS dst_endpoint,
    {
        'uid': conversation,
        'protocol_num': protocol,
        'protocol_ver_id': CASE WHEN contains(srcaddr, ':') THEN 6 ELSE 4 END,
        'protocol_ver': CASE WHEN contains(srcaddr, ':') THEN 'Internet Protocol version 6 (IPv6)'
            ELSE 'Internet Protocol version 4 (IPv4)' END,
        'tcp_flags': tcp_flags,
        'direction_id': direction,
        'direction': CASE direction WHEN 1 THEN 'Inbound' WHEN 2 THEN 'Outbound'
            WHEN 3 THEN 'Lateral' WHEN 99 THEN 'Other' ELSE 'Unknown' END
    } AS connection_info,
    {
        'bytes': bytes,
        'packets': packets,
        'bytes_out': CASE WHEN NOT swapped THEN bytes END,
        'packets_out': CASE WHEN NOT swapped THEN packets END,
        'bytes_in': CASE WHEN swapped THEN bytes END,
        'packets_in': CASE WHEN swapped THEN packets END
    } AS traffic,
    {
        'version': $ocsf_version,
        'uid': source || ':' || CAST(line AS VARCHAR),
        'product': {
            'name': 'natlens', 'vendor_name': 'natlens', 'version': $natlens_version,
            'feature': {'name': 'flow records'}
        },
        'log_provider': 'Amazon VPC Flow Logs',
        'log_name': source,
        'log_version': CAST(version AS VARCHAR),
        'profiles': ['cloud', 'security_control']
    } AS metadata,
    map_from_entries(list_filter([
        {'key': 'natlens.initiator', 'value': CASE WHEN NOT decided THEN 'undetermined'
            WHEN swapped THEN 'dst' ELSE 'src' END},
        {'key': 'natlens.initiator_confidence', 'value': coalesce(initiator_confidence, 'unknown')},
        {'key': 'natlens.evidence', 'value': evidence},
        {'key': 'natlens.client_role', 'value': client_role},
        {'key': 'natlens.server_role', 'value': server_role},
        {'key': 'flow_direction', 'value': flow_direction},
        {'key': 'interface_id', 'value': interface_id},
        {'key': 'traffic_path', 'value': CAST(traffic_path AS VARCHAR)},
        {'key': 'type', 'value': type}
    ], x -> x.value IS NOT NULL)) AS unmapped,
    CASE WHEN regexp_full_match(coalesce(region, $region), '[a-z]{2}(-[a-z]+)+-[0-9]+')
        THEN coalesce(region, $region) ELSE 'unknown' END AS region_partition,
    CASE WHEN regexp_full_match(coalesce(account_id, $account), '[0-9]{12}')
        THEN coalesce(account_id, $account) ELSE 'unknown' END AS account_partition,
    strftime(to_timestamp(coalesce(start, "end")), '%Y%m%d') AS day_partition
FROM ends
