-- kcm store schema, version 6: managed objects (Barbican secrets and containers,
-- KMIP objects), values clients store and read back.
-- Conventions as in version 1 (no foreign keys: the core owns referential rules).
-- `kind` and `state` are their stable `as_str()` names. `attributes` is the JSON
-- object of `ObjectAttributes` (name, algorithm, metadata, links, ACL, consumers,
-- expiration…); nothing is looked up by them inside the store (should a field be
-- searched one day, a migration adds its column, filled from the JSON). The
-- payload is sealed under version `system_key_version` of the object's system
-- key: both columns are set, or both NULL (no payload yet, or a container).
CREATE TABLE managed_objects (
    id                 TEXT PRIMARY KEY NOT NULL,
    tenant_id          TEXT NOT NULL,
    system_id          TEXT NOT NULL,
    kind               TEXT NOT NULL,
    state              TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    attributes         TEXT NOT NULL,
    system_key_version INTEGER,
    sealed_payload     BLOB,
    CHECK ((system_key_version IS NULL) = (sealed_payload IS NULL))
);
CREATE INDEX managed_objects_by_system ON managed_objects (system_id, created_at, id);
