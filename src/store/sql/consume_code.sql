-- Uses a code once: of concurrent validations of the right code exactly one updates the row
-- (the others re-check the WHERE clause after the first commits and find it validated).
UPDATE otp_code
SET validated_at = now(), validated_identity = $2
WHERE id = $1 AND validated_at IS NULL AND expires_at > now() AND failed_attempts < $3
RETURNING id
