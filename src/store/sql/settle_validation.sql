-- Applies a _validate decision in one statement, the same statement for every outcome:
-- $2 = 'right' uses the code once, 'wrong' counts a failed attempt on it, 'refused' (guess budget
-- spent) changes no code. The identity's guess budget is written first as a compare-and-set
-- ($7 failures to store, expected version $8, NULL when there was no row): if another
-- validation of the identity changed it since it was read, nothing at all is applied and
-- `applied` is 0 (the caller reads and decides again). A right code commits durably (single use
-- survives a crash); a wrong one does not wait for the WAL flush (a crash in the flush delay can
-- forget one failure), so wrong codes, the cheapest request an attacker can make, stay cheap.
-- $1 is the code's id, or the nil UUID when the identity has no code (nothing matches it).
WITH commit_mode AS (
    SELECT set_config('synchronous_commit', CASE WHEN $2::text = 'right' THEN 'on' ELSE 'off' END,
                      true) AS mode
),
budget AS (
    INSERT INTO otp_guess_budget AS b (tenant_id, identity, failed_at, version)
    SELECT $5::text, $6::text, $7::timestamptz[], 1 FROM commit_mode
    ON CONFLICT (tenant_id, identity) DO UPDATE
    SET failed_at = excluded.failed_at, version = b.version + 1, updated_at = now()
    WHERE b.version = $8::bigint
    RETURNING version
),
consumed AS (
    UPDATE otp_code
    SET validated_at = now(), validated_identity = $3
    WHERE id = $1 AND $2::text = 'right' AND validated_at IS NULL AND expires_at > now()
      AND failed_attempts < $4 AND EXISTS (SELECT 1 FROM budget)
    RETURNING id
),
failed AS (
    UPDATE otp_code
    SET failed_attempts = failed_attempts + 1
    WHERE id = $1 AND $2::text = 'wrong' AND validated_at IS NULL AND EXISTS (SELECT 1 FROM budget)
    RETURNING id
)
SELECT EXISTS (SELECT 1 FROM budget), EXISTS (SELECT 1 FROM consumed), EXISTS (SELECT 1 FROM failed)
