-- One row that readiness rewrites after a write failed for want of the database (disk full,
-- down), to learn whether writes work again.
CREATE TABLE write_probe (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO write_probe (id, n) VALUES (1, 0);
