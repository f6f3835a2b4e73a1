-- The outcomes already recorded for some request ids (redelivery, replay, a crashed run, or
-- another request that used the same id), each with its age and whether its code is still valid
-- by PostgreSQL's clock.
--
-- Written so that every plan is primary-key lookups, whatever the statistics: each id looks its
-- outcomes up in a LATERAL subquery, and each outcome its code, and LIMIT keeps both from being
-- flattened into joins. The prepared statement's generic plan is made on the connection's first
-- executions, often while the tables are still empty; as plain joins it then hash-joined a
-- sequential scan of the whole table on every batch (900 ms per batch at 100,000 rows with
-- `= ANY($1)`, 50-100 ms with a join once the primary key no longer told the planner that an id
-- matches one row).
SELECT o.request_id, o.fingerprint, o.outcome, o.code_id,
       (extract(epoch FROM now() - o.created_at) * 1000)::bigint AS age_ms,
       o.worker_id, c.identity, c.expires_at <= now() AS code_expired
FROM unnest($1::text[]) AS ids (request_id)
CROSS JOIN LATERAL (
    SELECT * FROM otp_request_outcome WHERE request_id = ids.request_id LIMIT 100
) AS o
LEFT JOIN LATERAL (
    SELECT identity, expires_at FROM otp_code WHERE id = o.code_id LIMIT 1
) AS c ON true
