-- A request id belongs to its request (issue 8): an outcome is keyed by the request id *and* a
-- fingerprint of the request as sent (a keyed hash of root tenant, mobile number or user name,
-- and type). The same id with another fingerprint is another request with its own outcome; only
-- the same id with the same fingerprint is a redelivery.
--
-- Request ids now come from two namespaces: 'caller:<x-request-id>' and
-- 'offset:<topic>/<partition>/<offset>'. Rows recorded before this migration are renamed into
-- them (an id equal to the row's own source position was derived from it) and keep an empty
-- fingerprint, which the worker takes as a match for any request under that id, so an event
-- redelivered across the upgrade is not served twice. This rewrites both tables once.
UPDATE otp_request_outcome
SET request_id = CASE
    WHEN request_id = source_topic || '/' || source_partition || '/' || source_offset
        THEN 'offset:' || request_id
    ELSE 'caller:' || request_id
END;
UPDATE otp_code c SET request_id = o.request_id
FROM otp_request_outcome o WHERE o.code_id = c.id;
ALTER TABLE otp_request_outcome ADD COLUMN fingerprint bytea NOT NULL DEFAULT '\x';
ALTER TABLE otp_request_outcome ALTER COLUMN fingerprint DROP DEFAULT;
ALTER TABLE otp_request_outcome DROP CONSTRAINT otp_request_outcome_pkey;
ALTER TABLE otp_request_outcome ADD PRIMARY KEY (request_id, fingerprint);

-- 'expired': a pending request whose code validity passed before its SMS was known to be
-- written; closed, never resent. 'abandoned': a pending request that recovery would now send to
-- another identity than its stored code's (or that is now refused); closed, never sent.
ALTER TABLE otp_request_outcome DROP CONSTRAINT otp_request_outcome_outcome_check;
ALTER TABLE otp_request_outcome ADD CONSTRAINT otp_request_outcome_outcome_check CHECK (outcome IN
    ('sms_pending', 'sent', 'user_exists', 'unknown_user', 'no_mobile_number', 'stale',
     'expired', 'abandoned'));
