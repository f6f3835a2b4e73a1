-- Records the outcomes of a batch, with their codes and extra code identities, in one statement.
-- Only request ids not recorded before are taken (ON CONFLICT DO NOTHING: the database, not
-- memory, decides who serves a request); codes and identities are written only for those, in
-- event order (so seq orders one identity's codes as its requests came).
-- Returns the request ids this call recorded.
WITH won AS (
    INSERT INTO otp_request_outcome
        (request_id, tenant_id, otp_type, outcome, code_id, source_topic, source_partition, source_offset,
         worker_id)
    SELECT o.*, $19::text
    FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::uuid[],
                $6::text[], $7::integer[], $8::bigint[]) AS o
    ON CONFLICT (request_id) DO NOTHING
    RETURNING request_id
),
codes AS (
    INSERT INTO otp_code (id, request_id, tenant_id, identity, key_id, code_hash, expires_at)
    SELECT c.id, c.request_id, c.tenant_id, c.identity, c.key_id, c.code_hash, c.expires_at
    FROM UNNEST($9::uuid[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bytea[],
                $15::timestamptz[]) WITH ORDINALITY
         AS c (id, request_id, tenant_id, identity, key_id, code_hash, expires_at, n)
    JOIN won ON won.request_id = c.request_id
    ORDER BY c.n
    RETURNING id, seq
),
identities AS (
    INSERT INTO otp_code_identity (tenant_id, identity, seq, code_id)
    SELECT i.tenant_id, i.identity, codes.seq, i.code_id
    FROM UNNEST($16::uuid[], $17::text[], $18::text[]) AS i (code_id, tenant_id, identity)
    JOIN codes ON codes.id = i.code_id
)
SELECT request_id FROM won
