-- kcm store schema, version 2 (PostgreSQL; mirrors the SQLite store's 0002):
-- derived access key secrets, per-key operation limits, key policies, grants and
-- the audit log. Conventions as in version 1. Lists of operation names are
-- comma-separated text (names never contain commas), never a bit pattern: bit
-- positions may change between releases, names do not.

-- Access keys made from now on keep a salt and a one-way verifier of their secret
-- (`StoredSecret::Derived`) and an empty `sealed_secret`; rows written before keep
-- their sealed secret and NULL here (`StoredSecret::Sealed`).
ALTER TABLE access_keys ADD COLUMN secret_salt BYTEA;
ALTER TABLE access_keys ADD COLUMN secret_verifier BYTEA;
-- NULL: the key may call every operation its role allows.
ALTER TABLE access_keys ADD COLUMN operations TEXT COLLATE "C";

-- The key policy document (NULL: roles alone decide).
ALTER TABLE service_keys ADD COLUMN policy TEXT COLLATE "C";

CREATE TABLE grants (
    id                 TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    tenant_id          TEXT COLLATE "C" NOT NULL,
    key_id             TEXT COLLATE "C" NOT NULL,
    grantee            TEXT COLLATE "C" NOT NULL,
    retiring_principal TEXT COLLATE "C",
    operations         TEXT COLLATE "C" NOT NULL,
    name               TEXT COLLATE "C",
    issuing_principal  TEXT COLLATE "C" NOT NULL,
    created_at         BIGINT NOT NULL
);
CREATE INDEX grants_by_key ON grants (key_id, created_at, id);
CREATE INDEX grants_by_retiring_principal
    ON grants (tenant_id, retiring_principal, created_at, id)
    WHERE retiring_principal IS NOT NULL;

-- One row per audit record. `chain` is '' for the operator's chain, else the tenant
-- id. `keys` is the JSON array of `AuditKey`s; `key_ids` repeats their ids wrapped
-- and separated by commas (`,id1,id2,`; `,` for none) for the key filter.
CREATE TABLE audit_records (
    chain      TEXT COLLATE "C" NOT NULL,
    seq        BIGINT NOT NULL,
    time       BIGINT NOT NULL,
    principal  TEXT COLLATE "C" NOT NULL,
    role       TEXT COLLATE "C",
    front_door TEXT COLLATE "C" NOT NULL,
    operation  TEXT COLLATE "C" NOT NULL,
    keys       TEXT COLLATE "C" NOT NULL,
    key_ids    TEXT COLLATE "C" NOT NULL,
    system_id  TEXT COLLATE "C",
    outcome    TEXT COLLATE "C" NOT NULL,
    error      TEXT COLLATE "C",
    request_id TEXT COLLATE "C" NOT NULL,
    source     TEXT COLLATE "C",
    prev_hash  TEXT COLLATE "C" NOT NULL,
    hash       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (chain, seq)
);
CREATE INDEX audit_records_by_time ON audit_records (chain, time);

CREATE TABLE audit_checkpoints (
    chain     TEXT COLLATE "C" NOT NULL,
    seq       BIGINT NOT NULL,
    hash      TEXT COLLATE "C" NOT NULL,
    time      BIGINT NOT NULL,
    signature TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (chain, seq)
);
