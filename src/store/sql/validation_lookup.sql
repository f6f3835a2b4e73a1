-- What _validate needs, in one row whatever exists: the newest code of the identity (older ones
-- are retired by it; NULLs when there is none), whether it is live (not used, not expired,
-- fewer than $3 wrong attempts: those of before migration 0003 on the code row plus those the
-- budget row counts for it), the identity whose guess budget applies (the mobile the code was
-- sent to, else the identity as sent), that budget's recent failures and version, and
-- PostgreSQL's now(), and for the outcome event the code's request id and its state (used,
-- expired, attempts_exhausted or live). The same statement and the same plan run
-- whether or not a code exists, so its timing tells nothing about the identity. The budget row
-- is looked up in a LATERAL subquery with LIMIT, which keeps it a primary-key lookup whatever
-- the statistics: flattened into a join, the generic plan made while the table was empty
-- scanned every budget row of the tenant on every call (0.85 ms and 52 buffers per call in
-- `scripts/bench` once the table had 9,000 rows).
SELECT n.id, n.key_id, n.code_hash,
       coalesce(n.validated_at IS NULL AND n.expires_at > now()
                AND n.failed_attempts
                    + CASE WHEN g.code_id = n.id THEN g.code_failures ELSE 0 END < $3, false),
       budget.identity, g.failed_at, g.version, now(), n.request_id,
       CASE WHEN n.id IS NULL THEN NULL
            WHEN n.validated_at IS NOT NULL THEN 'used'
            WHEN n.expires_at <= now() THEN 'expired'
            WHEN n.failed_attempts
                 + CASE WHEN g.code_id = n.id THEN g.code_failures ELSE 0 END >= $3
                 THEN 'attempts_exhausted'
            ELSE 'live' END
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT id, identity, key_id, code_hash, validated_at, expires_at, failed_attempts, request_id
    FROM (
        (SELECT c.id, c.seq, c.identity, c.key_id, c.code_hash, c.validated_at, c.expires_at,
                c.failed_attempts, c.request_id
         FROM otp_code c
         WHERE c.tenant_id = $1 AND c.identity = $2
         ORDER BY c.seq DESC
         LIMIT 1)
        UNION ALL
        (SELECT c.id, c.seq, c.identity, c.key_id, c.code_hash, c.validated_at, c.expires_at,
                c.failed_attempts, c.request_id
         FROM otp_code_identity i
         JOIN otp_code c ON c.id = i.code_id
         WHERE i.tenant_id = $1 AND i.identity = $2
         ORDER BY i.seq DESC
         LIMIT 1)
    ) AS candidates
    ORDER BY seq DESC
    LIMIT 1
) AS n ON true
-- The budget counts per number however spelled, as the send limits do (limit_identity in
-- src/domain/abuse/send_limits.rs): the digits without `+`, spaces and dashes, the last 10 of
-- them; a user name as it is.
CROSS JOIN LATERAL (SELECT coalesce(n.identity, $2::text) AS raw) AS given
CROSS JOIN LATERAL (SELECT translate(given.raw, '+ -', '') AS digits) AS compact
CROSS JOIN LATERAL (
    SELECT CASE WHEN compact.digits <> '' AND translate(compact.digits, '0123456789', '') = ''
                THEN right(compact.digits, 10)
                ELSE given.raw END AS identity
) AS budget
LEFT JOIN LATERAL (
    SELECT failed_at, version, code_id, code_failures FROM otp_guess_budget
    WHERE tenant_id = $1 AND identity = budget.identity
    LIMIT 1
) AS g ON true
