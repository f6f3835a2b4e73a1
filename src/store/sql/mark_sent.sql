-- The SMS events of these requests are acknowledged by the broker (primary-key lookups per id,
-- see existing_outcomes.sql for why not `= ANY($1)`).
UPDATE otp_request_outcome o
SET outcome = 'sent', completed_at = now()
FROM unnest($1::text[]) AS ids (request_id)
WHERE o.request_id = ids.request_id AND o.outcome = 'sms_pending'
