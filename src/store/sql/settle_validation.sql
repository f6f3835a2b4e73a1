-- Applies a _validate decision in one statement, the same statement for every outcome:
-- $2 = 'right' uses the code once, 'wrong' counts a failure (in the identity's budget, and
-- against its newest code $1 there: the per-code limit), 'refused' (guess budget spent) changes
-- nothing. A wrong guess writes just the budget row, so it costs the same whether or not the
-- identity has a code ($1 is then the nil UUID, which matches no code).
--
-- Concurrent validations of one identity agree through the budget row's version ($8, NULL when
-- there was no row), read with the decision: a wrong guess writes the row as a compare-and-set;
-- a right code is used only if the row is still at that version (read under a share lock, so
-- it is the latest; only a first-ever guess racing a first wrong one, nowhere near the budget,
-- is not ordered this way). Otherwise nothing is applied
-- and `applied` is false (the caller reads and decides again), so guesses decided on the same
-- reading cannot together exceed the budget. A refusal needs no check: other validations can
-- only add failures. A right code commits durably (single use survives a crash); anything else
-- does not wait for the WAL flush (a crash in the flush delay can forget one failure), so wrong
-- codes, the cheapest request an attacker can make, stay cheap.
WITH commit_mode AS (
    SELECT set_config('synchronous_commit', CASE WHEN $2::text = 'right' THEN 'on' ELSE 'off' END,
                      true) AS mode
),
-- The compare-and-set: an insert when there was no row (fails if one appeared meanwhile), a
-- plain update at the version read otherwise (cheaper than an upsert on the hot path).
inserted AS (
    INSERT INTO otp_guess_budget (tenant_id, identity, failed_at, code_id, code_failures, version)
    SELECT $5::text, $6::text, $7::timestamptz[], $1::uuid, 1, 1
    FROM commit_mode
    WHERE $2::text = 'wrong' AND $8::bigint IS NULL
    ON CONFLICT (tenant_id, identity) DO NOTHING
    RETURNING version
),
updated AS (
    UPDATE otp_guess_budget b
    SET failed_at = $7::timestamptz[],
        code_id = $1::uuid,
        code_failures = CASE WHEN b.code_id = $1::uuid THEN b.code_failures + 1 ELSE 1 END,
        version = b.version + 1,
        updated_at = now()
    FROM commit_mode
    WHERE $2::text = 'wrong' AND b.tenant_id = $5::text AND b.identity = $6::text
      AND b.version = $8::bigint
    RETURNING b.version
),
budget AS (
    SELECT version FROM inserted UNION ALL SELECT version FROM updated
),
unchanged AS (
    -- FOR SHARE waits for a validation writing the row and then sees its new version, so a
    -- failure committed meanwhile stops the code from being used.
    SELECT NOT EXISTS (
        SELECT 1 FROM (
            SELECT version FROM otp_guess_budget
            WHERE $2::text = 'right' AND tenant_id = $5::text AND identity = $6::text
            FOR SHARE
        ) AS current
        WHERE current.version IS DISTINCT FROM $8::bigint
    ) AS ok
),
consumed AS (
    UPDATE otp_code
    SET validated_at = now(), validated_identity = $3
    WHERE id = $1 AND $2::text = 'right' AND validated_at IS NULL AND expires_at > now()
      AND failed_attempts < $4 AND (SELECT ok FROM unchanged)
    RETURNING id
)
SELECT CASE $2::text
           WHEN 'wrong' THEN EXISTS (SELECT 1 FROM budget)
           WHEN 'right' THEN (SELECT ok FROM unchanged)
           ELSE true
       END,
       EXISTS (SELECT 1 FROM consumed)
