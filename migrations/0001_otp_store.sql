-- The OTP store: codes (only their keyed hashes), the extra identities a code answers to, and
-- the outcome of every request event, keyed by its request id (the worker's idempotency key).

-- One row per code. A code belongs to one request: the worker inserts it only together with
-- that request's outcome (primary key below), which the database lets only one writer insert.
CREATE TABLE otp_code (
    id                 uuid        PRIMARY KEY,
    -- orders the codes of one identity, even within one batch (same transaction time)
    seq                bigint      GENERATED ALWAYS AS IDENTITY,
    request_id         text        NOT NULL,
    -- state-level (root) tenant, e.g. 'pb'
    tenant_id          text        NOT NULL,
    -- where the SMS went: the identity the code answers to (see otp_code_identity for more)
    identity           text        NOT NULL,
    -- id of the HMAC key the hash was made with, so keys can rotate
    key_id             text        NOT NULL,
    -- HMAC-SHA-256(secret, 'user-otp/code/v1' || 0x00 || id || code); never the code itself
    code_hash          bytea       NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL,
    failed_attempts    integer     NOT NULL DEFAULT 0,
    validated_at       timestamptz,
    validated_identity text
);
-- Only the newest code of an identity is live: a new code retires the older ones.
CREATE INDEX otp_code_newest ON otp_code (tenant_id, identity, seq DESC);

-- Further identities of a code (passwordreset: the value the caller sent, besides the stored
-- mobile), with the code's seq so "newest" means the same across both tables.
CREATE TABLE otp_code_identity (
    tenant_id text   NOT NULL,
    identity  text   NOT NULL,
    seq       bigint NOT NULL,
    code_id   uuid   NOT NULL,
    PRIMARY KEY (tenant_id, identity, seq)
);

-- What became of each request event. 'sms_pending' means the code is stored but the SMS event
-- is not yet known to be acknowledged by the broker; every other outcome is final. Pages keep
-- room for the pending -> sent update in place (HOT update, no index write).
CREATE TABLE otp_request_outcome (
    request_id       text        PRIMARY KEY,
    tenant_id        text        NOT NULL,
    otp_type         text        NOT NULL,
    outcome          text        NOT NULL CHECK (outcome IN
                         ('sms_pending', 'sent', 'user_exists', 'unknown_user', 'no_mobile_number', 'stale')),
    code_id          uuid,
    source_topic     text        NOT NULL,
    source_partition integer     NOT NULL,
    source_offset    bigint      NOT NULL,
    -- the worker process that recorded it: a pending outcome of another process may still be
    -- in flight there (after a rebalance) and gets a grace period before recovery
    worker_id        text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz
) WITH (fillfactor = 80);
