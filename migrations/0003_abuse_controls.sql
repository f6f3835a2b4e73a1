-- Abuse controls and the OTP lifecycle (issue 9).

-- 'rate_limited': a send limit (cooldown, per hour, per day) or the pumping guard refused the
-- code; nothing was sent and the live code, if any, stays live. `detail` says which limit.
-- `test_number`: the code was a configured test number's fixed code.
ALTER TABLE otp_request_outcome DROP CONSTRAINT otp_request_outcome_outcome_check;
ALTER TABLE otp_request_outcome ADD CONSTRAINT otp_request_outcome_outcome_check CHECK (outcome IN
    ('sms_pending', 'sent', 'user_exists', 'unknown_user', 'no_mobile_number', 'stale',
     'expired', 'abandoned', 'rate_limited'));
ALTER TABLE otp_request_outcome ADD COLUMN detail text;
ALTER TABLE otp_request_outcome ADD COLUMN test_number boolean NOT NULL DEFAULT false;

-- When codes were sent to a number (the last 10 digits of a longer all-digit number: every
-- spelling of one phone counts together), across tenants: a tenant id is whatever the caller
-- writes and a register request needs no user, so counting per tenant would let anyone multiply
-- the limits by inventing tenants. Kept only as far back as the longest send limit looks. The
-- worker locks a number's row while it decides and records a batch, so concurrent workers
-- agree.
CREATE TABLE otp_send_history (
    identity   text          PRIMARY KEY,
    sent_at    timestamptz[] NOT NULL,
    updated_at timestamptz   NOT NULL DEFAULT now()
);

-- Wrong codes per identity (root tenant + the mobile the code was sent to) in the last hour,
-- across its codes, and the wrong attempts at its newest code (`code_id`, `code_failures`: the
-- per-code limit; only the newest code of an identity is live, so one pair is enough). Every
-- validation writes this one row and no code row unless it uses the code, so a wrong guess
-- costs the same whether or not the identity has a code. `version` makes each update a
-- compare-and-set: a validation applies its decision only if no other validation of the
-- identity changed the row since it read it.
CREATE TABLE otp_guess_budget (
    tenant_id     text          NOT NULL,
    identity      text          NOT NULL,
    failed_at     timestamptz[] NOT NULL,
    code_id       uuid          NOT NULL,
    code_failures integer       NOT NULL,
    version       bigint        NOT NULL,
    updated_at    timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, identity)
);

-- Retention: the purge deletes by age. BRIN indexes fit append-ordered timestamps and cost
-- almost nothing per insert (a btree on created_at would be one more page touched per row).
ALTER TABLE otp_code_identity ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX otp_code_created_brin ON otp_code USING brin (created_at);
CREATE INDEX otp_request_outcome_created_brin ON otp_request_outcome USING brin (created_at);
CREATE INDEX otp_code_identity_created_brin ON otp_code_identity USING brin (created_at);

-- otp_code.failed_attempts is no longer incremented (wrong attempts are counted in
-- otp_guess_budget); the attempts it holds from before this migration still count.
