//! Every record through its encoder and back through its decoder, on a row made of
//! the encoder's own parameters: no database, so a mistake in the column order or
//! a stored form shows here before either store is built.

use std::borrow::Cow;
use std::collections::BTreeMap;

use kcm_core::authz::{Op, OpSet};
use kcm_core::keyspec::{KeyOrigin, KeySpec, KeyUsage};
use kcm_core::lifecycle::{KeyState, Lifecycle};
use kcm_core::model::*;
use kcm_core::policy::GrantRecord;
use kcm_core::store::StoreError;

use crate::{cols, decode, encode, CellError, Param, Row};

/// A row holding parameters as a store would have stored them.
struct Cells(Vec<Param<'static>>);

impl Cells {
    fn of(params: &[Param<'_>]) -> Self {
        Cells(
            params
                .iter()
                .map(|p| match p {
                    Param::Text(s) => Param::Text(s.as_ref().map(|s| Cow::Owned(s.to_string()))),
                    Param::Integer(v) => Param::Integer(*v),
                    // Leaked: a test's few bytes, so the row can outlive the record.
                    Param::Blob(b) => {
                        Param::Blob(b.map(|b| &*Box::leak(b.to_vec().into_boxed_slice())))
                    }
                    Param::Boolean(v) => Param::Boolean(*v),
                })
                .collect(),
        )
    }

    fn cell(&self, idx: usize) -> Result<&Param<'static>, CellError> {
        self.0
            .get(idx)
            .ok_or_else(|| CellError::new(format!("no column {idx}")))
    }
}

fn wrong(idx: usize, want: &str) -> CellError {
    CellError::new(format!("column {idx} is not {want}"))
}

impl Row for Cells {
    fn text(&self, idx: usize) -> Result<Option<String>, CellError> {
        match self.cell(idx)? {
            Param::Text(s) => Ok(s.as_ref().map(|s| s.to_string())),
            _ => Err(wrong(idx, "text")),
        }
    }

    fn integer(&self, idx: usize) -> Result<Option<i64>, CellError> {
        match self.cell(idx)? {
            Param::Integer(v) => Ok(*v),
            _ => Err(wrong(idx, "an integer")),
        }
    }

    fn blob(&self, idx: usize) -> Result<Option<Vec<u8>>, CellError> {
        match self.cell(idx)? {
            Param::Blob(b) => Ok(b.map(<[u8]>::to_vec)),
            _ => Err(wrong(idx, "a blob")),
        }
    }

    fn boolean(&self, idx: usize) -> Result<Option<bool>, CellError> {
        match self.cell(idx)? {
            Param::Boolean(v) => Ok(*v),
            _ => Err(wrong(idx, "a boolean")),
        }
    }
}

fn width(cols: &str) -> usize {
    cols.split(',').count()
}

fn corrupt_naming(result: Result<impl std::fmt::Debug, StoreError>, needle: &str) {
    match result {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains(needle), "{msg}"),
        other => panic!("expected Corrupt naming {needle:?}, got {other:?}"),
    }
}

fn tenant() -> TenantRecord {
    TenantRecord {
        id: TenantId::new_random(),
        name: "acme — ü".into(),
        account_id: "000000000001".into(),
        default_root_key_id: RootKeyId::new_random(),
        default_system_id: SystemId::new_random(),
        created_at: 1_700_000_000_123,
    }
}

fn access_key(secret: StoredSecret, operations: Option<Vec<String>>) -> AccessKeyRecord {
    AccessKeyRecord {
        id: "KCMKEY00000000000001".into(),
        tenant_id: Some(TenantId::new_random()),
        role: Role::KeyUser,
        system_id: None,
        secret,
        operations,
        description: "d".into(),
        enabled: false,
        created_at: 5,
    }
}

fn service_key(full: bool) -> ServiceKeyRecord {
    let tags: BTreeMap<String, String> = [("owner".into(), "team \"a\" / ü".into())].into();
    ServiceKeyRecord {
        id: KeyId::new_random(),
        tenant_id: TenantId::new_random(),
        system_id: SystemId::new_random(),
        description: "all fields".into(),
        usage: KeyUsage::EncryptDecrypt,
        spec: KeySpec::SymmetricDefault,
        origin: KeyOrigin::External,
        lifecycle: Lifecycle::stored(KeyState::PendingDeletion),
        created_at: 1,
        deletion_at: full.then_some(2),
        rotation: full.then_some(RotationSchedule {
            period_days: 365,
            next_rotation_at: 3,
        }),
        primary_version: u32::MAX,
        tags: if full { tags } else { BTreeMap::new() },
        policy: full.then(|| "{}".into()),
        import_check: full.then(|| "5f".repeat(32)),
        material_expires_at: full.then_some(i64::MAX),
    }
}

/// A grant of `operations`, with a name and without a retiring principal.
fn grant(operations: OpSet) -> GrantRecord {
    GrantRecord {
        id: "g1".into(),
        tenant_id: TenantId::new_random(),
        key_id: KeyId::new_random(),
        grantee: "KCMGRANTEE0000000001".into(),
        retiring_principal: None,
        operations,
        name: Some("grant — ü, \"quoted\"".into()),
        issuing_principal: "KCMISSUER00000000001".into(),
        created_at: 13,
        constraints: Default::default(),
    }
}

/// A managed object: with a payload and every attribute set (`full`), or a container
/// with neither payload nor attributes.
fn managed_object(full: bool) -> ManagedObjectRecord {
    let attributes = ObjectAttributes {
        name: "secret — ü, \"quoted\"".into(),
        algorithm: Some("aes".into()),
        bit_length: Some(u32::MAX),
        mode: Some("cbc".into()),
        content_type: Some("application/octet-stream".into()),
        subtype: Some("generic".into()),
        expiration: Some(i64::MIN),
        metadata: [("owner".into(), "team \"a\" / ü".into())].into(),
        links: vec![ObjectLink {
            name: "private_key".into(),
            object: ObjectId::new_random(),
        }],
        creator: "keystone:u1".into(),
        acl: ObjectAcl {
            project_access: false,
            users: vec!["keystone:u2".into()],
        },
        consumers: vec![ObjectConsumer {
            service: "image".into(),
            resource_type: "image".into(),
            resource_id: "r1".into(),
        }],
    };
    ManagedObjectRecord {
        id: ObjectId::new_random(),
        tenant_id: TenantId::new_random(),
        system_id: SystemId::new_random(),
        kind: if full {
            ObjectKind::SymmetricKey
        } else {
            ObjectKind::Container
        },
        lifecycle: Lifecycle::stored(if full {
            KeyState::Active
        } else {
            KeyState::PreActive
        }),
        attributes: if full {
            attributes
        } else {
            ObjectAttributes::default()
        },
        payload: full.then(|| SealedPayload {
            system_key_version: u32::MAX,
            sealed: (0..=255).collect(),
        }),
        created_at: 15,
        updated_at: 16,
    }
}

/// An audit record with every optional field set but `source` (fields in column
/// order, as the stores keep them).
pub(crate) fn audit_record(chain: AuditChain, seq: u64) -> AuditRecord {
    AuditRecord {
        tenant: chain,
        seq,
        time: 10,
        principal: "KCMPRINCIPAL00000001".into(),
        role: Some(Role::KeyUser),
        front_door: "aws".into(),
        operation: "Decrypt".into(),
        keys: [Some(3), None]
            .into_iter()
            .map(|version| AuditKey {
                id: KeyId::new_random(),
                version,
                compromised: version.is_none(),
            })
            .collect(),
        system: Some(SystemId::new_random()),
        outcome: AuditOutcome::Denied,
        error: Some("AccessDeniedException".into()),
        request_id: "req".into(),
        source: None,
        client_request_id: Some("uid-1".into()),
        detail: Some([("kmsRequestId".to_owned(), "r-1".to_owned())].into()),
        prev_hash: "00".into(),
        hash: "01".into(),
    }
}

/// Checks `params` (what the encoder made of `record`) are one per column of
/// `cols`, and decode back to `record` unchanged.
fn round_trip<T: PartialEq + std::fmt::Debug>(
    record: &T,
    params: &[Param<'_>],
    cols: &str,
    decode: fn(&dyn Row) -> kcm_core::store::StoreResult<T>,
) {
    assert_eq!(params.len(), width(cols), "{cols}");
    assert_eq!(&decode(&Cells::of(params)).unwrap(), record);
}

/// `round_trip!(record, encoder, COLS)`: the record's own encoder and decoder
/// (`encoder?` for one that can fail).
macro_rules! round_trip {
    ($r:ident, $f:ident, $cols:ident) => {
        round_trip(&$r, &encode::$f(&$r), cols::$cols, decode::$f)
    };
    ($r:ident, $f:ident?, $cols:ident) => {
        round_trip(&$r, &encode::$f(&$r).unwrap(), cols::$cols, decode::$f)
    };
}

#[test]
fn every_record_round_trips_through_its_columns() {
    let t = tenant();
    round_trip!(t, tenant, TENANT_COLS);

    for k in [
        access_key(
            StoredSecret::Derived {
                kind: CredentialKind::SigV4,
                salt: vec![0; 16],
                verifier: (0..=255).collect(),
            },
            Some(vec!["Encrypt".into(), "Decrypt".into()]),
        ),
        access_key(
            StoredSecret::Derived {
                kind: CredentialKind::Xks,
                salt: vec![3; 16],
                verifier: vec![4; 32],
            },
            Some(vec!["XksEncrypt".into()]),
        ),
        access_key(
            StoredSecret::Derived {
                kind: CredentialKind::Vault,
                salt: vec![5; 16],
                verifier: vec![6; 32],
            },
            Some(vec!["Encrypt".into(), "Decrypt".into()]),
        ),
        access_key(StoredSecret::Sealed(vec![9; 40]), Some(vec![])),
        access_key(StoredSecret::Sealed(vec![]), None),
    ] {
        round_trip!(k, access_key?, ACCESS_KEY_COLS);
    }

    let r = RootKeyRecord {
        id: RootKeyId::new_random(),
        tenant_id: None,
        keystore: "software".into(),
        handle: (0..=255).collect(),
        origin: RootKeyOrigin::External,
        lifecycle: Lifecycle::stored(KeyState::Suspended),
        description: "root".into(),
        created_at: 7,
    };
    round_trip!(r, root_key, ROOT_KEY_COLS);

    let s = SystemRecord {
        id: SystemId::new_random(),
        tenant_id: TenantId::new_random(),
        name: "default".into(),
        kind: "kubernetes".into(),
        description: String::new(),
        region: "eu-west-1".into(),
        labels: [("team".into(), "a".into())].into(),
        active_key_version: 2,
        created_at: 8,
    };
    round_trip!(s, system, SYSTEM_COLS);

    let sk = SystemKeyRecord {
        system_id: s.id,
        version: 2,
        root_key_id: r.id,
        wrapped: vec![1, 2, 3],
        lifecycle: Lifecycle::stored(KeyState::Active),
        created_at: 9,
    };
    round_trip!(sk, system_key, SYSTEM_KEY_COLS);

    for k in [service_key(true), service_key(false)] {
        round_trip!(k, service_key, SERVICE_KEY_COLS);
    }

    for import_check in [None, Some("ab".repeat(32))] {
        let v = KeyVersionRecord {
            key_id: KeyId::new_random(),
            version: 3,
            system_key_version: 13,
            wrapped: vec![0; 60],
            origin: VersionOrigin::OnDemandRotation,
            created_at: 10,
            import_check,
        };
        round_trip!(v, key_version, KEY_VERSION_COLS);
    }

    let a = AliasRecord {
        tenant_id: t.id,
        name: "alias/a".into(),
        key_id: KeyId::new_random(),
        created_at: 11,
        updated_at: 12,
    };
    round_trip!(a, alias, ALIAS_COLS);

    for operations in [
        [Op::Encrypt, Op::Decrypt, Op::RetireGrant]
            .into_iter()
            .collect(),
        OpSet::EMPTY,
    ] {
        let g = grant(operations);
        round_trip!(g, grant, GRANT_COLS);
    }

    for chain in [None, Some(t.id)] {
        let r = audit_record(chain, 42);
        let mut p = encode::audit_record(&r).unwrap().to_vec();
        assert_eq!(p.len(), width(cols::AUDIT_RECORD_WRITTEN_COLS));
        // `key_ids` is written for searches and never read back.
        assert_eq!(p.remove(8), Param::Text(Some(Cow::Owned(key_ids(&r)))));
        round_trip(&r, &p, cols::AUDIT_RECORD_COLS, decode::audit_record);

        let c = AuditCheckpoint {
            tenant: chain,
            seq: 42,
            hash: "01".into(),
            time: 14,
            signature: "ab".repeat(64),
        };
        round_trip!(c, audit_checkpoint?, AUDIT_CHECKPOINT_COLS);
    }
}

#[test]
fn managed_objects_round_trip_through_their_columns() {
    for o in [managed_object(true), managed_object(false)] {
        round_trip!(o, managed_object, MANAGED_OBJECT_COLS);
    }
    let empty = ManagedObjectRecord {
        payload: Some(SealedPayload {
            system_key_version: 0,
            sealed: vec![],
        }),
        ..managed_object(false)
    };
    round_trip!(empty, managed_object, MANAGED_OBJECT_COLS);
    for kind in ALL_OBJECT_KINDS {
        let o = ManagedObjectRecord {
            kind,
            ..managed_object(true)
        };
        round_trip!(o, managed_object, MANAGED_OBJECT_COLS);
    }
}

fn key_ids(r: &AuditRecord) -> String {
    let ids: Vec<String> = r.keys.iter().map(|k| k.id.to_string()).collect();
    format!(",{},", ids.join(","))
}

/// The forms other programs (and the other store, through a snapshot) rely on.
#[test]
fn stored_forms_are_as_documented() {
    let r = audit_record(None, 1);
    let p = encode::audit_record(&r).unwrap();
    assert_eq!(
        p[0],
        Param::Text(Some(Cow::Borrowed(""))),
        "operator's chain"
    );
    let json = p[7].as_text().flatten().unwrap();
    assert!(
        json.starts_with('[') && json.contains("\"compromised\":true"),
        "{json}"
    );
    let bare = AuditRecord { keys: vec![], ..r };
    assert_eq!(
        encode::audit_record(&bare).unwrap()[8].as_text(),
        Some(Some(","))
    );

    let t = TenantId::new_random();
    assert_eq!(encode::chain_key(Some(t)), t.to_string());

    let k = access_key(
        StoredSecret::Derived {
            kind: CredentialKind::SigV4,
            salt: vec![1],
            verifier: vec![2],
        },
        Some(vec!["Encrypt".into(), "Decrypt".into()]),
    );
    let p = encode::access_key(&k).unwrap();
    assert_eq!(
        p[4],
        Param::Blob(Some(&[])),
        "a derived secret seals nothing"
    );
    assert_eq!(p[10].as_text(), Some(Some("Encrypt,Decrypt")));

    let g = grant([Op::Decrypt, Op::Encrypt].into_iter().collect());
    let names = encode::grant(&g)[5].clone();
    let names = names.as_text().flatten().unwrap().to_owned();
    let mut parts: Vec<&str> = names.split(',').collect();
    parts.sort_unstable();
    assert_eq!(parts, ["Decrypt", "Encrypt"], "names, not bits");

    let o = managed_object(true);
    let p = encode::managed_object(&o);
    assert_eq!(p[3].as_text(), Some(Some("symmetric")), "the kind's name");
    assert_eq!(p[4].as_text(), Some(Some("active")), "the state's name");
    let json: serde_json::Value = serde_json::from_str(p[7].as_text().flatten().unwrap()).unwrap();
    assert_eq!(json["name"], o.attributes.name.as_str(), "{json}");
    assert_eq!(json["acl"]["project_access"], false, "{json}");
    assert_eq!(p[8], Param::Integer(Some(i64::from(u32::MAX))));
    let container = managed_object(false);
    let bare = encode::managed_object(&container);
    assert_eq!(
        (&bare[8], &bare[9]),
        (&Param::Integer(None), &Param::Blob(None)),
        "no payload: both NULL"
    );
    // Older or hand-written attributes may lack fields: they take their defaults.
    let mut p = bare.to_vec();
    p[7] = Param::Text(Some("{\"name\":\"n\"}".into()));
    let read = decode::managed_object(&Cells::of(&p)).unwrap();
    assert_eq!(read.attributes.name, "n");
    assert_eq!(read.attributes.acl, ObjectAcl::default());

    assert_eq!(encode::seq_bound(u64::MAX), i64::MAX);
    assert_eq!(encode::limit(usize::MAX), i64::MAX);
    assert_eq!(encode::limit(5), 5);
}

#[test]
fn values_the_schema_cannot_hold_are_unencodable() {
    for bad in ["Encrypt,Decrypt", ""] {
        let k = access_key(
            StoredSecret::Sealed(vec![]),
            Some(vec!["DescribeKey".into(), bad.into()]),
        );
        match encode::access_key(&k) {
            Err(e @ StoreError::Unencodable(_)) => {
                assert!(e.to_string().contains("cannot be stored"), "{e}")
            }
            other => panic!("expected Unencodable, got {other:?}"),
        }
    }
    let past = i64::MAX as u64 + 1;
    assert!(matches!(
        encode::audit_record(&audit_record(None, past)),
        Err(StoreError::Unencodable(_))
    ));
    let c = AuditCheckpoint {
        tenant: None,
        seq: past,
        hash: String::new(),
        time: 0,
        signature: String::new(),
    };
    assert!(matches!(
        encode::audit_checkpoint(&c),
        Err(StoreError::Unencodable(_))
    ));
}

/// Every way a row can be wrong is `Corrupt`, naming the field (and the value,
/// where there is one).
#[test]
fn undecodable_rows_are_corrupt_naming_the_field() {
    let k = service_key(true);
    let good = || encode::service_key(&k).to_vec();

    let mut p = good();
    p[7] = Param::Text(Some("melted".into()));
    corrupt_naming(decode::service_key(&Cells::of(&p)), "melted");

    let mut p = good();
    p[3] = Param::Text(None);
    corrupt_naming(decode::service_key(&Cells::of(&p)), "description: NULL");

    let mut p = good();
    p[12] = Param::Integer(Some(i64::from(u32::MAX) + 1));
    corrupt_naming(decode::service_key(&Cells::of(&p)), "primary version");

    let mut p = good();
    p[10] = Param::Integer(Some(-1));
    corrupt_naming(decode::service_key(&Cells::of(&p)), "rotation period");

    let mut p = good();
    p[11] = Param::Integer(None);
    corrupt_naming(decode::service_key(&Cells::of(&p)), "not both set");

    let mut p = good();
    p[13] = Param::Text(Some("not json".into()));
    corrupt_naming(decode::service_key(&Cells::of(&p)), "tags");

    let mut p = good();
    p[8] = Param::Text(Some("yesterday".into()));
    corrupt_naming(
        decode::service_key(&Cells::of(&p)),
        "created_at: column 8 is not an integer",
    );

    let half = access_key(
        StoredSecret::Derived {
            kind: CredentialKind::SigV4,
            salt: vec![1],
            verifier: vec![2],
        },
        None,
    );
    let mut p = encode::access_key(&half).unwrap().to_vec();
    p[9] = Param::Blob(None);
    corrupt_naming(decode::access_key(&Cells::of(&p)), "salt and verifier");

    let record = audit_record(None, 1);
    let mut p = encode::audit_record(&record).unwrap().to_vec();
    p.remove(8);
    p[0] = Param::Text(Some("no-tenant".into()));
    corrupt_naming(decode::audit_record(&Cells::of(&p)), "no-tenant");
    p[0] = Param::Text(Some(String::new().into()));
    p[1] = Param::Integer(Some(-1));
    corrupt_naming(decode::audit_record(&Cells::of(&p)), "seq");

    let g = grant(OpSet::EMPTY);
    let mut p = encode::grant(&g).to_vec();
    p[5] = Param::Text(Some("Encrypt,Fly".into()));
    corrupt_naming(decode::grant(&Cells::of(&p)), "Fly");

    let o = managed_object(true);
    let good = || encode::managed_object(&o).to_vec();
    for (idx, half) in [(8, Param::Integer(None)), (9, Param::Blob(None))] {
        let mut p = good();
        p[idx] = half;
        corrupt_naming(decode::managed_object(&Cells::of(&p)), "not both set");
    }
    let container = managed_object(false);
    let mut p = encode::managed_object(&container).to_vec();
    p[9] = Param::Blob(Some(&[1]));
    corrupt_naming(decode::managed_object(&Cells::of(&p)), "not both set");

    for bad in ["not json", "7", "{\"bit_length\":-1}", "{\"name\":7}"] {
        let mut p = good();
        p[7] = Param::Text(Some(bad.into()));
        corrupt_naming(decode::managed_object(&Cells::of(&p)), "object attributes");
    }
    let mut p = good();
    p[7] = Param::Text(None);
    corrupt_naming(
        decode::managed_object(&Cells::of(&p)),
        "object attributes: NULL",
    );

    let mut p = good();
    p[3] = Param::Text(Some("cheese".into()));
    corrupt_naming(decode::managed_object(&Cells::of(&p)), "cheese");

    let mut p = good();
    p[4] = Param::Text(Some("melted".into()));
    corrupt_naming(decode::managed_object(&Cells::of(&p)), "melted");

    let mut p = good();
    p[8] = Param::Integer(Some(-1));
    corrupt_naming(
        decode::managed_object(&Cells::of(&p)),
        "payload system key version",
    );

    let mut p = good();
    p[0] = Param::Text(Some("not-a-uuid".into()));
    corrupt_naming(decode::managed_object(&Cells::of(&p)), "object id");

    corrupt_naming(decode::tenant(&Cells(vec![])), "tenant id: no column 0");
}
