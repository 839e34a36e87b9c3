-- Federation (upstream sign-in): the upstream providers (client secret sealed with a purpose
-- key), the identities they vouch for keyed by (issuer, subject), sign-ins in flight (hash of
-- `state`, bound to the browser by the hash of a cookie, single use) and links waiting for
-- the user to prove the local account.
CREATE TABLE upstream_providers (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE,
    kind                   TEXT NOT NULL,
    issuer                 TEXT,
    authorization_endpoint TEXT,
    token_endpoint         TEXT,
    userinfo_endpoint      TEXT,
    emails_endpoint        TEXT,
    client_id              TEXT NOT NULL,
    client_secret_sealed   BYTEA NOT NULL,
    scopes                 TEXT NOT NULL,
    domains                TEXT NOT NULL,
    jit                    BOOLEAN NOT NULL,
    trust_email            BOOLEAN NOT NULL,
    vault_tokens           BOOLEAN NOT NULL,
    enabled                BOOLEAN NOT NULL,
    created_at             BIGINT NOT NULL
);

CREATE TABLE federated_identities (
    id           TEXT PRIMARY KEY,
    provider_id  TEXT NOT NULL REFERENCES upstream_providers(id) ON DELETE CASCADE,
    issuer       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email        TEXT,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    UNIQUE (issuer, subject)
);
CREATE INDEX federated_identities_by_user ON federated_identities(user_id);

CREATE TABLE upstream_logins (
    state_hash   BYTEA PRIMARY KEY,
    browser_hash BYTEA NOT NULL,
    provider_id  TEXT NOT NULL REFERENCES upstream_providers(id) ON DELETE CASCADE,
    nonce_hash   BYTEA NOT NULL,
    return_to    TEXT NOT NULL,
    issuer       TEXT,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX upstream_logins_by_expiry ON upstream_logins(expires_at);

CREATE TABLE upstream_pending_links (
    hash        BYTEA PRIMARY KEY,
    provider_id TEXT NOT NULL REFERENCES upstream_providers(id) ON DELETE CASCADE,
    issuer      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email       TEXT,
    amr         TEXT NOT NULL,
    return_to   TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX upstream_pending_links_by_expiry ON upstream_pending_links(expires_at);
