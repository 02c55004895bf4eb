-- kcm store schema, version 3 (PostgreSQL; mirrors the SQLite store's 0003).
-- Keys with origin EXTERNAL (BYOK through the AWS API): a check value of the
-- imported material (HMAC-SHA-256 keyed by it; reveals nothing about it), so a
-- re-import after DeleteImportedKeyMaterial must bring the same material.
ALTER TABLE service_keys ADD COLUMN import_check TEXT COLLATE "C";
