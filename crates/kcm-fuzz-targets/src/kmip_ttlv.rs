//! KMIP's TTLV encoding and request frame (`kcm-kmip` [`ttlv::decode`],
//! [`ttlv::message_len`], [`message::parse_request`]), as a KMIP client's message
//! reaches the server, and every reader of an item's payload that runs before the
//! core is asked anything (attributes, key-pair templates, the object of a
//! Register of each kind, what to compute for the cryptographic operations).
//!
//! The input is a message. The framing reads its length from the first 8 bytes;
//! the decoder reads the message; the request frame is read from what decodes. The
//! decoder is strict (exact lengths, zero padding), so a message it accepts is in
//! the one canonical form: encoding what it read gives back the input, byte for
//! byte, and the framing agrees on its length. A request the frame accepts has as
//! many items as its Batch Count says, at least one.

use kcm_core::model::ALL_OBJECT_KINDS;
use kcm_kmip::message::{self, Operation};
use kcm_kmip::objects::{self, tag};
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
                for item in &request.items {
                    read_payload(item.operation, &item.payload);
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// Every payload reader on `payload`: each may refuse it, none may panic.
fn read_payload(operation: Operation, payload: &[ttlv::Ttlv]) {
    let _ = objects::read_attributes(payload);
    let _ = objects::read_key_pair_part(
        payload,
        tag::PRIVATE_KEY_TEMPLATE_ATTRIBUTE,
        tag::PRIVATE_KEY_ATTRIBUTES,
    );
    for kind in ALL_OBJECT_KINDS {
        let _ = objects::payload_of(kind, payload);
    }
    let _ = kcm_kmip::crypto::computation_of(operation, payload);
}
