-- One row that readiness rewrites after a write failed for want of the database (disk full,
-- locked), to learn whether writes work again.
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
) STRICT;
INSERT INTO write_probe (id, n) VALUES (1, 0);
