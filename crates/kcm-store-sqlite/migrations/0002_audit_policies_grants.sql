-- kcm store schema, version 2: derived access key secrets, per-key operation
-- limits, key policies, grants and the audit log.
-- Conventions as in version 1. Lists of operation names are comma-separated text
-- (names never contain commas), never a bit pattern: bit positions may change
-- between releases, names do not.

-- Access keys made from now on keep a salt and a one-way verifier of their secret
-- (`StoredSecret::Derived`) and an empty `sealed_secret`; rows written before keep
-- their sealed secret and NULL here (`StoredSecret::Sealed`).
ALTER TABLE access_keys ADD COLUMN secret_salt BLOB;
ALTER TABLE access_keys ADD COLUMN secret_verifier BLOB;
-- NULL: the key may call every operation its role allows.
ALTER TABLE access_keys ADD COLUMN operations TEXT;

-- The key policy document (NULL: roles alone decide).
ALTER TABLE service_keys ADD COLUMN policy TEXT;

CREATE TABLE grants (
    id                 TEXT PRIMARY KEY NOT NULL,
    tenant_id          TEXT NOT NULL,
    key_id             TEXT NOT NULL,
    grantee            TEXT NOT NULL,
    retiring_principal TEXT,
    operations         TEXT NOT NULL,
    name               TEXT,
    issuing_principal  TEXT NOT NULL,
    created_at         INTEGER NOT NULL
);
CREATE INDEX grants_by_key ON grants (key_id, created_at, id);
CREATE INDEX grants_by_retiring_principal
    ON grants (tenant_id, retiring_principal, created_at, id)
    WHERE retiring_principal IS NOT NULL;

-- One row per audit record. `chain` is '' for the operator's chain, else the tenant
-- id. `keys` is the JSON array of `AuditKey`s; `key_ids` repeats their ids wrapped
-- and separated by commas (`,id1,id2,`; `,` for none) for the key filter.
CREATE TABLE audit_records (
    chain      TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    time       INTEGER NOT NULL,
    principal  TEXT NOT NULL,
    role       TEXT,
    front_door TEXT NOT NULL,
    operation  TEXT NOT NULL,
    keys       TEXT NOT NULL,
    key_ids    TEXT NOT NULL,
    system_id  TEXT,
    outcome    TEXT NOT NULL,
    error      TEXT,
    request_id TEXT NOT NULL,
    source     TEXT,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
) WITHOUT ROWID;
CREATE INDEX audit_records_by_time ON audit_records (chain, time);

CREATE TABLE audit_checkpoints (
    chain     TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    hash      TEXT NOT NULL,
    time      INTEGER NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
) WITHOUT ROWID;
