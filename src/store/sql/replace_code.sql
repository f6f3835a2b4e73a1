-- Recovery claims a pending request ($5 request id, $6 fingerprint, code $1) and gives its code
-- a fresh hash $2 in place (same id, so still one code per request; the old hash, never sent,
-- is gone), valid from now (PostgreSQL's clock) for $4 seconds. The claim is a compare-and-set
-- on the pending outcome's recording time as this run read it ($7): it succeeds only if the
-- outcome is still pending and nobody recorded or claimed it since; it restarts that time
-- (created_at = now()), so any other run (a copy under another message key) waits out the
-- pending grace again instead of recovering the same request at the same time. Returns 1 when
-- this run holds the claim: claimed now, or by this run's earlier attempt whose answer was lost
-- (the code already has this run's hash $2, a fresh random code's); 0 when another run claimed
-- it first (or it is no longer pending). Both sides read the statement's one snapshot.
WITH claimed AS (
    UPDATE otp_request_outcome
    SET created_at = now()
    WHERE request_id = $5 AND fingerprint = $6 AND code_id = $1 AND outcome = 'sms_pending'
      AND created_at = $7
    RETURNING code_id
), replaced AS (
    UPDATE otp_code
    SET code_hash = $2, key_id = $3, expires_at = now() + make_interval(secs => $4),
        failed_attempts = 0
    WHERE id IN (SELECT code_id FROM claimed) AND validated_at IS NULL
    RETURNING id
)
SELECT (SELECT count(*) FROM claimed)
     + (SELECT count(*) FROM otp_code WHERE id = $1 AND code_hash = $2 AND key_id = $3)
