-- kcm store schema, version 9 (PostgreSQL; mirrors the SQLite store's 0009): AWS's
-- grant constraints (EncryptionContextEquals, EncryptionContextSubset) as JSON.
-- NULL: the grant is not constrained.
ALTER TABLE grants ADD COLUMN constraints TEXT;
