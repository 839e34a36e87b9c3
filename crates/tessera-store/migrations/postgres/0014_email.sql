-- E-mail: the durable mail outbox and the single-use challenges mails carry.
-- A message is written (sealed: its link is a secret until used) in the transaction of the
-- request that causes it; the mail job claims due messages with a lease (`claimed_until`),
-- sends them, and marks them sent (dropping the content) or reschedules them with backoff.
CREATE TABLE mail_outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sealed          BYTEA,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    sent_at         BIGINT
);
CREATE INDEX mail_outbox_due ON mail_outbox(next_attempt_at) WHERE sent_at IS NULL;

-- Links and codes sent by mail: hashed, bound to the asking browser (hash of its cookie),
-- used up by one DELETE ... RETURNING.
CREATE TABLE email_challenges (
    hash         BYTEA PRIMARY KEY,
    purpose      TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email        TEXT NOT NULL,
    browser_hash BYTEA NOT NULL,
    code_hash    BYTEA,
    failures     BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX email_challenges_by_user ON email_challenges(user_id, purpose);
CREATE INDEX email_challenges_by_expiry ON email_challenges(expires_at);
CREATE INDEX email_challenges_by_browser ON email_challenges(browser_hash, purpose);

-- When the user's current address was proved by a mailed link (NULL: not verified). Changing
-- the address clears it.
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;
