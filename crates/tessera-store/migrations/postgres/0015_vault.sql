-- The credential vault: one kept token set per (user, upstream provider), both tokens sealed
-- (AES-256-GCM, bound to user, provider and column); `version` moves on with every write so a
-- refresh writes only over the set it read. Deleting a user deletes their sets.
CREATE TABLE upstream_tokens (
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider      TEXT NOT NULL,
    subject       TEXT NOT NULL,
    access_token  BYTEA NOT NULL,
    refresh_token BYTEA,
    expires_at    BIGINT,
    scope         TEXT,
    kept_at       BIGINT NOT NULL,
    refreshed_at  BIGINT,
    version       BIGINT NOT NULL,
    PRIMARY KEY (user_id, provider)
);

-- Which upstream providers (and scopes) each client may obtain through token exchange
-- (a JSON list of {"provider", "scopes"}).
ALTER TABLE clients ADD COLUMN token_exchange TEXT NOT NULL DEFAULT '[]';
