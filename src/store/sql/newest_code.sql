-- The newest code of an identity (older ones are retired by it), with whether it is still live:
-- the newest among codes sent to it and codes it is an extra identity of.
SELECT id, key_id, code_hash,
       (validated_at IS NULL AND expires_at > now() AND failed_attempts < $3) AS live
FROM (
    (SELECT c.id, c.seq, c.key_id, c.code_hash, c.validated_at, c.expires_at, c.failed_attempts
     FROM otp_code c
     WHERE c.tenant_id = $1 AND c.identity = $2
     ORDER BY c.seq DESC
     LIMIT 1)
    UNION ALL
    (SELECT c.id, c.seq, c.key_id, c.code_hash, c.validated_at, c.expires_at, c.failed_attempts
     FROM otp_code_identity i
     JOIN otp_code c ON c.id = i.code_id
     WHERE i.tenant_id = $1 AND i.identity = $2
     ORDER BY i.seq DESC
     LIMIT 1)
) AS candidates
ORDER BY seq DESC
LIMIT 1
