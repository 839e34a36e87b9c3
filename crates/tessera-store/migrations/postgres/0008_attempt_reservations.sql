-- Sign-in attempts are reserved before they are checked (one conditional upsert per key):
-- `blocked_until` is when a client without a solved proof of work may try again (refused
-- attempts push it out), `last_admitted` is 1 when the latest attempt on the key was let in.
ALTER TABLE login_failures ADD COLUMN blocked_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE login_failures ADD COLUMN last_admitted BIGINT NOT NULL DEFAULT 0;
