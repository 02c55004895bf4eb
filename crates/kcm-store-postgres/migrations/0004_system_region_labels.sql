-- kcm store schema, version 4 (PostgreSQL; mirrors the SQLite store's 0004).
-- Systems carry where they run and labels (a JSON object of strings), and may
-- exist without a root key (active_key_version 0 until linked).
ALTER TABLE systems ADD COLUMN region TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE systems ADD COLUMN labels TEXT COLLATE "C" NOT NULL DEFAULT '{}';
