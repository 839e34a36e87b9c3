-- Whom a security event concerns, recorded when the grants it is about are deleted with it
-- (a deleted user or client): the revocation feed can no longer find them by joining grants.
CREATE TABLE security_event_parties (
    seq       BIGINT NOT NULL,
    client_id TEXT NOT NULL,
    audience  TEXT NOT NULL
);
CREATE INDEX security_event_parties_by_seq ON security_event_parties(seq);
