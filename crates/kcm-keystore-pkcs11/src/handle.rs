//! The handle format: the bytes the core stores for a root key, naming which key
//! of the token to use and nothing secret. `0x01 ‖ CKA_ID` for a key kcm made or
//! imported (the CKA_ID is [`KEY_ID_LEN`] random bytes), `0x02 ‖ CKA_ID` for a key
//! kcm only refers to (HYOK), which `destroy` never touches.

use kcm_core::keystore::{KeystoreError, KeystoreResult};

/// Format byte of root key handles kcm made (generated or imported): `[1][CKA_ID]`.
const HANDLE_FORMAT_V1: u8 = 1;
/// Format byte of handles of keys kcm only refers to (HYOK, the customer's own key
/// in the token): `[2][CKA_ID]`. kcm never destroys such a key.
const HANDLE_FORMAT_REFERENCE: u8 = 2;
/// Longest CKA_ID of a referenced key kcm accepts.
pub(crate) const MAX_REFERENCED_ID_LEN: usize = 64;
/// Length of the random CKA_ID given to each root key.
pub const KEY_ID_LEN: usize = 16;

/// A root key's CKA_ID.
pub(crate) type KeyId = Vec<u8>;

/// The CKA_ID of the root key a handle names (see the crate documentation for the
/// handle format); for finding the key with the token's own tools, and for tests.
///
/// Fails with [`KeystoreError::KeyUnusable`] when `handle` is not a handle of this
/// keystore.
pub fn key_id(handle: &[u8]) -> KeystoreResult<Vec<u8>> {
    match handle.split_first() {
        Some((&HANDLE_FORMAT_V1, id)) if id.len() == KEY_ID_LEN => Ok(id.to_vec()),
        Some((&HANDLE_FORMAT_REFERENCE, id)) if (1..=MAX_REFERENCED_ID_LEN).contains(&id.len()) => {
            Ok(id.to_vec())
        }
        _ => Err(bad_handle()),
    }
}

/// Whether `handle` names a key kcm only refers to (the customer's own, HYOK).
pub(crate) fn is_reference(handle: &[u8]) -> bool {
    handle.first() == Some(&HANDLE_FORMAT_REFERENCE)
}

fn bad_handle() -> KeystoreError {
    KeystoreError::KeyUnusable("the handle is not a root key handle of a pkcs11 keystore".into())
}

/// The handle the core stores for the key with `id`.
pub(crate) fn handle_of(id: &[u8]) -> Vec<u8> {
    [&[HANDLE_FORMAT_V1][..], id].concat()
}

/// The handle the core stores for the customer's key with `id`, which kcm only
/// refers to.
pub(crate) fn reference_handle_of(id: &[u8]) -> Vec<u8> {
    [&[HANDLE_FORMAT_REFERENCE][..], id].concat()
}
