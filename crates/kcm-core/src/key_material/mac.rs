//! GenerateMac and VerifyMac: HMAC with the version's key.

use aws_lc_rs::hmac;

use super::{internal, VersionKey};
use crate::error::Result;

impl VersionKey {
    /// The MAC of `message` (HMAC keys only).
    pub(crate) fn mac(&self, message: &[u8]) -> Result<Vec<u8>> {
        match self {
            VersionKey::Hmac(key) => Ok(hmac::sign(key, message).as_ref().to_vec()),
            _ => Err(internal("a MAC with a key that is not an HMAC key")),
        }
    }

    /// Whether `mac` is the MAC of `message`, compared in constant time.
    pub(crate) fn verify_mac(&self, message: &[u8], mac: &[u8]) -> Result<bool> {
        match self {
            VersionKey::Hmac(key) => Ok(hmac::verify(key, message, mac).is_ok()),
            _ => Err(internal("a MAC with a key that is not an HMAC key")),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::key_material::new_version;
    use crate::keyspec::{KeySpec, KeyUsage};

    #[test]
    fn hmac_macs_verify_in_constant_time() {
        let key = new_version(KeySpec::Hmac384, KeyUsage::GenerateVerifyMac);
        let mac = key.mac(b"m").unwrap();
        assert_eq!(mac.len(), 48);
        assert!(key.verify_mac(b"m", &mac).unwrap());
        assert!(!key.verify_mac(b"n", &mac).unwrap());
    }
}
