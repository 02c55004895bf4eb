use super::*;
use std::os::unix::fs::PermissionsExt;

fn file_source(dir: &Path) -> MasterKeySource {
    MasterKeySource::File(dir.join("master.key"))
}

#[tokio::test]
async fn wrap_unwrap_round_trip_and_aad_binding() {
    let dir = tempfile::tempdir().unwrap();
    let ks = SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap();
    let handle = ks.create_root_key("root-1").await.unwrap();
    let secret = SecretBytes::random(32);
    let wrapped = ks.wrap(&handle, &secret, b"aad").await.unwrap();
    assert_eq!(ks.unwrap(&handle, &wrapped, b"aad").await.unwrap(), secret);
    assert!(matches!(
        ks.unwrap(&handle, &wrapped, b"other").await,
        Err(KeystoreError::UnwrapFailed)
    ));
    let mut tampered = handle.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(ks.wrap(&tampered, &secret, b"aad").await.is_err());
}

#[tokio::test]
async fn reopen_with_same_master_key_unwraps_old_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, wrapped, secret) = {
        let ks = SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap();
        let handle = ks.create_root_key("r").await.unwrap();
        let secret = SecretBytes::random(32);
        let wrapped = ks.wrap(&handle, &secret, b"x").await.unwrap();
        (handle, wrapped, secret)
    };
    let ks = SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap();
    assert_eq!(ks.unwrap(&handle, &wrapped, b"x").await.unwrap(), secret);
    let mode = std::fs::metadata(dir.path().join("master.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn handle_from_another_master_key_is_refused() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let ka = SoftwareKeystore::open(a.path(), file_source(a.path())).unwrap();
    let kb = SoftwareKeystore::open(b.path(), file_source(b.path())).unwrap();
    let handle = ka.create_root_key("r").await.unwrap();
    assert!(matches!(
        kb.wrap(&handle, &SecretBytes::random(32), b"").await,
        Err(KeystoreError::KeyUnusable(_))
    ));
}

#[test]
fn world_readable_master_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap());
    let path = dir.path().join("master.key");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[test]
fn replaced_master_key_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap());
    files::write_private_atomically(
        &dir.path().join("master.key"),
        hex::encode([7u8; 32]).as_bytes(),
    )
    .unwrap();
    let err = SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
}

#[test]
fn passphrase_source() {
    let dir = tempfile::tempdir().unwrap();
    let pass = |s: &str| MasterKeySource::Passphrase(SecretString::new(s.into()));
    let err = SoftwareKeystore::open(dir.path(), pass("short")).unwrap_err();
    assert!(err.to_string().contains("at least 12"), "{err}");
    SoftwareKeystore::open(dir.path(), pass("correct horse battery")).unwrap();
    SoftwareKeystore::open(dir.path(), pass("correct horse battery")).unwrap();
    let err = SoftwareKeystore::open(dir.path(), pass("wrong horse battery")).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    let err = SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap_err();
    assert!(err.to_string().contains("switching sources"), "{err}");
}

#[test]
fn debug_shows_no_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let ks = SoftwareKeystore::open(dir.path(), file_source(dir.path())).unwrap();
    let master_hex = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    let shown = format!("{ks:?}");
    assert!(!shown.contains(master_hex.trim()), "{shown}");
    assert!(shown.contains("master.key"));
}
