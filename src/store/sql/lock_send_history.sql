-- Locks the send-history rows of a batch's identities (creating empty ones) and returns each
-- row's send times with PostgreSQL's now(), inside the caller's transaction. ON CONFLICT DO
-- UPDATE locks an existing row and returns its latest committed version, so a concurrent worker
-- recording codes for the same identity is waited for and its codes are counted. Keys arrive
-- unique and sorted (tenant, identity), so two workers lock shared rows in the same order.
INSERT INTO otp_send_history AS h (tenant_id, identity, sent_at)
SELECT k.tenant_id, k.identity, '{}'::timestamptz[]
FROM unnest($1::text[], $2::text[]) AS k (tenant_id, identity)
ORDER BY k.tenant_id, k.identity
ON CONFLICT (tenant_id, identity) DO UPDATE SET updated_at = h.updated_at
RETURNING tenant_id, identity, sent_at, now()
