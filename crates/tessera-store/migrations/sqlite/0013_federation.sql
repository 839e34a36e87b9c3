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
    client_secret_sealed   BLOB NOT NULL,
    scopes                 TEXT NOT NULL,
    domains                TEXT NOT NULL,
    jit                    INTEGER NOT NULL,
    trust_email            INTEGER NOT NULL,
    vault_tokens           INTEGER NOT NULL,
    enabled                INTEGER NOT NULL,
    created_at             INTEGER NOT NULL
) STRICT;

CREATE TABLE federated_identities (
    id           TEXT PRIMARY KEY,
    provider_id  TEXT NOT NULL REFERENCES upstream_providers(id) ON DELETE CASCADE,
    issuer       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email        TEXT,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    UNIQUE (issuer, subject)
) STRICT;
CREATE INDEX federated_identities_by_user ON federated_identities(user_id);

CREATE TABLE upstream_logins (
    state_hash   BLOB PRIMARY KEY,
    browser_hash BLOB NOT NULL,
    provider_id  TEXT NOT NULL REFERENCES upstream_providers(id) ON DELETE CASCADE,
    nonce_hash   BLOB NOT NULL,
    return_to    TEXT NOT NULL,
    issuer       TEXT,
    expires_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX upstream_logins_by_expiry ON upstream_logins(expires_at);

CREATE TABLE upstream_pending_links (
    hash        BLOB PRIMARY KEY,
    provider_id TEXT NOT NULL REFERENCES upstream_providers(id) ON DELETE CASCADE,
    issuer      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email       TEXT,
    amr         TEXT NOT NULL,
    return_to   TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX upstream_pending_links_by_expiry ON upstream_pending_links(expires_at);
