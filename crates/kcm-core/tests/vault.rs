//! What the Vault-compatible door relies on in the core, against the real embedded
//! store and software keystore: the key-value store of versioned secrets (values
//! sealed, check-and-set decided under the change lock against concurrent writers,
//! the kill switch, roles, isolation from the other doors' objects and between
//! systems), and login sessions (issued for a Vault token's access key, forgery and
//! expiry refused, cut off with their access key).

use std::sync::Arc;
use std::time::Duration;

use kcm_core::authz::Caller;
use kcm_core::error::ErrorKind;
use kcm_core::kv::KvVersionAction;
use kcm_core::model::*;
use kcm_core::secret::SecretBytes;
use kcm_core::service::{FederatedLogin, KvPath, ObjectFilter, RootKeyChange};
use kcm_core::store::Store;
use kcm_test_support::service::ServiceFixture;

const BOUND: Duration = Duration::from_millis(40);

async fn fixture() -> ServiceFixture {
    ServiceFixture::with_revocation_bound(BOUND).await
}

async fn project_user(f: &ServiceFixture, project: &str, role: Role) -> Caller {
    let tenant = f.admin.principal.tenant_id.unwrap();
    let login = FederatedLogin {
        provider: "keystone".into(),
        user_id: format!("{project}-user"),
        tenant: f.store.tenant(tenant).await.unwrap().unwrap().name,
        project_id: project.into(),
        project_name: project.into(),
        root_key: None,
        role,
    };
    Caller::new(f.service.federated_principal(&login).await.unwrap())
}

fn at<'a>(caller: &Caller, path: &'a str) -> KvPath<'a> {
    KvPath {
        system: caller.principal.system_scope.unwrap(),
        mount: "secret",
        path,
    }
}

fn value(s: &str) -> SecretBytes {
    SecretBytes::copy_from(s.as_bytes())
}

async fn read(f: &ServiceFixture, caller: &Caller, path: &str) -> Result<String, ErrorKind> {
    f.service
        .kv_read(caller, at(caller, path), None)
        .await
        .map(|(_, v)| String::from_utf8(v.expose_secret().to_vec()).unwrap())
        .map_err(|e| e.kind())
}

#[tokio::test]
async fn values_are_sealed_versioned_and_listed() {
    let f = fixture().await;
    let alice = project_user(&f, "p1", Role::KeyUser).await;
    let plaintext = r#"{"key":"c2VjcmV0IHZvbHVtZSBwYXNzcGhyYXNl"}"#;
    for (i, v) in ["first", plaintext].iter().enumerate() {
        let info = f
            .service
            .kv_write(&alice, at(&alice, "csi/vol-1"), value(v), None)
            .await
            .unwrap();
        assert_eq!(info.version, i as u64 + 1);
    }
    assert_eq!(read(&f, &alice, "csi/vol-1").await.unwrap(), plaintext);
    let (old, v1) = f
        .service
        .kv_read(&alice, at(&alice, "csi/vol-1"), Some(1))
        .await
        .unwrap();
    assert_eq!((old.version, v1.expose_secret()), (1, &b"first"[..]));

    // Nothing of the value, the history or the path's versions is in plaintext.
    let system = alice.principal.system_scope.unwrap();
    let records = f.store.managed_objects(system).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].kind, ObjectKind::VersionedSecret);
    assert_eq!(records[0].attributes.name, "secret/csi/vol-1");
    let sealed = &records[0].payload.as_ref().unwrap().sealed;
    for needle in [&b"first"[..], b"c2VjcmV0", b"Zmlyc3Q"] {
        assert!(!sealed.windows(needle.len()).any(|w| w == needle));
    }

    // The other doors do not see it: it is the key-value store's alone.
    let listed = f
        .service
        .list_objects(
            &alice,
            system,
            &ObjectFilter {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.total, 0);
    let by_id = f.service.object_payload(&alice, records[0].id).await;
    assert_eq!(by_id.unwrap_err().kind(), ErrorKind::NotFound);

    f.service
        .kv_write(&alice, at(&alice, "csi/vol-2"), value("x"), None)
        .await
        .unwrap();
    f.service
        .kv_write(&alice, at(&alice, "top"), value("x"), None)
        .await
        .unwrap();
    let list = |prefix: &'static str| {
        let f = &f;
        let alice = &alice;
        async move {
            f.service
                .kv_list(alice, system, "secret", prefix)
                .await
                .unwrap()
        }
    };
    assert_eq!(list("").await, ["csi/", "top"]);
    assert_eq!(list("csi/").await, ["vol-1", "vol-2"]);
    assert!(f
        .service
        .kv_list(&alice, system, "other", "")
        .await
        .unwrap()
        .is_empty());

    f.service
        .kv_delete(&alice, at(&alice, "csi/vol-1"))
        .await
        .unwrap();
    assert_eq!(
        read(&f, &alice, "csi/vol-1").await.unwrap_err(),
        ErrorKind::NotFound
    );
    assert_eq!(list("csi/").await, ["vol-2"]);
}

#[tokio::test]
async fn concurrent_check_and_set_writers_win_once() {
    let f = Arc::new(fixture().await);
    let alice = Arc::new(project_user(&f, "p1", Role::KeyUser).await);
    f.service
        .kv_write(&alice, at(&alice, "counter"), value("0"), Some(0))
        .await
        .unwrap();
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let (f, alice) = (f.clone(), alice.clone());
            tokio::spawn(async move {
                f.service
                    .kv_write(
                        &alice,
                        at(&alice, "counter"),
                        value(&i.to_string()),
                        Some(1),
                    )
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for w in writers {
        match w.await.unwrap() {
            Ok(info) => {
                assert_eq!(info.version, 2);
                won += 1;
            }
            Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidState, "{e}"),
        }
    }
    assert_eq!(won, 1, "exactly one writer replaces version 1");
    let meta = f
        .service
        .kv_metadata(&alice, at(&alice, "counter"))
        .await
        .unwrap();
    assert_eq!(meta.current_version, 2);
}

#[tokio::test]
async fn the_kill_switch_cuts_off_values_and_history() {
    let f = fixture().await;
    let alice = project_user(&f, "p1", Role::KeyUser).await;
    f.service
        .kv_write(&alice, at(&alice, "k"), value("v"), None)
        .await
        .unwrap();
    let root = f.default_root_id().await;
    f.service
        .change_root_key_state(&f.admin, &root, RootKeyChange::Disable, false)
        .await
        .unwrap();
    tokio::time::sleep(BOUND * 2).await;
    assert_eq!(
        read(&f, &alice, "k").await.unwrap_err(),
        ErrorKind::KeyDisabled
    );
    let meta = f.service.kv_metadata(&alice, at(&alice, "k")).await;
    assert_eq!(meta.unwrap_err().kind(), ErrorKind::KeyDisabled);
    let write = f
        .service
        .kv_write(&alice, at(&alice, "new"), value("v"), None)
        .await;
    assert!(write.is_err());
    f.service
        .change_root_key_state(&f.admin, &root, RootKeyChange::Enable, false)
        .await
        .unwrap();
    tokio::time::sleep(BOUND * 2).await;
    assert_eq!(read(&f, &alice, "k").await.unwrap(), "v");
}

#[tokio::test]
async fn roles_and_systems_bound_who_reads_what() {
    let f = fixture().await;
    let alice = project_user(&f, "p1", Role::KeyUser).await;
    let auditor = project_user(&f, "p1", Role::Auditor).await;
    let bob = project_user(&f, "p2", Role::KeyUser).await;
    f.service
        .kv_write(&alice, at(&alice, "k"), value("v"), None)
        .await
        .unwrap();
    // An auditor sees the history, not the value, and writes nothing.
    let meta = f
        .service
        .kv_metadata(&auditor, at(&alice, "k"))
        .await
        .unwrap();
    assert_eq!(meta.current_version, 1);
    let denied = f.service.kv_read(&auditor, at(&alice, "k"), None).await;
    assert_eq!(denied.unwrap_err().kind(), ErrorKind::AccessDenied);
    let denied = f
        .service
        .kv_write(&auditor, at(&alice, "k"), value("w"), None)
        .await;
    assert_eq!(denied.unwrap_err().kind(), ErrorKind::AccessDenied);
    // Another project neither reads nor writes it, even naming alice's system.
    assert_eq!(
        f.service
            .kv_read(&bob, at(&alice, "k"), None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::AccessDenied
    );
    assert_eq!(
        f.service
            .kv_write(&bob, at(&alice, "k"), value("w"), None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::AccessDenied
    );
    // The same path in bob's system is another entry.
    assert_eq!(read(&f, &bob, "k").await.unwrap_err(), ErrorKind::NotFound);
    // Destroying needs deletion rights and removes the value for good.
    f.service
        .kv_change_versions(&alice, at(&alice, "k"), KvVersionAction::Destroy, &[1])
        .await
        .unwrap();
    let stored = f
        .store
        .managed_objects(alice.principal.system_scope.unwrap())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        read(&f, &alice, "k").await.unwrap_err(),
        ErrorKind::NotFound
    );
    let bad = f
        .service
        .kv_write(&alice, at(&alice, "../k"), value("v"), None)
        .await;
    assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn login_sessions_act_as_their_access_key_until_they_expire_or_it_is_disabled() {
    let f = fixture().await;
    let tenant_admin = &f.admin;
    let system = f
        .service
        .create_system(
            tenant_admin,
            &kcm_core::service::NewSystem {
                name: "csi".into(),
                kind: "kubernetes".into(),
                description: String::new(),
                region: String::new(),
                labels: Default::default(),
                link: true,
                root_key: None,
            },
        )
        .await
        .unwrap();
    let made = f
        .service
        .create_vault_token(tenant_admin, "csi", Role::KeyUser, None, String::new())
        .await
        .unwrap();
    let id = made.info.id.clone();
    let session = f
        .service
        .issue_vault_session(&id, Duration::from_secs(60))
        .await
        .unwrap();
    let token = session.token.expose_secret();
    assert!(token.starts_with("kcms."));
    let principal = f.service.authenticate_vault_token(token).await.unwrap();
    assert_eq!(principal.access_key_id, id);
    assert_eq!(principal.system_scope, Some(system.record.id));
    // A changed expiry, id or tag is refused.
    let parts: Vec<&str> = token.split('.').collect();
    let later = format!(
        "kcms.{}.{}.{}",
        parts[1],
        parts[2].parse::<i64>().unwrap() + 1,
        parts[3]
    );
    let mut tag = parts[3].to_owned();
    tag.replace_range(0..1, if tag.starts_with('A') { "B" } else { "A" });
    let forged = format!("kcms.{}.{}.{tag}", parts[1], parts[2]);
    for bad in [later.as_str(), forged.as_str(), "kcms.x", "kcms...."] {
        let e = f.service.authenticate_vault_token(bad).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownAccessKey, "{bad}");
    }
    // Only a Vault token's access key gets a session, for at most a day.
    let sigv4 = f.admin.principal.access_key_id.clone();
    let e = f
        .service
        .issue_vault_session(&sigv4, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AccessDenied);
    assert!(f
        .service
        .issue_vault_session(&id, kcm_core::service::MAX_SESSION * 2)
        .await
        .is_err());
    // An expired session is refused.
    let short = f
        .service
        .issue_vault_session(&id, Duration::from_millis(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(f
        .service
        .authenticate_vault_token(short.token.expose_secret())
        .await
        .is_err());
    // Disabling the access key cuts its sessions off.
    f.service
        .set_access_key_enabled(tenant_admin, &id, false)
        .await
        .unwrap();
    tokio::time::sleep(BOUND * 2).await;
    assert!(f.service.authenticate_vault_token(token).await.is_err());
}
