-- Consent bound to the authorization decision, and who may see whose tokens: clients may be
-- allowed to introspect (and follow the feed for) every token, or name the API resource they
-- serve; consent screens wait in single-use records bound to the session.
ALTER TABLE clients ADD COLUMN introspection BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN resource TEXT;

CREATE TABLE pending_consents (
    hash       BYTEA PRIMARY KEY,
    sid        TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    request    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX pending_consents_by_expiry ON pending_consents(expires_at);
