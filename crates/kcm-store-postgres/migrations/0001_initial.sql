-- kcm store schema, version 1 (PostgreSQL). The same tables, columns (in the same
-- order) and meaning as the SQLite store's migration 0001, so a snapshot taken from
-- one backend restores into the other.
-- Ids are hyphenated lower-case UUID text, times are Unix milliseconds, enums are
-- their stable `as_str()` names, tags are a JSON object. There are no foreign keys:
-- the store trait defines no referential errors; the core owns those rules.
-- Every text column uses the "C" collation: comparisons and ordering are bytewise,
-- as SQLite's BINARY collation, whatever the database's default collation is
-- (ids page by `id > after`; lists are ordered by name).
-- Integers are BIGINT (SQLite's INTEGER is 64-bit); `enabled` is BOOLEAN (a snapshot
-- carries it as the integer 0 or 1, as SQLite stores it).

CREATE TABLE meta (
    key   TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    value TEXT COLLATE "C" NOT NULL
);

CREATE TABLE tenants (
    id                  TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    name                TEXT COLLATE "C" NOT NULL UNIQUE,
    account_id          TEXT COLLATE "C" NOT NULL UNIQUE,
    default_root_key_id TEXT COLLATE "C" NOT NULL,
    default_system_id   TEXT COLLATE "C" NOT NULL,
    created_at          BIGINT NOT NULL
);

CREATE TABLE access_keys (
    id            TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    tenant_id     TEXT COLLATE "C",
    role          TEXT COLLATE "C" NOT NULL,
    system_id     TEXT COLLATE "C",
    sealed_secret BYTEA NOT NULL,
    description   TEXT COLLATE "C" NOT NULL,
    enabled       BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX access_keys_by_tenant ON access_keys (tenant_id, id);

CREATE TABLE root_keys (
    id          TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    tenant_id   TEXT COLLATE "C",
    keystore    TEXT COLLATE "C" NOT NULL,
    handle      BYTEA NOT NULL,
    origin      TEXT COLLATE "C" NOT NULL,
    state       TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX root_keys_by_tenant ON root_keys (tenant_id, created_at, id);

CREATE TABLE systems (
    id                 TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    tenant_id          TEXT COLLATE "C" NOT NULL,
    name               TEXT COLLATE "C" NOT NULL,
    kind               TEXT COLLATE "C" NOT NULL,
    description        TEXT COLLATE "C" NOT NULL,
    active_key_version BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE system_keys (
    system_id   TEXT COLLATE "C" NOT NULL,
    version     BIGINT NOT NULL,
    root_key_id TEXT COLLATE "C" NOT NULL,
    wrapped     BYTEA NOT NULL,
    state       TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (system_id, version)
);

CREATE TABLE service_keys (
    id                   TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    tenant_id            TEXT COLLATE "C" NOT NULL,
    system_id            TEXT COLLATE "C" NOT NULL,
    description          TEXT COLLATE "C" NOT NULL,
    usage                TEXT COLLATE "C" NOT NULL,
    spec                 TEXT COLLATE "C" NOT NULL,
    origin               TEXT COLLATE "C" NOT NULL,
    state                TEXT COLLATE "C" NOT NULL,
    created_at           BIGINT NOT NULL,
    deletion_at          BIGINT,
    rotation_period_days BIGINT,
    next_rotation_at     BIGINT,
    primary_version      BIGINT NOT NULL,
    tags                 TEXT COLLATE "C" NOT NULL,
    CHECK ((rotation_period_days IS NULL) = (next_rotation_at IS NULL))
);
CREATE INDEX service_keys_by_tenant ON service_keys (tenant_id, id);
CREATE INDEX service_keys_due_deletion ON service_keys (deletion_at)
    WHERE state = 'pending-deletion';
CREATE INDEX service_keys_due_rotation ON service_keys (next_rotation_at)
    WHERE state = 'active';

CREATE TABLE key_versions (
    key_id             TEXT COLLATE "C" NOT NULL,
    version            BIGINT NOT NULL,
    system_key_version BIGINT NOT NULL,
    wrapped            BYTEA NOT NULL,
    origin             TEXT COLLATE "C" NOT NULL,
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (key_id, version)
);

CREATE TABLE aliases (
    tenant_id  TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    key_id     TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
CREATE INDEX aliases_by_key ON aliases (key_id);
