-- Closes pending requests with a final outcome: 'sent' once their SMS is acknowledged, 'expired'
-- or 'abandoned' when recovery must not send.
--
-- Each key finds its row by a primary-key lookup in a LATERAL subquery (LIMIT keeps it from being
-- flattened into a join) and the row is updated by its ctid, so the plan never depends on
-- statistics: a plain join, planned while the table was still empty, scanned the whole table on
-- every batch. A row updated concurrently by another worker is skipped (it is no longer
-- pending, or the other update set what this one would).
UPDATE otp_request_outcome o
SET outcome = $3, completed_at = now()
FROM unnest($1::text[], $2::bytea[]) AS keys (request_id, fingerprint)
CROSS JOIN LATERAL (
    SELECT ctid AS found FROM otp_request_outcome
    WHERE request_id = keys.request_id AND fingerprint = keys.fingerprint
    LIMIT 1
) AS row
WHERE o.ctid = row.found AND o.outcome = 'sms_pending'
