-- One more wrong code for a live code; at the limit the code is dead. The commit does not wait
-- for the WAL flush: a crash within the flush delay could forget an increment (one extra
-- guess), and wrong codes, the cheapest request an attacker can make, stay cheap to refuse.
WITH async AS (SELECT set_config('synchronous_commit', 'off', true))
UPDATE otp_code
SET failed_attempts = failed_attempts + 1
WHERE id = $1 AND validated_at IS NULL AND EXISTS (SELECT 1 FROM async)
