-- A pending request whose SMS never reached the broker gets a fresh code in place (same id, so
-- still one code per request); the old hash, never sent, is gone. Valid from now (PostgreSQL's
-- clock) for $4 seconds.
UPDATE otp_code
SET code_hash = $2, key_id = $3, expires_at = now() + make_interval(secs => $4),
    failed_attempts = 0
WHERE id = $1 AND validated_at IS NULL
