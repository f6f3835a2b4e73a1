-- A code by id within a state tenant, for _search: never its hash. It counts as validated only
-- within $3 seconds (a code's validity) of its validation: egov-user registers right after
-- validating, and an old validation must not stay usable forever.
SELECT id, tenant_id, coalesce(validated_identity, identity),
       validated_at IS NOT NULL AND validated_at > now() - make_interval(secs => $3)
FROM otp_code
WHERE id = $1 AND tenant_id = $2
