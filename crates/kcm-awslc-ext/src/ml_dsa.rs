//! ML-DSA (FIPS 204) over an external μ, which aws-lc-rs does not expose: the caller
//! has computed the message representative μ = SHAKE256(SHAKE256(pk, 64) ‖ 0 ‖ 0 ‖ M,
//! 64) itself (FIPS 204 §6.2, empty context), and the key signs or verifies μ. Goes
//! through AWS-LC's EVP interface, whose sign and verify take μ for ML-DSA keys.
//!
//! Keys come as DER, as aws-lc-rs encodes them: the private key as PKCS#8, the
//! public key as SubjectPublicKeyInfo. Each call parses the key, checks that it is an
//! ML-DSA key that spans the whole input, and frees it before returning.
#![allow(unsafe_code)]

use std::ptr::NonNull;

use aws_lc_sys as lc;

use crate::Error;

/// Bytes of μ, the message representative of FIPS 204.
pub const MU_LEN: usize = 64;
/// Bytes of the largest ML-DSA signature (ML-DSA-87).
pub const MAX_SIGNATURE_LEN: usize = 4627;

/// The ML-DSA signature of `mu` under the private key `private_key_pkcs8` (PKCS#8
/// DER of an ML-DSA-44, -65 or -87 key).
pub fn sign_external_mu(private_key_pkcs8: &[u8], mu: &[u8; MU_LEN]) -> Result<Vec<u8>, Error> {
    let key = Key::parse_private(private_key_pkcs8).ok_or(Error::KeyRejected("ML-DSA private"))?;
    let ctx = Context::new(&key).ok_or(Error::Failed("make an ML-DSA signing context"))?;
    let mut signature = vec![0u8; MAX_SIGNATURE_LEN];
    let mut len = signature.len();
    // SAFETY: `ctx` is a live context for an ML-DSA private key (checked by
    // `parse_private`); AWS-LC writes at most `len` bytes to `signature`, whose length
    // `len` is, and reads MU_LEN bytes of `mu`, an array of that length. On success it
    // sets `len` to the signature's length.
    let ok = unsafe {
        lc::EVP_PKEY_sign_init(ctx.0.as_ptr()) == 1
            && lc::EVP_PKEY_sign(
                ctx.0.as_ptr(),
                signature.as_mut_ptr(),
                &mut len,
                mu.as_ptr(),
                MU_LEN,
            ) == 1
    };
    if !ok || len > MAX_SIGNATURE_LEN {
        clear_errors();
        return Err(Error::Failed("sign an external mu"));
    }
    signature.truncate(len);
    Ok(signature)
}

/// Whether `signature` is valid for `mu` under the public key `public_key_spki`
/// (SubjectPublicKeyInfo DER of an ML-DSA key). Anything that is not an ML-DSA key,
/// and a signature of impossible length, is simply invalid.
pub fn verify_external_mu(public_key_spki: &[u8], mu: &[u8; MU_LEN], signature: &[u8]) -> bool {
    if signature.is_empty() || signature.len() > MAX_SIGNATURE_LEN {
        return false;
    }
    let Some(key) = Key::parse_public(public_key_spki) else {
        return false;
    };
    let Some(ctx) = Context::new(&key) else {
        return false;
    };
    // SAFETY: `ctx` is a live context for an ML-DSA public key (checked by
    // `parse_public`); AWS-LC reads `signature.len()` bytes of `signature` and MU_LEN
    // bytes of `mu`, an array of that length.
    let ok = unsafe {
        lc::EVP_PKEY_verify_init(ctx.0.as_ptr()) == 1
            && lc::EVP_PKEY_verify(
                ctx.0.as_ptr(),
                signature.as_ptr(),
                signature.len(),
                mu.as_ptr(),
                MU_LEN,
            ) == 1
    };
    if !ok {
        clear_errors();
    }
    ok
}

/// Clears this thread's AWS-LC error queue after a failed call, so the failure is not
/// reported again by the next aws-lc-rs call on the thread.
fn clear_errors() {
    // SAFETY: takes no arguments and touches only the thread-local error queue.
    unsafe { lc::ERR_clear_error() }
}

/// An ML-DSA `EVP_PKEY` owned here: freed exactly once, when dropped. AWS-LC clears a
/// key's memory when it frees it.
struct Key(NonNull<lc::EVP_PKEY>);

impl Key {
    fn parse_private(der: &[u8]) -> Option<Self> {
        Self::parse(der, lc::EVP_parse_private_key)
    }

    fn parse_public(der: &[u8]) -> Option<Self> {
        Self::parse(der, lc::EVP_parse_public_key)
    }

    /// Parses `der` with `parse`; `None` unless it is one ML-DSA key and nothing more.
    fn parse(
        der: &[u8],
        parse: unsafe extern "C" fn(*mut lc::CBS) -> *mut lc::EVP_PKEY,
    ) -> Option<Self> {
        let mut cbs = lc::CBS {
            data: std::ptr::null(),
            len: 0,
        };
        // SAFETY: `CBS_init` only records the address and length of `der`, which
        // outlives `cbs`; `parse` reads at most `der.len()` bytes through it, advances
        // it past what it consumed, and returns a new EVP_PKEY that we then own, or
        // null.
        let parsed = unsafe {
            lc::CBS_init(&mut cbs, der.as_ptr(), der.len());
            parse(&mut cbs)
        };
        let Some(key) = NonNull::new(parsed).map(Key) else {
            clear_errors();
            return None;
        };
        // Bytes after the key would be ignored by AWS-LC: refuse them instead.
        let whole = cbs.len == 0;
        // SAFETY: `key` is a live EVP_PKEY (non-null, owned by us until dropped).
        let ml_dsa = unsafe { lc::EVP_PKEY_id(key.0.as_ptr()) } == lc::EVP_PKEY_PQDSA;
        (whole && ml_dsa).then_some(key)
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from an EVP parse function, which handed us its one
        // reference; it is released here once. A `Context` made from it holds its own
        // reference, so the order in which the two are dropped does not matter.
        unsafe { lc::EVP_PKEY_free(self.0.as_ptr()) }
    }
}

/// An `EVP_PKEY_CTX` for a [`Key`], owned here and freed when dropped.
struct Context(NonNull<lc::EVP_PKEY_CTX>);

impl Context {
    fn new(key: &Key) -> Option<Self> {
        // SAFETY: `key.0` is a live EVP_PKEY; the new context takes its own reference
        // to it (so it stays valid while the context lives). No engine (null).
        let ctx = unsafe { lc::EVP_PKEY_CTX_new(key.0.as_ptr(), std::ptr::null_mut()) };
        let ctx = NonNull::new(ctx).map(Context);
        if ctx.is_none() {
            clear_errors();
        }
        ctx
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from EVP_PKEY_CTX_new and is freed here once.
        unsafe { lc::EVP_PKEY_CTX_free(self.0.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{self, KeyPair, PqdsaKeyPair};

    fn key_pair(algorithm: &'static signature::PqdsaSigningAlgorithm) -> (Vec<u8>, Vec<u8>) {
        let pair = PqdsaKeyPair::generate(algorithm).unwrap();
        der(&pair)
    }

    /// (PKCS#8, SubjectPublicKeyInfo) of `pair`.
    fn der(pair: &PqdsaKeyPair) -> (Vec<u8>, Vec<u8>) {
        let pkcs8 = pair.to_pkcs8v1().unwrap().as_ref().to_vec();
        let spki = pair.public_key().as_der().unwrap().as_ref().to_vec();
        (pkcs8, spki)
    }

    #[test]
    fn every_parameter_set_signs_and_verifies_a_mu() {
        for algorithm in [
            &signature::ML_DSA_44_SIGNING,
            &signature::ML_DSA_65_SIGNING,
            &signature::ML_DSA_87_SIGNING,
        ] {
            let (pkcs8, spki) = key_pair(algorithm);
            let mu = [7u8; MU_LEN];
            let signature = sign_external_mu(&pkcs8, &mu).unwrap();
            assert!(verify_external_mu(&spki, &mu, &signature));
            assert!(!verify_external_mu(&spki, &[8u8; MU_LEN], &signature));
            let mut flipped = signature.clone();
            flipped[0] ^= 1;
            assert!(!verify_external_mu(&spki, &mu, &flipped));
            assert!(!verify_external_mu(&spki, &mu, &signature[1..]));
            assert!(!verify_external_mu(&spki, &mu, &[]));
        }
    }

    /// μ of FIPS 204 for the message `kcm external mu` (empty context) under the
    /// ML-DSA-44 key of seed [0x42; 32], computed apart from AWS-LC (Python's
    /// `hashlib.shake_256`: SHAKE256(SHAKE256(pk, 64) ‖ 00 00 ‖ M, 64)).
    const MU_OF_MESSAGE: &str = "37b00e1d6d7de0faca07e5bd2b24ed5d3c0eede27e95a5661314c5c5632224f3\
                                 13ec8bbfbdf41c3f8f5a9648b527f1a8c16d6d7f251c0c3c025691fa1fae0940";

    #[test]
    fn a_signature_of_the_mu_of_a_message_is_a_signature_of_the_message() {
        let pair = PqdsaKeyPair::from_seed(&signature::ML_DSA_44_SIGNING, &[0x42; 32]).unwrap();
        let (pkcs8, spki) = der(&pair);
        let mu: [u8; MU_LEN] = hex::decode(MU_OF_MESSAGE).unwrap().try_into().unwrap();
        let message = b"kcm external mu";

        let over_mu = sign_external_mu(&pkcs8, &mu).unwrap();
        signature::UnparsedPublicKey::new(&signature::ML_DSA_44, &spki)
            .verify(message, &over_mu)
            .expect("aws-lc-rs verifies the message");

        let mut over_message = vec![0u8; MAX_SIGNATURE_LEN];
        let len = pair.sign(message, &mut over_message).unwrap();
        assert!(verify_external_mu(&spki, &mu, &over_message[..len]));
    }

    #[test]
    fn keys_that_are_not_ml_dsa_are_refused() {
        use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
        let mu = [1u8; MU_LEN];
        let ecdsa = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let ed25519 = Ed25519KeyPair::generate().unwrap();
        for (pkcs8, spki) in [
            (
                ecdsa.to_pkcs8v1().unwrap().as_ref().to_vec(),
                ecdsa.public_key().as_der().unwrap().as_ref().to_vec(),
            ),
            (
                ed25519.to_pkcs8v1().unwrap().as_ref().to_vec(),
                ed25519.public_key().as_der().unwrap().as_ref().to_vec(),
            ),
        ] {
            assert_eq!(
                sign_external_mu(&pkcs8, &mu),
                Err(Error::KeyRejected("ML-DSA private"))
            );
            assert!(!verify_external_mu(&spki, &mu, &[0u8; 64]));
        }
    }

    #[test]
    fn malformed_encodings_are_refused() {
        let (pkcs8, spki) = key_pair(&signature::ML_DSA_44_SIGNING);
        let mu = [2u8; MU_LEN];
        let signature = sign_external_mu(&pkcs8, &mu).unwrap();
        for bad in [
            Vec::new(),
            b"not DER".to_vec(),
            pkcs8[..pkcs8.len() - 1].to_vec(),
            [pkcs8.as_slice(), &[0]].concat(),
            spki.clone(),
        ] {
            assert!(sign_external_mu(&bad, &mu).is_err(), "{} bytes", bad.len());
        }
        for bad in [
            Vec::new(),
            spki[..spki.len() - 1].to_vec(),
            [spki.as_slice(), &[0]].concat(),
            pkcs8.clone(),
        ] {
            assert!(
                !verify_external_mu(&bad, &mu, &signature),
                "{} bytes",
                bad.len()
            );
        }
        assert!(verify_external_mu(&spki, &mu, &signature));
        let too_long = vec![0u8; MAX_SIGNATURE_LEN + 1];
        assert!(!verify_external_mu(&spki, &mu, &too_long));
    }
}
