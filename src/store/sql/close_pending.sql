-- Closes pending requests with a final outcome: 'sent' once their SMS is acknowledged, 'expired'
-- or 'abandoned' when recovery must not send (primary-key lookups per key, see
-- existing_outcomes.sql for why not `= ANY($1)`).
UPDATE otp_request_outcome o
SET outcome = $3, completed_at = now()
FROM unnest($1::text[], $2::bytea[]) AS keys (request_id, fingerprint)
WHERE o.request_id = keys.request_id AND o.fingerprint = keys.fingerprint
  AND o.outcome = 'sms_pending'
