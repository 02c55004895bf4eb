-- kcm store schema, version 8: imported key material that expires (AWS's ValidTo
-- with expiration model KEY_MATERIAL_EXPIRES). At that time the material is erased
-- and the key waits for an import again. NULL: the material does not expire.
ALTER TABLE service_keys ADD COLUMN material_expires_at INTEGER;
CREATE INDEX service_keys_material_expiry ON service_keys (material_expires_at)
    WHERE material_expires_at IS NOT NULL;
