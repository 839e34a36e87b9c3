-- Clients allowed to ask for admin API tokens, and per-client absolute grant lifetimes
-- (seconds; NULL: the server's [oauth] grant_max_lifetime).
ALTER TABLE clients ADD COLUMN admin_api INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN grant_lifetime INTEGER;
CREATE INDEX grants_by_client ON grants(client_id);
