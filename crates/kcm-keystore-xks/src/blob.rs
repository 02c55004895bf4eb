//! The wrapped form kcm stores for a system key wrapped by an XKS key: the pieces
//! of the proxy's AES-GCM output, in one self-describing byte string.
//!
//! ```text
//! 0x01 ‖ iv_len (1) ‖ iv (12 or 16) ‖ meta_len (1) ‖ ciphertextMetadata (0..=20) ‖ tag (16) ‖ ciphertext
//! ```

use kcm_core::keystore::KeystoreError;

const VERSION: u8 = 1;
/// AES-GCM tag length the spec requires.
pub const TAG_LEN: usize = 16;
/// The spec's limit on `ciphertextMetadata`.
pub const MAX_METADATA: usize = 20;

/// The parts of one XKS encryption.
#[derive(Debug, PartialEq, Eq)]
pub struct Sealed<'a> {
    /// The initialisation vector the proxy chose (12 or 16 bytes).
    pub iv: &'a [u8],
    /// Vendor metadata the proxy bound into the tag (up to 20 bytes).
    pub metadata: &'a [u8],
    /// The 16-byte authentication tag.
    pub tag: &'a [u8],
    /// The ciphertext, as long as the plaintext.
    pub ciphertext: &'a [u8],
}

/// Whether `iv` has a length the spec allows.
pub fn valid_iv(iv: &[u8]) -> bool {
    iv.len() == 12 || iv.len() == 16
}

impl Sealed<'_> {
    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            3 + self.iv.len() + self.metadata.len() + self.tag.len() + self.ciphertext.len(),
        );
        out.push(VERSION);
        out.push(self.iv.len() as u8);
        out.extend_from_slice(self.iv);
        out.push(self.metadata.len() as u8);
        out.extend_from_slice(self.metadata);
        out.extend_from_slice(self.tag);
        out.extend_from_slice(self.ciphertext);
        out
    }
}

/// Parses a stored blob. A blob that is not one of ours cannot authenticate, so
/// every malformation is [`KeystoreError::UnwrapFailed`].
pub fn decode(blob: &[u8]) -> Result<Sealed<'_>, KeystoreError> {
    let (&version, rest) = blob.split_first().ok_or(KeystoreError::UnwrapFailed)?;
    if version != VERSION {
        return Err(KeystoreError::UnwrapFailed);
    }
    let (iv, rest) = take_prefixed(rest)?;
    let (metadata, rest) = take_prefixed(rest)?;
    if !valid_iv(iv) || metadata.len() > MAX_METADATA || rest.len() < TAG_LEN {
        return Err(KeystoreError::UnwrapFailed);
    }
    let (tag, ciphertext) = rest.split_at(TAG_LEN);
    Ok(Sealed {
        iv,
        metadata,
        tag,
        ciphertext,
    })
}

fn take_prefixed(bytes: &[u8]) -> Result<(&[u8], &[u8]), KeystoreError> {
    let (&len, rest) = bytes.split_first().ok_or(KeystoreError::UnwrapFailed)?;
    let len = usize::from(len);
    if rest.len() < len {
        return Err(KeystoreError::UnwrapFailed);
    }
    Ok(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_malformed_blobs() {
        let sealed = Sealed {
            iv: &[1; 12],
            metadata: b"v=1",
            tag: &[2; 16],
            ciphertext: &[3; 32],
        };
        let blob = sealed.encode();
        assert_eq!(decode(&blob).unwrap(), sealed);

        let unwrap_failed = |b: &[u8]| matches!(decode(b), Err(KeystoreError::UnwrapFailed));
        assert!(unwrap_failed(&[]));
        assert!(unwrap_failed(&[2]));
        let mut wrong_version = blob.clone();
        wrong_version[0] = 9;
        assert!(unwrap_failed(&wrong_version));
        let mut bad_iv = blob.clone();
        bad_iv[1] = 13;
        assert!(unwrap_failed(&bad_iv));
        // Shorter than its tag.
        assert!(unwrap_failed(&blob[..1 + 1 + 12 + 1 + 3 + 10]));
        // An empty ciphertext is still well-formed (the proxy decides).
        let empty = Sealed {
            ciphertext: &[],
            ..sealed
        };
        assert_eq!(decode(&empty.encode()).unwrap().ciphertext, b"");
    }
}
