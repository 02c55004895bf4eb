//! Wire encodings of the AWS JSON protocol: base64 blobs and epoch-second timestamps.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

/// Deserialises a base64 blob into a zeroizing buffer (it may be plaintext).
pub fn blob<'de, D: Deserializer<'de>>(d: D) -> Result<Zeroizing<Vec<u8>>, D::Error> {
    let text = Zeroizing::new(String::deserialize(d)?);
    STANDARD
        .decode(text.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| serde::de::Error::custom("blob is not valid base64"))
}

/// Base64 of `bytes`.
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Epoch seconds (AWS JSON timestamps) from milliseconds.
pub fn epoch_seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Base64 text of secret bytes (plaintexts, data keys), zeroized after the response
/// body has been serialised.
pub struct SecretB64(Zeroizing<String>);

impl SecretB64 {
    /// Encodes `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(b64(bytes)))
    }
}

impl serde::Serialize for SecretB64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}
