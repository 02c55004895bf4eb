-- kcm store schema, version 1.
-- Ids are hyphenated lower-case UUID text, times are Unix milliseconds, enums are
-- their stable `as_str()` names, tags are a JSON object. There are no foreign keys:
-- the store trait defines no referential errors; the core owns those rules.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE tenants (
    id                  TEXT PRIMARY KEY NOT NULL,
    name                TEXT NOT NULL UNIQUE,
    account_id          TEXT NOT NULL UNIQUE,
    default_root_key_id TEXT NOT NULL,
    default_system_id   TEXT NOT NULL,
    created_at          INTEGER NOT NULL
);

CREATE TABLE access_keys (
    id            TEXT PRIMARY KEY NOT NULL,
    tenant_id     TEXT,
    role          TEXT NOT NULL,
    system_id     TEXT,
    sealed_secret BLOB NOT NULL,
    description   TEXT NOT NULL,
    enabled       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX access_keys_by_tenant ON access_keys (tenant_id, id);

CREATE TABLE root_keys (
    id          TEXT PRIMARY KEY NOT NULL,
    tenant_id   TEXT,
    keystore    TEXT NOT NULL,
    handle      BLOB NOT NULL,
    origin      TEXT NOT NULL,
    state       TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX root_keys_by_tenant ON root_keys (tenant_id, created_at, id);

CREATE TABLE systems (
    id                 TEXT PRIMARY KEY NOT NULL,
    tenant_id          TEXT NOT NULL,
    name               TEXT NOT NULL,
    kind               TEXT NOT NULL,
    description        TEXT NOT NULL,
    active_key_version INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE system_keys (
    system_id   TEXT NOT NULL,
    version     INTEGER NOT NULL,
    root_key_id TEXT NOT NULL,
    wrapped     BLOB NOT NULL,
    state       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (system_id, version)
) WITHOUT ROWID;

CREATE TABLE service_keys (
    id                   TEXT PRIMARY KEY NOT NULL,
    tenant_id            TEXT NOT NULL,
    system_id            TEXT NOT NULL,
    description          TEXT NOT NULL,
    usage                TEXT NOT NULL,
    spec                 TEXT NOT NULL,
    origin               TEXT NOT NULL,
    state                TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    deletion_at          INTEGER,
    rotation_period_days INTEGER,
    next_rotation_at     INTEGER,
    primary_version      INTEGER NOT NULL,
    tags                 TEXT NOT NULL,
    CHECK ((rotation_period_days IS NULL) = (next_rotation_at IS NULL))
);
CREATE INDEX service_keys_by_tenant ON service_keys (tenant_id, id);
CREATE INDEX service_keys_due_deletion ON service_keys (deletion_at)
    WHERE state = 'pending-deletion';
CREATE INDEX service_keys_due_rotation ON service_keys (next_rotation_at)
    WHERE state = 'active';

CREATE TABLE key_versions (
    key_id             TEXT NOT NULL,
    version            INTEGER NOT NULL,
    system_key_version INTEGER NOT NULL,
    wrapped            BLOB NOT NULL,
    origin             TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    PRIMARY KEY (key_id, version)
) WITHOUT ROWID;

CREATE TABLE aliases (
    tenant_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
) WITHOUT ROWID;
CREATE INDEX aliases_by_key ON aliases (key_id);
