-- Deletes up to $2 rows older than $1 seconds from each table of the store, oldest first, in one
-- short statement (the caller repeats it until nothing is left): codes with their extra
-- identities, outcomes, and limit history. Rows are found through the BRIN indexes on
-- created_at (limit tables: their updated_at) and deleted by ctid, so no statement holds locks
-- on more than $2 rows of a table. Returns the rows deleted per table.
WITH cutoff AS (SELECT now() - make_interval(secs => $1::double precision) AS at),
codes AS (
    DELETE FROM otp_code WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM otp_code WHERE created_at < (SELECT at FROM cutoff) LIMIT $2))
    RETURNING 1
),
identities AS (
    DELETE FROM otp_code_identity WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM otp_code_identity WHERE created_at < (SELECT at FROM cutoff) LIMIT $2))
    RETURNING 1
),
outcomes AS (
    DELETE FROM otp_request_outcome WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM otp_request_outcome WHERE created_at < (SELECT at FROM cutoff) LIMIT $2))
    RETURNING 1
),
sends AS (
    DELETE FROM otp_send_history WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM otp_send_history WHERE updated_at < (SELECT at FROM cutoff) LIMIT $2))
    RETURNING 1
),
guesses AS (
    DELETE FROM otp_guess_budget WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM otp_guess_budget WHERE updated_at < (SELECT at FROM cutoff) LIMIT $2))
    RETURNING 1
)
SELECT (SELECT count(*) FROM codes), (SELECT count(*) FROM identities),
       (SELECT count(*) FROM outcomes), (SELECT count(*) FROM sends),
       (SELECT count(*) FROM guesses)
