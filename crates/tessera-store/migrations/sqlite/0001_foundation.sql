-- Users, roles, sessions, first-administrator setup, audit log.
CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    username           TEXT NOT NULL,
    username_canonical TEXT NOT NULL UNIQUE,
    email              TEXT,
    email_canonical    TEXT UNIQUE,
    display_name       TEXT,
    password_hash      TEXT,
    roles              TEXT NOT NULL DEFAULT '',
    disabled           INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    id_hash      BLOB PRIMARY KEY,
    handle       TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    auth_time    INTEGER NOT NULL,
    ip           TEXT,
    user_agent   TEXT,
    amr          TEXT NOT NULL DEFAULT ''
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_by_user ON sessions(user_id);
CREATE INDEX sessions_by_expiry ON sessions(expires_at);

CREATE TABLE setup_tokens (
    hash       BLOB PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE TABLE audit_events (
    id         TEXT PRIMARY KEY,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    user_id    TEXT,
    ip         TEXT,
    user_agent TEXT,
    detail     TEXT NOT NULL
) STRICT;
CREATE INDEX audit_by_user_time ON audit_events(user_id, at);
CREATE INDEX audit_by_time ON audit_events(at);
