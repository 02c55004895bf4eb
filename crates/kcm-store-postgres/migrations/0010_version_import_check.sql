-- kcm store schema, version 10 (PostgreSQL; mirrors the SQLite store's 0010): each
-- version of a key with origin EXTERNAL keeps the check value of its imported
-- material, so that new material can wait as a version of its own until
-- RotateKeyOnDemand makes it current. NULL: a version made by kcm, or imported
-- before version 10.
ALTER TABLE key_versions ADD COLUMN import_check TEXT;
