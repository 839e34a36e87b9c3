-- The transactional outbox: domain events written in the transaction of the change that
-- causes them (a session ended, credentials changed, grants revoked) and applied afterwards
-- by the outbox consumer. A row is deleted when its event has been applied; `claimed_until`
-- is the lease of the consumer applying it (another takes it up once the lease has passed).
CREATE TABLE outbox (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          TEXT NOT NULL,
    user_id       TEXT,
    session       TEXT,
    written_at    BIGINT NOT NULL,
    claimed_until BIGINT,
    attempts      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX outbox_by_written_at ON outbox(written_at);

-- The grants a `grants-revoked` event is about, as they were when revoked (a deleted user's
-- grants are gone from `grants` by the time the event is applied).
CREATE TABLE outbox_grants (
    outbox_id   BIGINT NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    scope       TEXT NOT NULL,
    sid         TEXT,
    auth_time   BIGINT NOT NULL,
    amr         TEXT NOT NULL,
    acr         TEXT,
    audience    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX outbox_grants_by_event ON outbox_grants(outbox_id);
