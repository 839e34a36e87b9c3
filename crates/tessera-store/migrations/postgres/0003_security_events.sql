-- Security events (CAEP-shaped) for the revocation feed, in commit order (inserts are
-- serialised by an advisory lock so sequence order is commit order).
CREATE TABLE security_events (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL,
    session TEXT
);
CREATE INDEX security_events_by_time ON security_events(at);
