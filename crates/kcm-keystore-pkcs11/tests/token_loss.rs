//! A token that goes away under a running keystore and comes back, on a real
//! SoftHSM2: its files are moved out of the token directory and back, as a token
//! restored from a backup, a remounted volume or a pulled and re-inserted device
//! would look to the module.
//!
//! SoftHSM2 then answers searches with nothing and `C_GetTokenInfo` with
//! `CKR_GENERAL_ERROR`, and sees the token again only once initialised again. The
//! keystore must call that a lost token (retryable `Unavailable`, never
//! `KeyUnusable`, and never a key "already destroyed"), and initialise the module
//! again to find it, without disturbing another keystore on the same module.
//!
//! A binary of its own: re-initialising the module ends every session of the
//! process, which the tests of `softhsm.rs`, running in parallel, must not see.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kcm_core::keystore::{KeystoreError, KeystoreProvider};
use kcm_core::secret::{SecretBytes, SecretString};
use kcm_keystore_pkcs11::{Pkcs11Config, Pkcs11Keystore};
use kcm_test_support::softhsm::{SoftHsm, PIN};

/// How long the keystore may take to use the token again once it is back: the
/// module is initialised again at most once a second; generous for a loaded machine.
const RECOVERY_BOUND: Duration = Duration::from_secs(15);

fn open(hsm: &SoftHsm, label: &str) -> Pkcs11Keystore {
    Pkcs11Keystore::open(Pkcs11Config {
        module: hsm.module().to_owned(),
        token_label: label.to_string(),
        pin: SecretString::new(PIN.to_string()),
        max_sessions: 4,
    })
    .expect("open keystore")
}

/// The directory holding token `label`'s files (SoftHSM2 names it by a UUID).
fn token_dir(hsm: &SoftHsm, label: &str) -> PathBuf {
    let padded = format!("{label:<32}");
    std::fs::read_dir(hsm.dir().join("tokens"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|dir| {
            let object = std::fs::read(dir.join("token.object")).unwrap_or_default();
            object.windows(padded.len()).any(|w| w == padded.as_bytes())
        })
        .unwrap_or_else(|| panic!("no token directory for {label}"))
}

fn secret(bytes: &[u8]) -> SecretBytes {
    SecretBytes::new(bytes.to_vec())
}

fn unavailable<T: std::fmt::Debug>(r: Result<T, KeystoreError>, what: &str) {
    assert!(
        matches!(&r, Err(KeystoreError::Unavailable(_))),
        "{what}: {r:?}"
    );
}

fn move_dir(from: &Path, to: &Path) {
    std::fs::rename(from, to).unwrap_or_else(|e| panic!("mv {from:?} {to:?}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_goes_away_is_unavailable_and_used_again_when_it_is_back() {
    let hsm = SoftHsm::with_tokens(2);
    // Set before the module is loaded (it reads the file at C_Initialize).
    std::env::set_var("SOFTHSM2_CONF", hsm.conf());
    let (lost_label, other_label) = (hsm.token(), hsm.token());
    let lost = open(&hsm, &lost_label);
    let other = open(&hsm, &other_label);
    let root = lost.create_root_key("root-lost").await.unwrap();
    let blob = lost.wrap(&root, &secret(b"kept"), b"aad").await.unwrap();
    let other_root = other.create_root_key("root-other").await.unwrap();
    let other_blob = other
        .wrap(&other_root, &secret(b"other"), b"")
        .await
        .unwrap();

    let dir = token_dir(&hsm, &lost_label);
    let aside = hsm.dir().join("aside");
    move_dir(&dir, &aside);

    // Gone: a retryable error for every call, whatever it is; not "no such key".
    unavailable(lost.unwrap(&root, &blob, b"aad").await, "unwrap");
    unavailable(lost.wrap(&root, &secret(b"x"), b"").await, "wrap");
    unavailable(lost.check_root_key(&root).await, "check");
    unavailable(lost.health().await, "health");
    // A destroy must not pass for done because the token found no key.
    unavailable(lost.destroy(&root).await, "destroy");
    // Past the re-initialisation interval the keystore initialises the module
    // again (the token is still away, so it stays unavailable)...
    tokio::time::sleep(Duration::from_millis(1100)).await;
    unavailable(
        lost.unwrap(&root, &blob, b"aad").await,
        "unwrap after re-init",
    );
    // ...and the other keystore on the module reconnects without a failed call.
    let back = other.unwrap(&other_root, &other_blob, b"").await.unwrap();
    assert_eq!(back.expose_secret(), b"other");

    move_dir(&aside, &dir);
    let started = Instant::now();
    let back = loop {
        match lost.unwrap(&root, &blob, b"aad").await {
            Ok(back) => break back,
            Err(KeystoreError::Unavailable(_)) if started.elapsed() < RECOVERY_BOUND => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the token came back, the keystore did not: {e:?}"),
        }
    };
    assert_eq!(back.expose_secret(), b"kept");
    lost.health().await.unwrap();
    let again = lost.wrap(&root, &secret(b"after"), b"").await.unwrap();
    assert_eq!(
        lost.unwrap(&root, &again, b"")
            .await
            .unwrap()
            .expose_secret(),
        b"after"
    );
    let back = other.unwrap(&other_root, &other_blob, b"").await.unwrap();
    assert_eq!(back.expose_secret(), b"other");
}
