-- NAT links: which instance is behind each connection a NAT gateway made to the internet.
--
--   named          conversations with their client and server
--   nat_addresses  the addresses that translate: NAT gateways (context or inferred), without the
--                  firewall endpoints that look like gateways in formats without pkt-*
--   owners         the interface that holds an address: the one whose every record names it
--   instance_legs  an instance's side of a connection through a NAT gateway, one per connection:
--                    pkt-dstaddr   the NAT gateway's private leg names the destination (pkt-*)
--                    instance-eni  the instance's own record names it; its private leg on the
--                                  NAT gateway's interface (same address, port, time) the NAT
--                    nat-legs      only the private leg: the destination is unknown
--   public_legs    the NAT gateway's side: its address and translated port to the internet
--
-- nat.py puts in front context_nats, the NAT gateways' private addresses the context names.
WITH named AS (
    SELECT
        $named_columns
    FROM explained
),
gateway_public AS (
    SELECT client_addr AS address, client_port, server_port, protocol, first_seen,
        client_resource, client_interface
    FROM named
    WHERE client_gateway = 1 AND server_private = 0 AND client_role <> 'firewall-endpoint'
),
inbound_ports AS (
    -- what gateways received from private addresses, by port and start
    SELECT DISTINCT server_addr AS address, client_port, server_port, protocol, first_seen
    FROM named
    WHERE client_private = 1 AND server_gateway = 1 AND client_addr <> server_addr
        AND protocol IN (6, 17)
),
nat_addresses_seen AS (
    -- A firewall endpoint forwards packets unchanged: in a format without pkt-* its records
    -- to the internet look like a gateway's own, but each came in from a private address on
    -- the same ports at the same time. A NAT gateway translates the source port.
    SELECT
        g.address,
        max(g.client_resource) AS nat_gateway,
        max(g.client_interface) AS nat_interface
    FROM gateway_public AS g
    LEFT JOIN inbound_ports AS p
        ON p.address = g.address AND p.client_port = g.client_port
        AND p.server_port = g.server_port AND p.protocol = g.protocol
        AND p.first_seen BETWEEN g.first_seen - 2 AND g.first_seen + 2
    GROUP BY g.address
    HAVING 2 * sum(CASE WHEN p.address IS NOT NULL THEN 1 ELSE 0 END) < count(*)
),
nat_addresses AS (
    SELECT address, nat_gateway, nat_interface FROM nat_addresses_seen
    UNION ALL
    SELECT c.address, c.nat_gateway, c.nat_interface
    FROM context_nats AS c
    LEFT JOIN nat_addresses_seen AS s ON s.address = c.address
    WHERE s.address IS NULL
),
interface_records AS (
    SELECT interface_id, count(*) AS records
    FROM flows
    WHERE srcaddr IS NOT NULL AND dstaddr IS NOT NULL AND coalesce(log_status, 'OK') = 'OK'
    GROUP BY interface_id
),
interface_addresses AS (
    SELECT interface_id, address, count(*) AS records
    FROM (
        SELECT interface_id, srcaddr AS address
        FROM flows
        WHERE srcaddr IS NOT NULL AND dstaddr IS NOT NULL AND coalesce(log_status, 'OK') = 'OK'
        UNION ALL
        SELECT interface_id, dstaddr AS address
        FROM flows
        WHERE srcaddr IS NOT NULL AND dstaddr IS NOT NULL AND coalesce(log_status, 'OK') = 'OK'
            AND dstaddr <> srcaddr
    ) AS a
    GROUP BY interface_id, address
),
owned AS (
    SELECT a.interface_id, min(a.address) AS address, count(*) AS addresses
    FROM interface_addresses AS a
    JOIN interface_records AS r ON r.interface_id = a.interface_id AND r.records = a.records
    GROUP BY a.interface_id
),
owners AS (
    SELECT address, min(interface_id) AS interface_id
    FROM owned
    WHERE addresses = 1
    GROUP BY address
),
instance_side AS (
    SELECT c.*, coalesce(c.client_interface, o.interface_id) AS instance_interface
    FROM named AS c
    LEFT JOIN owners AS o ON o.address = c.client_addr
    WHERE c.client_private = 1 AND c.client_gateway = 0 AND c.client_role <> 'public-instance'
),
direct AS (
    SELECT
        i.*,
        CASE
            WHEN n1.address IS NOT NULL THEN i.relay_min
            WHEN n2.address IS NOT NULL THEN i.relay_max
        END AS relay_nat
    FROM instance_side AS i
    LEFT JOIN nat_addresses AS n1 ON n1.address = i.relay_min
    LEFT JOIN nat_addresses AS n2 ON n2.address = i.relay_max
    WHERE i.server_private = 0
),
private_legs AS (
    SELECT i.*
    FROM instance_side AS i
    JOIN nat_addresses AS n ON n.address = i.server_addr
),
paired AS (
    -- the private leg of a direct leg's connection: same instance address and port, same
    -- destination port, at the same time
    SELECT
        d.conversation,
        p.server_addr AS nat_addr,
        p.conversation AS private_conversation,
        p.first_seen,
        p.last_seen,
        p.packets_out,
        p.bytes_out,
        p.packets_in,
        p.bytes_in,
        row_number() OVER (
            PARTITION BY d.conversation
            ORDER BY abs(p.first_seen - d.first_seen), p.server_addr
        ) AS k
    FROM direct AS d
    JOIN private_legs AS p
        ON p.client_addr = d.client_addr AND p.client_port = d.client_port
        AND p.server_port = d.server_port AND p.protocol = d.protocol
    WHERE d.relay_nat IS NULL
        AND p.first_seen BETWEEN d.first_seen - $slack AND d.first_seen + $slack
),
private_paired AS (
    SELECT DISTINCT private_conversation FROM paired WHERE k = 1
),
instance_legs AS (
    SELECT
        d.conversation,
        d.client_addr AS instance_addr,
        d.client_port AS instance_port,
        d.client_resource AS instance_id,
        d.instance_interface,
        d.server_addr AS destination,
        d.server_port AS destination_port,
        d.protocol,
        -- the private leg was logged by the interface that logged the public leg: its times
        -- and volumes are the ones to compare (the instance's may miss a SKIPDATA window)
        coalesce(p.first_seen, d.first_seen) AS first_seen,
        coalesce(p.last_seen, d.last_seen) AS last_seen,
        coalesce(p.packets_out, d.packets_out) AS packets_out,
        coalesce(p.bytes_out, d.bytes_out) AS bytes_out,
        coalesce(p.packets_in, d.packets_in) AS packets_in,
        coalesce(p.bytes_in, d.bytes_in) AS bytes_in,
        coalesce(d.relay_nat, p.nat_addr) AS nat_addr,
        CASE WHEN d.relay_nat IS NOT NULL THEN 'pkt-dstaddr' ELSE 'instance-eni' END AS method,
        CASE WHEN d.relay_nat IS NOT NULL OR p.nat_addr IS NOT NULL THEN 1 ELSE 0 END
            AS private_seen,
        CASE
            WHEN d.relay_nat IS NULL OR d.interface_count > 1 THEN 1 ELSE 0
        END AS instance_seen
    FROM direct AS d
    LEFT JOIN paired AS p ON p.conversation = d.conversation AND p.k = 1
    UNION ALL
    SELECT
        p.conversation,
        p.client_addr,
        p.client_port,
        p.client_resource,
        p.instance_interface,
        CAST(NULL AS VARCHAR),
        p.server_port,
        p.protocol,
        p.first_seen,
        p.last_seen,
        p.packets_out,
        p.bytes_out,
        p.packets_in,
        p.bytes_in,
        p.server_addr,
        'nat-legs',
        1,
        0
    FROM private_legs AS p
    LEFT JOIN private_paired AS u ON u.private_conversation = p.conversation
    WHERE u.private_conversation IS NULL
),
instance_keyed AS (
    -- each instance leg on the key links.sql finds it by: the destination it names
    -- (by_destination = 1) or, when it names none (the NAT gateway's private leg alone), the
    -- NAT gateway's address (0); in its minute and 2-second buckets
    SELECT
        *,
        CAST(floor(first_seen / $slack) AS BIGINT) AS bucket,
        CASE WHEN destination IS NULL THEN 0 ELSE 1 END AS by_destination,
        coalesce(destination, nat_addr) AS k_addr,
        CAST(floor(first_seen / 2) AS BIGINT) AS near_bucket
    FROM instance_legs
),
instance_buckets AS (
    -- its rank and company in its buckets (links.sql compares at most so many per bucket)
    SELECT
        *,
        row_number() OVER (
            PARTITION BY by_destination, k_addr, destination_port, protocol, near_bucket
            ORDER BY first_seen, conversation
        ) AS near_rank,
        count(*) OVER (
            PARTITION BY by_destination, k_addr, destination_port, protocol, near_bucket
        ) AS near_crowd,
        row_number() OVER (
            PARTITION BY by_destination, k_addr, destination_port, protocol, bytes_out, bucket
            ORDER BY first_seen, conversation
        ) AS bytes_rank,
        count(*) OVER (
            PARTITION BY by_destination, k_addr, destination_port, protocol, bytes_out, bucket
        ) AS bytes_crowd
    FROM instance_keyed
),
public_legs AS (
    SELECT
        c.conversation AS outside_id,
        c.client_addr AS nat_addr,
        c.client_port AS nat_port,
        c.server_addr AS destination,
        c.server_port AS destination_port,
        c.protocol,
        c.first_seen,
        c.last_seen,
        c.packets_out,
        c.bytes_out,
        c.packets_in,
        c.bytes_in,
        n.nat_gateway,
        coalesce(n.nat_interface, o.interface_id) AS nat_interface
    FROM named AS c
    JOIN nat_addresses AS n ON n.address = c.client_addr
    LEFT JOIN owners AS o ON o.address = c.client_addr
    WHERE c.server_private = 0
)
SELECT * FROM public_legs
