-- kcm store schema, version 7 (PostgreSQL; mirrors the SQLite store's 0007).
-- An audit record may carry what the request said of itself, as a JSON object of
-- strings (the XKS door: AWS KMS's request metadata); older records have none.
-- Additive: a snapshot of version 6 restores into version 7 (the column is NULL).
ALTER TABLE audit_records ADD COLUMN detail TEXT COLLATE "C";
