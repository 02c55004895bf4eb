//! Backup and restore end to end in the core, on the real SQLite store and the real
//! software keystore: encrypt under many keys (two tenants, aliases, a rotated key),
//! back up while requests go on, destroy the data directory, restore into an empty
//! one with only the master key kept, and decrypt every ciphertext. Also: only the
//! operator may back up; damaged archives and the wrong master key restore nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kcm_core::authz::{Caller, Principal};
use kcm_core::backup::{self, BackupError};
use kcm_core::config::ServiceConfig;
use kcm_core::error::ErrorKind;
use kcm_core::service::{CreateKeyRequest, KeyRef, Service};
use kcm_core::store::Store;
use kcm_test_support::service::{DataDir, ServiceFixture};

/// A bootstrapped service whose data directory is `dir` and master key file `master`.
async fn start(dir: &Path, master: &Path) -> ServiceFixture {
    let data = DataDir::open(dir, master);
    let service = data.service(ServiceConfig::default());
    ServiceFixture::bootstrap(data, service).await
}

fn ctx(i: usize) -> BTreeMap<String, String> {
    [("n".to_string(), i.to_string())].into()
}

/// A ciphertext with what it must decrypt to, and who may decrypt it.
struct Sealed {
    principal: Principal,
    blob: Vec<u8>,
    plaintext: Vec<u8>,
    context: BTreeMap<String, String>,
}

/// Twenty keys in the default tenant and three in a second one; several
/// ciphertexts each; aliases; one key rotated after its first ciphertexts.
async fn populate(r: &ServiceFixture) -> (Vec<Sealed>, Principal, (String, String)) {
    let other = r
        .service
        .create_tenant(&r.operator, "second")
        .await
        .unwrap();
    let other_token = (
        other.access_key.info.id.clone(),
        other.access_key.secret.expose_secret().to_owned(),
    );
    let other_admin = r
        .service
        .credential(&other_token.0)
        .await
        .unwrap()
        .principal
        .clone();
    let mut sealed = Vec::new();
    for (principal, keys) in [(&r.admin.principal, 20), (&other_admin, 3)] {
        for k in 0..keys {
            let info = r
                .service
                .create_key(
                    &Caller::new(principal.clone()),
                    CreateKeyRequest {
                        description: format!("key {k}"),
                        ..CreateKeyRequest::default()
                    },
                )
                .await
                .unwrap();
            let key = KeyRef::Id(info.record.id);
            if k % 5 == 0 {
                r.service
                    .create_alias(
                        &Caller::new(principal.clone()),
                        &format!("alias/k{k}"),
                        &key,
                    )
                    .await
                    .unwrap();
            }
            for i in 0..4 {
                if k == 1 && i == 2 {
                    r.service
                        .rotate_key_on_demand(&Caller::new(principal.clone()), &key)
                        .await
                        .unwrap();
                }
                let plaintext = format!("secret {k}/{i} of {}", principal.account_id).into_bytes();
                let (_, blob) = r
                    .service
                    .encrypt(&Caller::new(principal.clone()), &key, &plaintext, &ctx(i))
                    .await
                    .unwrap();
                sealed.push(Sealed {
                    principal: principal.clone(),
                    blob,
                    plaintext,
                    context: ctx(i),
                });
            }
        }
    }
    (sealed, other_admin, other_token)
}

async fn decrypt_all(service: &Service, sealed: &[Sealed]) {
    for s in sealed {
        let out = service
            .decrypt(&Caller::new(s.principal.clone()), None, &s.blob, &s.context)
            .await
            .unwrap_or_else(|e| panic!("decrypt after restore: {e}"));
        assert_eq!(out.plaintext.expose_secret(), s.plaintext.as_slice());
    }
}

/// A kept copy of the master key file, outside the data directory.
fn keep_master(from: &Path, to: &Path) -> PathBuf {
    let kept = to.join("kept-master.key");
    std::fs::copy(from, &kept).unwrap();
    kept
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_destroy_restore_decrypts_everything() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let running = start(&data, &data.join("master.key")).await;
    let (sealed, other_admin, other_token) = populate(&running).await;

    // Back up while encryptions go on, as on a live server.
    let busy = {
        let service = Arc::clone(&running.service);
        let admin = running.admin.principal.clone();
        tokio::spawn(async move {
            let key = KeyRef::Alias("alias/k0".into());
            for i in 0..50 {
                service
                    .encrypt(&Caller::new(admin.clone()), &key, b"busy", &ctx(i))
                    .await
                    .unwrap();
            }
        })
    };
    let archive = running.service.backup(&running.operator).await.unwrap();
    busy.await.unwrap();
    let total: u64 = archive.tables.iter().map(|(_, n)| n).sum();
    assert!(total > 60, "{:?}", archive.tables);

    // Destroy the data directory; keep only the archive and the master key.
    let kept = keep_master(&data.join("master.key"), root.path());
    let admin_key = running.admin_key.clone();
    let operator = running.operator();
    drop(running);
    std::fs::remove_dir_all(&data).unwrap();

    let restored_dir = root.path().join("restored");
    std::fs::create_dir(&restored_dir).unwrap();
    let restored = DataDir::open(&restored_dir, &kept);
    let report = backup::restore(
        archive.bytes.as_slice(),
        &restored.keystores(),
        restored.store.as_ref(),
    )
    .await
    .unwrap();
    assert_eq!(report.tables, archive.tables);

    let service = restored.service(ServiceConfig::default());
    // Already bootstrapped: the restored store is the old one.
    assert!(!service.bootstrap_if_fresh(|_| Ok(())).await.unwrap());
    decrypt_all(&service, &sealed).await;
    // Access keys (sealed secrets) and aliases came back too.
    let admin = service
        .authenticate_bearer(&admin_key.id, &admin_key.secret)
        .await
        .unwrap();
    assert_eq!(admin.tenant_id, sealed[0].principal.tenant_id);
    assert!(service
        .authenticate_bearer(&admin_key.id, "wrong secret")
        .await
        .is_err());
    let other = service
        .authenticate_bearer(&other_token.0, &other_token.1)
        .await
        .unwrap();
    assert_eq!(other, other_admin);
    let blob = service
        .encrypt(
            &Caller::new(other.clone()),
            &KeyRef::Alias("alias/k0".into()),
            b"new",
            &ctx(0),
        )
        .await
        .unwrap()
        .1;
    let back = service
        .decrypt(&Caller::new(other.clone()), None, &blob, &ctx(0))
        .await
        .unwrap();
    assert_eq!(back.plaintext.expose_secret(), b"new");
    assert_eq!(service.list_tenants(&operator).await.unwrap().len(), 2);
}

#[tokio::test]
async fn only_the_operator_may_back_up() {
    let root = tempfile::tempdir().unwrap();
    let running = start(root.path(), &root.path().join("master.key")).await;
    let e = running.service.backup(&running.admin).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AccessDenied);
    assert!(e.message().contains("back up"), "{}", e.message());
}

#[tokio::test]
async fn damaged_archives_and_the_wrong_master_key_restore_nothing() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let running = start(&data, &data.join("master.key")).await;
    populate(&running).await;
    let archive = running
        .service
        .backup(&running.operator)
        .await
        .unwrap()
        .bytes;
    let kept = keep_master(&data.join("master.key"), root.path());

    let target = root.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let target = DataDir::open(&target, &kept);
    let (ks, fresh) = (target.keystores(), &target.store);
    let mut damaged = Vec::new();
    let mut flipped = archive.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x20;
    damaged.push(("flipped", flipped));
    damaged.push(("truncated", archive[..archive.len() - 100].to_vec()));
    damaged.push(("cut in half", archive[..archive.len() / 2].to_vec()));
    let mut appended = archive.clone();
    appended.extend_from_slice(b"more");
    damaged.push(("appended", appended));
    for (what, bytes) in damaged {
        let e = backup::restore(bytes.as_slice(), &ks, fresh.as_ref())
            .await
            .unwrap_err();
        match (what, &e) {
            ("flipped", BackupError::Modified(m)) => assert!(m.contains("failed authentication")),
            ("truncated" | "cut in half", BackupError::Truncated(_)) => {}
            ("appended", BackupError::Modified(_)) => {}
            _ => panic!("{what}: unexpected {e:?}"),
        }
        assert_eq!(fresh.snapshot().await.unwrap().total_rows(), 0, "{what}");
    }

    // Another master key: a clear refusal, nothing written.
    let elsewhere = root.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let wrong = DataDir::open(&elsewhere, &elsewhere.join("another-master.key")).keystores();
    let e = backup::restore(archive.as_slice(), &wrong, fresh.as_ref())
        .await
        .unwrap_err();
    assert!(matches!(e, BackupError::WrongKeystore(_)), "{e:?}");
    assert!(e
        .to_string()
        .starts_with("the archive was made with a different keystore/master key"));
    assert_eq!(fresh.snapshot().await.unwrap().total_rows(), 0);

    // The intact archive restores; a second restore into the same store is refused.
    backup::restore(archive.as_slice(), &ks, fresh.as_ref())
        .await
        .unwrap();
    let e = backup::restore(archive.as_slice(), &ks, fresh.as_ref())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not empty"), "{e}");
}
