-- Records the outcomes of a batch, with their codes and extra code identities, in one statement.
-- Only (request id, fingerprint) keys not recorded before are taken (ON CONFLICT DO NOTHING: the
-- database, not memory, decides who serves a request); codes and identities are written only for
-- those, in event order (so seq orders one identity's codes as its requests came). A code belongs
-- to the outcome that names it (code_id), so two requests of one id with different fingerprints
-- in one batch keep their own codes. Expiry is PostgreSQL's now() plus the validity.
--
-- Send history: when $20 (seconds of history the send limits look back) is above zero, each
-- code recorded here is added to the otp_send_history row of the number the limits count it
-- under ($23, aligned with the codes), which the caller locked and read in this transaction
-- (`lock_send_history.sql`), and entries older than $20 seconds are dropped.
-- Returns the keys this call recorded.
WITH won AS (
    INSERT INTO otp_request_outcome
        (request_id, fingerprint, tenant_id, otp_type, outcome, code_id, source_topic,
         source_partition, source_offset, detail, test_number, worker_id)
    SELECT o.*, $19::text
    FROM UNNEST($1::text[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::uuid[],
                $7::text[], $8::integer[], $9::bigint[], $21::text[], $22::boolean[]) AS o
    ON CONFLICT (request_id, fingerprint) DO NOTHING
    RETURNING request_id, fingerprint, code_id
),
codes AS (
    INSERT INTO otp_code (id, request_id, tenant_id, identity, key_id, code_hash, expires_at)
    SELECT c.id, won.request_id, c.tenant_id, c.identity, c.key_id, c.code_hash,
           now() + make_interval(secs => c.valid_for)
    FROM UNNEST($10::uuid[], $11::text[], $12::text[], $13::text[], $14::bytea[],
                $15::double precision[]) WITH ORDINALITY
         AS c (id, tenant_id, identity, key_id, code_hash, valid_for, n)
    JOIN won ON won.code_id = c.id
    ORDER BY c.n
    RETURNING id, seq
),
identities AS (
    INSERT INTO otp_code_identity (tenant_id, identity, seq, code_id)
    SELECT i.tenant_id, i.identity, codes.seq, i.code_id
    FROM UNNEST($16::uuid[], $17::text[], $18::text[]) AS i (code_id, tenant_id, identity)
    JOIN codes ON codes.id = i.code_id
),
history AS (
    UPDATE otp_send_history h
    SET sent_at = ARRAY(SELECT t FROM unnest(h.sent_at) AS t
                        WHERE t > now() - make_interval(secs => $20::double precision))
                  || sends.times,
        updated_at = now()
    FROM (SELECT k.identity, array_agg(now()) AS times
          FROM codes
          JOIN unnest($10::uuid[], $23::text[]) AS k (id, identity) ON k.id = codes.id
          GROUP BY k.identity) AS sends
    -- A primary-key lookup per number whatever the statistics (LATERAL ... LIMIT is not
    -- flattened into a join, which a plan made on an empty table turns into a full scan).
    CROSS JOIN LATERAL (
        SELECT ctid AS found FROM otp_send_history WHERE identity = sends.identity LIMIT 1
    ) AS row
    WHERE $20::double precision > 0 AND h.ctid = row.found
)
SELECT request_id, fingerprint FROM won
