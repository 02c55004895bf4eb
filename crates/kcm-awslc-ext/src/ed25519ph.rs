//! Ed25519ph (RFC 8032 §5.1) with an empty context: Ed25519 over the SHA-512 digest of
//! the message, which aws-lc-rs does not expose. Calls AWS-LC's `ED25519ph_*`
//! functions directly.
#![allow(unsafe_code)]

use aws_lc_sys as lc;
use zeroize::Zeroizing;

use crate::Error;

/// Bytes of an Ed25519 seed (the private key of RFC 8032).
pub const SEED_LEN: usize = 32;
/// Bytes of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Bytes of the SHA-512 digest Ed25519ph signs.
pub const DIGEST_LEN: usize = 64;
/// Bytes of an Ed25519ph signature.
pub const SIGNATURE_LEN: usize = 64;

/// An Ed25519 private key in the form AWS-LC signs with: seed ‖ public key. Built
/// only from the seed, so the public half always belongs to it (AWS-LC signs with the
/// public half as given, and a mismatched one would yield signatures that leak the
/// key). Zeroized on drop; `Debug` shows nothing.
pub struct PrivateKey {
    expanded: Zeroizing<[u8; SEED_LEN + PUBLIC_KEY_LEN]>,
    public: [u8; PUBLIC_KEY_LEN],
}

impl PrivateKey {
    /// The key whose RFC 8032 private key (seed) is `seed`.
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let mut expanded = Zeroizing::new([0u8; SEED_LEN + PUBLIC_KEY_LEN]);
        let mut public = [0u8; PUBLIC_KEY_LEN];
        // SAFETY: AWS-LC reads SEED_LEN bytes of `seed` and writes PUBLIC_KEY_LEN bytes
        // to `public` and 64 to `expanded`; each buffer has exactly that length, and
        // none overlaps another. The function cannot fail (it returns nothing).
        unsafe {
            lc::ED25519_keypair_from_seed(public.as_mut_ptr(), expanded.as_mut_ptr(), seed.as_ptr())
        };
        Self { expanded, public }
    }

    /// The public key (32 bytes, as RFC 8032 encodes it).
    pub fn public_key(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.public
    }

    /// The Ed25519ph signature of `digest`, the SHA-512 digest of the message.
    pub fn sign_digest(&self, digest: &[u8; DIGEST_LEN]) -> Result<[u8; SIGNATURE_LEN], Error> {
        let mut signature = [0u8; SIGNATURE_LEN];
        // SAFETY: AWS-LC writes SIGNATURE_LEN bytes to `signature` and reads DIGEST_LEN
        // bytes of `digest` and 64 of the expanded key; each buffer has that length.
        // The context is empty (null pointer, length 0), which AWS-LC accepts.
        let ok = unsafe {
            lc::ED25519ph_sign_digest(
                signature.as_mut_ptr(),
                digest.as_ptr(),
                self.expanded.as_ptr(),
                std::ptr::null(),
                0,
            )
        };
        if ok == 1 {
            Ok(signature)
        } else {
            // SAFETY: clears this thread's AWS-LC error queue; no pointers involved.
            unsafe { lc::ERR_clear_error() };
            Err(Error::Failed("sign an Ed25519ph digest"))
        }
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ed25519ph::PrivateKey(<redacted>)")
    }
}

/// Whether `signature` is the Ed25519ph signature of `digest` (the SHA-512 digest of
/// the message) under `public_key`. A signature of the wrong length is simply invalid.
pub fn verify_digest(
    public_key: &[u8; PUBLIC_KEY_LEN],
    digest: &[u8; DIGEST_LEN],
    signature: &[u8],
) -> bool {
    let Ok(signature) = <&[u8; SIGNATURE_LEN]>::try_from(signature) else {
        return false;
    };
    // SAFETY: AWS-LC reads DIGEST_LEN bytes of `digest`, SIGNATURE_LEN of `signature`
    // and PUBLIC_KEY_LEN of `public_key`; each is an array of that length. The context
    // is empty (null pointer, length 0).
    let ok = unsafe {
        lc::ED25519ph_verify_digest(
            digest.as_ptr(),
            signature.as_ptr(),
            public_key.as_ptr(),
            std::ptr::null(),
            0,
        )
    };
    if ok != 1 {
        // SAFETY: clears this thread's AWS-LC error queue; no pointers involved.
        unsafe { lc::ERR_clear_error() };
    }
    ok == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::digest;

    fn array<const N: usize>(hex_text: &str) -> [u8; N] {
        hex::decode(hex_text).unwrap().try_into().unwrap()
    }

    fn sha512(message: &[u8]) -> [u8; DIGEST_LEN] {
        digest::digest(&digest::SHA512, message)
            .as_ref()
            .try_into()
            .unwrap()
    }

    /// RFC 8032 §7.3, "TEST abc": the one Ed25519ph vector of the RFC.
    #[test]
    fn rfc_8032_ed25519ph_vector() {
        let key = PrivateKey::from_seed(&array(
            "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        ));
        let public: [u8; 32] =
            array("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf");
        let expected: [u8; 64] = array(
            "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41\
             31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406",
        );
        assert_eq!(key.public_key(), &public);
        let digest = sha512(b"abc");
        assert_eq!(key.sign_digest(&digest).unwrap(), expected);
        assert!(verify_digest(&public, &digest, &expected));
    }

    #[test]
    fn other_digests_keys_and_signatures_do_not_verify() {
        let key = PrivateKey::from_seed(&[7; SEED_LEN]);
        let other = PrivateKey::from_seed(&[8; SEED_LEN]);
        let digest = sha512(b"release 1.2.3");
        let signature = key.sign_digest(&digest).unwrap();
        assert!(verify_digest(key.public_key(), &digest, &signature));
        assert!(!verify_digest(
            key.public_key(),
            &sha512(b"other"),
            &signature
        ));
        assert!(!verify_digest(other.public_key(), &digest, &signature));
        let mut flipped = signature;
        flipped[10] ^= 1;
        assert!(!verify_digest(key.public_key(), &digest, &flipped));
        assert!(!verify_digest(key.public_key(), &digest, &signature[..63]));
        assert!(!verify_digest(
            key.public_key(),
            &digest,
            &[signature.as_slice(), &[0]].concat()
        ));
        assert!(!verify_digest(key.public_key(), &digest, &[]));
    }

    #[test]
    fn the_public_key_is_the_one_aws_lc_rs_derives() {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
        let seed = [9u8; SEED_LEN];
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        assert_eq!(
            PrivateKey::from_seed(&seed).public_key().as_slice(),
            pair.public_key().as_ref()
        );
    }

    #[test]
    fn debug_shows_no_key() {
        let key = PrivateKey::from_seed(&[0x5a; SEED_LEN]);
        assert_eq!(format!("{key:?}"), "ed25519ph::PrivateKey(<redacted>)");
    }
}
