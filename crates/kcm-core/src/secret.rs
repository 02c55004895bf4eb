//! The one type for secret bytes: key material, access-key secrets, passphrases.

use zeroize::Zeroizing;

/// Secret bytes that are zeroized on drop and never printed.
///
/// There is deliberately no `Display`, `Serialize` or revealing `Debug`; the only
/// way to read the bytes is the explicit [`SecretBytes::expose_secret`], which makes
/// every use of plaintext key material easy to find and audit.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`; they are zeroized when this value is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copies `bytes` into a new secret.
    pub fn copy_from(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }

    /// `len` bytes from the operating system's random source (through aws-lc-rs).
    pub fn random(len: usize) -> Self {
        let mut bytes = vec![0u8; len];
        crate::crypto::fill_random(&mut bytes);
        Self::new(bytes)
    }

    /// The secret bytes. Every call site is a place where plaintext is handled.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// The secret bytes, writable in place (an output buffer for decryption).
    pub fn expose_secret_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares with `other` in constant time (for the same length).
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        self.0.len() == other.len() && bool::from(self.0.as_slice().ct_eq(other))
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes([REDACTED; {}])", self.0.len())
    }
}

/// A secret string (passphrases, access-key secrets), zeroized on drop and redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps `s`; it is zeroized when this value is dropped.
    pub fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    /// The secret text.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretBytes::copy_from(b"top secret key material");
        let shown = format!("{s:?}");
        assert!(!shown.contains("top"), "{shown}");
        assert!(shown.contains("REDACTED"));
        let t = SecretString::new("hunter2".into());
        assert!(!format!("{t:?}").contains("hunter2"));
    }

    #[test]
    fn constant_time_compare() {
        let s = SecretBytes::copy_from(b"abc");
        assert!(s.ct_eq(b"abc"));
        assert!(!s.ct_eq(b"abd"));
        assert!(!s.ct_eq(b"ab"));
    }
}
