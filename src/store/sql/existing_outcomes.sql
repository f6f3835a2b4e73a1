-- The outcomes already recorded for some request ids (redelivery, replay, a crashed run).
SELECT request_id, outcome, code_id, created_at
FROM otp_request_outcome
WHERE request_id = ANY($1::text[])
