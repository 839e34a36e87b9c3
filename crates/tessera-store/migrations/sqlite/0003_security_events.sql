-- Security events (CAEP-shaped) for the revocation feed, in commit order.
CREATE TABLE security_events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL,
    session TEXT
) STRICT;
CREATE INDEX security_events_by_time ON security_events(at);
