-- The newest code of an identity (older ones are retired by it), with whether it is still live.
SELECT c.id, c.key_id, c.code_hash,
       (c.validated_at IS NULL AND c.expires_at > now() AND c.failed_attempts < $3) AS live
FROM otp_code_identity i
JOIN otp_code c ON c.id = i.code_id
WHERE i.tenant_id = $1 AND i.identity = $2
ORDER BY i.seq DESC
LIMIT 1
