-- The outcomes already recorded for some request ids (redelivery, replay, a crashed run, or
-- another request that used the same id), each with its age and whether its code is still valid
-- by PostgreSQL's clock. Joined with unnest rather than `= ANY($1)`: the prepared statement's
-- generic plan, made while the table was small, chose a sequential scan that grew with the table
-- (900 ms per batch at 100,000 rows in scripts/bench); the join is planned as primary-key lookups.
SELECT o.request_id, o.fingerprint, o.outcome, o.code_id,
       (extract(epoch FROM now() - o.created_at) * 1000)::bigint AS age_ms,
       o.worker_id, c.identity, c.expires_at <= now() AS code_expired
FROM unnest($1::text[]) AS ids (request_id)
JOIN otp_request_outcome o ON o.request_id = ids.request_id
LEFT JOIN otp_code c ON c.id = o.code_id
