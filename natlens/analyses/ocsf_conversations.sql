-- Conversations as OCSF Network Activity (class 4001), one event per conversation, read by a
-- local DuckDB from `convs` (natlens conversations). src_endpoint is the client natlens decided
-- opened it; with confidence unknown it is natlens's guess, and the direction is Unknown.
-- docs/export.md gives the mapping.
WITH shaped AS (
    SELECT
        *,
        confidence <> 'unknown' AS decided,
        CASE WHEN actions = 'REJECT' THEN 5 ELSE 6 END AS activity,
        CASE
            WHEN confidence = 'unknown' THEN 0
            WHEN client_role = 'internet' AND server_role <> 'internet' THEN 1
            WHEN client_role <> 'internet' AND server_role = 'internet' THEN 2
            WHEN client_role <> 'internet' AND server_role <> 'internet' THEN 3
            ELSE 99
        END AS direction
    FROM convs
)
SELECT
    activity AS activity_id,
    CASE activity WHEN 5 THEN 'Refuse' ELSE 'Traffic' END AS activity_name,
    4 AS category_uid,
    'Network Activity' AS category_name,
    4001 AS class_uid,
    'Network Activity' AS class_name,
    400100 + activity AS type_uid,
    'Network Activity: ' || CASE activity WHEN 5 THEN 'Refuse' ELSE 'Traffic' END AS type_name,
    1 AS severity_id,
    'Informational' AS severity,
    first_seen * 1000 AS "time",
    first_seen * 1000 AS start_time,
    last_seen * 1000 AS end_time,
    CASE actions WHEN 'ACCEPT' THEN 1 WHEN 'REJECT' THEN 2 ELSE 99 END AS disposition_id,
    CASE actions WHEN 'ACCEPT' THEN 'Allowed' WHEN 'REJECT' THEN 'Blocked' ELSE 'Other' END
        AS disposition,
    {
        'provider': 'AWS',
        'region': CASE WHEN $region <> '' THEN $region END,
        'account': CASE WHEN $account <> ''
            THEN {'uid': $account, 'type_id': 10, 'type': 'AWS Account'} END
    } AS cloud,
    {
        'ip': client_addr,
        'port': client_port,
        'uid': client_resource,
        'instance_uid': CASE WHEN starts_with(client_resource, 'i-') THEN client_resource END
    } AS src_endpoint,
    {
        'ip': server_addr,
        'port': server_port,
        'uid': server_resource,
        'instance_uid': CASE WHEN starts_with(server_resource, 'i-') THEN server_resource END
    } AS dst_endpoint,
    {
        'uid': conversation,
        'protocol_num': protocol,
        'protocol_ver_id': CASE WHEN contains(client_addr, ':') THEN 6 ELSE 4 END,
        'protocol_ver': CASE WHEN contains(client_addr, ':')
            THEN 'Internet Protocol version 6 (IPv6)'
            ELSE 'Internet Protocol version 4 (IPv4)' END,
        'direction_id': direction,
        'direction': CASE direction WHEN 1 THEN 'Inbound' WHEN 2 THEN 'Outbound'
            WHEN 3 THEN 'Lateral' WHEN 99 THEN 'Other' ELSE 'Unknown' END
    } AS connection_info,
    {
        'bytes': bytes_to_server + bytes_to_client,
        'packets': packets_to_server + packets_to_client,
        'bytes_out': bytes_to_server,
        'packets_out': packets_to_server,
        'bytes_in': bytes_to_client,
        'packets_in': packets_to_client
    } AS traffic,
    {
        'version': $ocsf_version,
        'uid': conversation,
        'product': {
            'name': 'natlens', 'vendor_name': 'natlens', 'version': $natlens_version,
            'feature': {'name': 'conversations'}
        },
        'log_provider': 'Amazon VPC Flow Logs',
        'profiles': ['cloud', 'security_control']
    } AS metadata,
    map_from_entries(list_filter([
        {'key': 'natlens.initiator', 'value': CASE WHEN decided THEN 'src' ELSE 'undetermined' END},
        {'key': 'natlens.initiator_confidence', 'value': confidence},
        {'key': 'natlens.evidence', 'value': array_to_string(evidence, ',')},
        {'key': 'natlens.against', 'value': array_to_string("against", ',')},
        {'key': 'natlens.client_role', 'value': client_role},
        {'key': 'natlens.server_role', 'value': server_role},
        {'key': 'natlens.roles_from', 'value': roles_from},
        {'key': 'natlens.records', 'value': CAST(records AS VARCHAR)},
        {'key': 'natlens.interfaces', 'value': array_to_string(interfaces, ',')}
    ], x -> x.value IS NOT NULL)) AS unmapped,
    CASE WHEN regexp_full_match($region, '[a-z]{2}(-[a-z]+)+-[0-9]+') THEN $region
        ELSE 'unknown' END AS region_partition,
    CASE WHEN regexp_full_match($account, '[0-9]{12}') THEN $account
        ELSE 'unknown' END AS account_partition,
    strftime(to_timestamp(first_seen), '%Y%m%d') AS day_partition
FROM shaped
