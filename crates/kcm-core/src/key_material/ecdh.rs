//! DeriveSharedSecret: ECDH on a NIST curve with a peer's public key.

use aws_lc_rs::agreement;

use super::{internal, VersionKey};
use crate::error::{Error, Result};
use crate::secret::SecretBytes;

impl VersionKey {
    /// The ECDH shared secret with a peer's public key (SubjectPublicKeyInfo DER on
    /// this key's curve): the x-coordinate of the shared point, as AWS returns it.
    pub(crate) fn derive_shared_secret(&self, peer_spki: &[u8]) -> Result<SecretBytes> {
        let VersionKey::Ecdh {
            private, algorithm, ..
        } = self
        else {
            return Err(internal("ECDH with a key that is not a key agreement key"));
        };
        let bad_peer = || {
            Error::invalid(
                "PublicKey must be a DER-encoded SubjectPublicKeyInfo on the same curve as the key",
            )
        };
        let parsed: agreement::ParsedPublicKey =
            agreement::UnparsedPublicKey::new(algorithm, peer_spki)
                .try_into()
                .map_err(|_| bad_peer())?;
        if parsed.format() != agreement::ParsedPublicKeyFormat::X509 {
            return Err(bad_peer());
        }
        agreement::agree(private, parsed, bad_peer(), |secret| {
            Ok(SecretBytes::copy_from(secret))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_material::new_version;
    use crate::keyspec::{KeySpec, KeyUsage};
    use aws_lc_rs::encoding::AsDer;

    #[test]
    fn ecdh_agrees_with_a_peer() {
        let key = new_version(KeySpec::EccNistP384, KeyUsage::KeyAgreement);
        let peer = agreement::PrivateKey::generate(&agreement::ECDH_P384).unwrap();
        let peer_public = peer.compute_public_key().unwrap();
        let peer_spki = peer_public.as_der().unwrap();
        let ours = key.derive_shared_secret(peer_spki.as_ref()).unwrap();
        let our_public = agreement::UnparsedPublicKey::new(
            &agreement::ECDH_P384,
            key.public_key().unwrap().to_vec(),
        );
        let theirs = agreement::agree(&peer, our_public, (), |s| Ok(s.to_vec())).unwrap();
        assert_eq!(ours.expose_secret(), theirs.as_slice());
        let other_curve = agreement::PrivateKey::generate(&agreement::ECDH_P256).unwrap();
        let other = other_curve.compute_public_key().unwrap().as_der().unwrap();
        assert!(key.derive_shared_secret(other.as_ref()).is_err());
    }
}
