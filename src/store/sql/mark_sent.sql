-- The SMS events of these requests are acknowledged by the broker.
UPDATE otp_request_outcome
SET outcome = 'sent', completed_at = now()
WHERE request_id = ANY($1::text[]) AND outcome = 'sms_pending'
