-- kcm store schema, version 6 (PostgreSQL; mirrors the SQLite store's 0006):
-- managed objects (Barbican secrets and containers, KMIP objects), values clients
-- store and read back.
-- Conventions as in version 1 (no foreign keys: the core owns referential rules).
-- `kind` and `state` are their stable `as_str()` names. `attributes` is the JSON
-- object of `ObjectAttributes` (name, algorithm, metadata, links, ACL, consumers,
-- expiration…), kept as text like every JSON column; nothing is looked up by them
-- inside the store (should a field be searched one day, a migration adds its
-- column, filled from the JSON). The payload is sealed under version
-- `system_key_version` of the object's system key: both columns are set, or both
-- NULL (no payload yet, or a container).
CREATE TABLE managed_objects (
    id                 TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    tenant_id          TEXT COLLATE "C" NOT NULL,
    system_id          TEXT COLLATE "C" NOT NULL,
    kind               TEXT COLLATE "C" NOT NULL,
    state              TEXT COLLATE "C" NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    attributes         TEXT COLLATE "C" NOT NULL,
    system_key_version BIGINT,
    sealed_payload     BYTEA,
    CHECK ((system_key_version IS NULL) = (sealed_payload IS NULL))
);
CREATE INDEX managed_objects_by_system ON managed_objects (system_id, created_at, id);
