-- One more wrong code for a live code; at the limit the code is dead.
UPDATE otp_code
SET failed_attempts = failed_attempts + 1
WHERE id = $1 AND validated_at IS NULL
