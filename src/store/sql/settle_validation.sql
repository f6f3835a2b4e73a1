-- Applies a _validate decision in one statement, the same statement for every outcome:
-- $2 = 'right' uses the code once, 'wrong' counts a failure (in the identity's budget, and
-- against its newest code $1 there: the per-code limit), 'refused' (guess budget spent) counts
-- nothing. Only a right code writes the code row; everything else writes just the budget row,
-- so a wrong guess costs the same whether or not the identity has a code ($1 is then the nil
-- UUID, which matches no code).
--
-- The budget row is written as a compare-and-set ($7 the failures to store, expected version
-- $8, NULL when there was no row): if another validation of the identity changed it since it
-- was read, nothing at all is applied and `applied` is false (the caller reads and decides
-- again). A right code commits durably (single use survives a crash); anything else does not
-- wait for the WAL flush (a crash in the flush delay can forget one failure), so wrong codes,
-- the cheapest request an attacker can make, stay cheap.
WITH commit_mode AS (
    SELECT set_config('synchronous_commit', CASE WHEN $2::text = 'right' THEN 'on' ELSE 'off' END,
                      true) AS mode
),
budget AS (
    INSERT INTO otp_guess_budget AS b
        (tenant_id, identity, failed_at, code_id, code_failures, version)
    SELECT $5::text, $6::text, $7::timestamptz[], $1::uuid,
           CASE WHEN $2::text = 'wrong' THEN 1 ELSE 0 END, 1
    FROM commit_mode
    ON CONFLICT (tenant_id, identity) DO UPDATE
    SET failed_at = excluded.failed_at,
        code_id = CASE WHEN $2::text = 'wrong' THEN $1::uuid ELSE b.code_id END,
        code_failures = CASE
            WHEN $2::text <> 'wrong' THEN b.code_failures
            WHEN b.code_id = $1::uuid THEN b.code_failures + 1
            ELSE 1
        END,
        version = b.version + 1,
        updated_at = now()
    WHERE b.version = $8::bigint
    RETURNING version
),
consumed AS (
    UPDATE otp_code
    SET validated_at = now(), validated_identity = $3
    WHERE id = $1 AND $2::text = 'right' AND validated_at IS NULL AND expires_at > now()
      AND failed_attempts < $4 AND EXISTS (SELECT 1 FROM budget)
    RETURNING id
)
SELECT EXISTS (SELECT 1 FROM budget), EXISTS (SELECT 1 FROM consumed)
