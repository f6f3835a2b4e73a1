-- Locks the send-history rows of a batch's numbers (creating empty ones) and returns each row's
-- send times with PostgreSQL's now(), inside the caller's transaction. ON CONFLICT DO UPDATE
-- locks an existing row and returns its latest committed version, so a concurrent worker
-- recording codes for the same number is waited for and its codes are counted. Numbers arrive
-- unique and sorted, so two workers lock shared rows in the same order.
INSERT INTO otp_send_history AS h (identity, sent_at)
SELECT k.identity, '{}'::timestamptz[]
FROM unnest($1::text[]) AS k (identity)
ORDER BY k.identity
ON CONFLICT (identity) DO UPDATE SET updated_at = h.updated_at
RETURNING identity, sent_at, now()
