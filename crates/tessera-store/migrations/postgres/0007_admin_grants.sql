-- Clients allowed to ask for admin API tokens, and per-client absolute grant lifetimes
-- (seconds; NULL: the server's [oauth] grant_max_lifetime).
ALTER TABLE clients ADD COLUMN admin_api BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN grant_lifetime BIGINT;
CREATE INDEX grants_by_client ON grants(client_id);
