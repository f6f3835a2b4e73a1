-- For each request key (request id, fingerprint) of a batch: its outcome if recorded (a
-- redelivery, a replay, a crashed run), with its age and whether its code is still valid by
-- PostgreSQL's clock, and whether other requests used the same id (a collision, logged). Rows
-- recorded before fingerprints existed (empty fingerprint, migration 0002) count as this
-- request's, so an upgrade does not serve an in-flight request twice. Keys with neither are not
-- returned.
--
-- Written so that every plan is primary-key lookups, whatever the statistics and however many
-- requests share an id: each key looks its row up in a LATERAL subquery (LIMIT keeps it from
-- being flattened into a join), and so do its code and the collision check. The prepared
-- statement's generic plan is made on the connection's first executions, often while the tables
-- are still empty; as plain joins it then hash-joined a sequential scan of the whole table on
-- every batch (900 ms per batch at 100,000 rows with `= ANY($1)`, 50-100 ms once the primary key
-- no longer told the planner that an id matches one row).
SELECT k.request_id, k.fingerprint, o.fingerprint, o.outcome, o.code_id,
       (extract(epoch FROM now() - o.created_at) * 1000)::bigint AS age_ms,
       o.worker_id, c.identity, c.expires_at <= now() AS code_expired,
       other.found IS NOT NULL AS reused
FROM unnest($1::text[], $2::bytea[]) AS k (request_id, fingerprint)
LEFT JOIN LATERAL (
    SELECT fingerprint, outcome, code_id, created_at, worker_id FROM otp_request_outcome
    WHERE request_id = k.request_id AND fingerprint IN (k.fingerprint, '\x'::bytea)
    ORDER BY fingerprint DESC
    LIMIT 1
) AS o ON true
LEFT JOIN LATERAL (
    SELECT identity, expires_at FROM otp_code WHERE id = o.code_id LIMIT 1
) AS c ON true
LEFT JOIN LATERAL (
    SELECT true AS found FROM otp_request_outcome
    WHERE request_id = k.request_id AND fingerprint NOT IN (k.fingerprint, '\x'::bytea)
    LIMIT 1
) AS other ON true
WHERE o.outcome IS NOT NULL OR other.found
