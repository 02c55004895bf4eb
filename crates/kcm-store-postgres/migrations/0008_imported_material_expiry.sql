-- kcm store schema, version 8 (PostgreSQL; mirrors the SQLite store's 0008):
-- imported key material that expires (AWS's ValidTo with expiration model
-- KEY_MATERIAL_EXPIRES). NULL: the material does not expire.
ALTER TABLE service_keys ADD COLUMN material_expires_at BIGINT;
CREATE INDEX service_keys_material_expiry ON service_keys (material_expires_at)
    WHERE material_expires_at IS NOT NULL;
