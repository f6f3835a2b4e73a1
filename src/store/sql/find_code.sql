-- A code by id within a state tenant, for _search: never its hash.
SELECT id, tenant_id, coalesce(validated_identity, identity), validated_at IS NOT NULL
FROM otp_code
WHERE id = $1 AND tenant_id = $2
