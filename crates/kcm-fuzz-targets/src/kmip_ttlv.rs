//! KMIP's TTLV encoding and request frame (`kcm-kmip` [`ttlv::decode`],
//! [`ttlv::message_len`], [`message::parse_request`]), as a KMIP client's message
//! reaches the server.
//!
//! The input is a message. The framing reads its length from the first 8 bytes;
//! the decoder reads the message; the request frame is read from what decodes. The
//! decoder is strict (exact lengths, zero padding), so a message it accepts is in
//! the one canonical form: encoding what it read gives back the input, byte for
//! byte, and the framing agrees on its length. A request the frame accepts has as
//! many items as its Batch Count says, at least one.

use kcm_kmip::message;
use kcm_kmip::ttlv::{self, Limits, HEADER_LEN};

/// The default message limit, and a little more so the limit itself is tried.
pub const MAX_LEN: usize = (1 << 20) + 64;

/// Runs one input (see the module documentation).
pub fn run(data: &[u8]) {
    let limits = Limits::default();
    let framed = data
        .first_chunk::<HEADER_LEN>()
        .map(|header| ttlv::message_len(header, &limits));
    match ttlv::decode(data, &limits) {
        Ok(message) => {
            assert_eq!(
                ttlv::encode(&message),
                data,
                "re-encoding changed the message"
            );
            assert_eq!(
                framed,
                Some(Ok(data.len())),
                "the framing disagrees on the length"
            );
            if let Ok(request) = message::parse_request(&message) {
                assert!(!request.items.is_empty());
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
