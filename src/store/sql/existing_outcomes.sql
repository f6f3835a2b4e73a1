-- The outcomes already recorded for some request ids (redelivery, replay, a crashed run).
-- Joined with unnest rather than `= ANY($1)`: the prepared statement's generic plan, made while
-- the table was small, chose a sequential scan that grew with the table (900 ms per batch at
-- 100,000 rows in scripts/bench); the join is planned as primary-key lookups.
SELECT o.request_id, o.outcome, o.code_id, o.created_at, o.worker_id
FROM unnest($1::text[]) AS ids (request_id)
JOIN otp_request_outcome o ON o.request_id = ids.request_id
