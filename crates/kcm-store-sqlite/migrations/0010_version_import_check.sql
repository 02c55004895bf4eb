-- kcm store schema, version 10: each version of a key with origin EXTERNAL keeps the
-- check value of its imported material (HMAC-SHA-256 keyed by it; reveals nothing
-- about it), so that new material can wait as a version of its own until
-- RotateKeyOnDemand makes it current (AWS's ImportType NEW_KEY_MATERIAL). NULL: a
-- version made by kcm, or imported before version 10 (the key's own import_check
-- is then that of its current material).
ALTER TABLE key_versions ADD COLUMN import_check TEXT;
