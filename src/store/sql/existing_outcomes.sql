-- For each request key (request id, fingerprint) of a batch: its outcome if recorded (a
-- redelivery, a replay, a crashed run), with its age and whether its code is still valid by
-- PostgreSQL's clock, and whether other requests used the same id (a collision, logged). A row
-- recorded before fingerprints existed (empty fingerprint, migration 0002) within the last $3
-- seconds (a code's validity) counts as this request's, so an upgrade does not serve an
-- in-flight request twice; older ones do not (a redelivery that old is stale anyway), so an id
-- used before the upgrade does not swallow later requests. Keys with neither are not returned.
--
-- Written so that every plan is primary-key lookups, whatever the statistics and however many
-- requests share an id: each key looks up its exact row and its legacy row by the whole primary
-- key, in LATERAL subqueries (LIMIT keeps them from being flattened into joins), and so do its
-- code and the collision check (which stops at the first other fingerprint). The prepared
-- statement's generic plan is made on the connection's first executions, often while the tables
-- are still empty; as plain joins it then hash-joined a sequential scan of the whole table on
-- every batch (900 ms per batch at 100,000 rows with `= ANY($1)`, 50-100 ms once the primary key
-- no longer told the planner that an id matches one row).
SELECT k.request_id, k.fingerprint, o.fingerprint, o.outcome, o.code_id,
       (extract(epoch FROM now() - o.created_at) * 1000)::bigint AS age_ms,
       o.worker_id, c.identity, c.expires_at <= now() AS code_expired,
       other.found IS NOT NULL AS reused, o.created_at
FROM unnest($1::text[], $2::bytea[]) AS k (request_id, fingerprint)
LEFT JOIN LATERAL (
    SELECT fingerprint, outcome, code_id, created_at, worker_id FROM otp_request_outcome
    WHERE request_id = k.request_id AND fingerprint = k.fingerprint
    LIMIT 1
) AS exact ON true
LEFT JOIN LATERAL (
    SELECT fingerprint, outcome, code_id, created_at, worker_id FROM otp_request_outcome
    WHERE request_id = k.request_id AND fingerprint = '\x'::bytea
      AND created_at > now() - make_interval(secs => $3)
    LIMIT 1
) AS legacy ON exact.outcome IS NULL
CROSS JOIN LATERAL (
    SELECT coalesce(exact.fingerprint, legacy.fingerprint) AS fingerprint,
           coalesce(exact.outcome, legacy.outcome) AS outcome,
           coalesce(exact.code_id, legacy.code_id) AS code_id,
           coalesce(exact.created_at, legacy.created_at) AS created_at,
           coalesce(exact.worker_id, legacy.worker_id) AS worker_id
) AS o
LEFT JOIN LATERAL (
    SELECT identity, expires_at FROM otp_code WHERE id = o.code_id LIMIT 1
) AS c ON true
LEFT JOIN LATERAL (
    SELECT true AS found FROM otp_request_outcome
    WHERE request_id = k.request_id AND fingerprint <> k.fingerprint
      AND fingerprint <> '\x'::bytea
    LIMIT 1
) AS other ON true
WHERE o.outcome IS NOT NULL OR other.found
