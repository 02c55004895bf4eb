//! The AWS KMS JSON door: every operation's request decoding
//! (`crates/kcm-aws-api`).
//!
//! The input is the operation's name (as in `X-Amz-Target`, without
//! `TrentService.`) on the first line and the JSON body after it. It runs through
//! the door's own code after authentication ([`kcm_aws_api::dispatch_authenticated`]):
//! `DryRun`, the operation's JSON, key ids and ARNs, base64 blobs, limits, and the
//! core call, against a real service (SQLite and the software keystore in a
//! temporary directory) that holds one key of each kind under the aliases
//! `alias/fuzz-sym`, `-rsa`, `-sign`, `-hmac`, `-ecdh` and `-ext`.
//!
//! The caller is the tenant-admin limited to the operations that change nothing
//! ([`ALLOWED`]): every operation still decodes its request, and the core then
//! refuses the others, so the store does not grow however long the fuzzer runs.
//! The property: no request is answered with a server error (a 5xx is a bug when
//! the store and keystore are healthy).

use std::sync::OnceLock;

use kcm_core::authz::{Caller, Op, OpSet, Principal};
use kcm_core::service::Service;
use kcm_frontdoor::DoorError;
use kcm_test_support::service::ServiceFixture;

/// The door's body limit (`MAX_BODY` of kcm-aws-api).
pub const MAX_LEN: usize = 1 << 20;

/// The operations the fuzzed caller may call: reads and cryptography that neither
/// write to the store nor make RSA keys (which takes seconds), and
/// `ImportKeyMaterial`, so that import tokens are parsed too: it writes only with a
/// token of `GetParametersForImport`, which this caller may not call.
pub const ALLOWED: &[Op] = &[
    Op::DescribeKey,
    Op::ListKeys,
    Op::ListAliases,
    Op::ListResourceTags,
    Op::Encrypt,
    Op::Decrypt,
    Op::ReEncrypt,
    Op::GenerateDataKey,
    Op::GenerateDataKeyWithoutPlaintext,
    Op::GenerateRandom,
    Op::Sign,
    Op::Verify,
    Op::GetPublicKey,
    Op::GenerateMac,
    Op::VerifyMac,
    Op::DeriveSharedSecret,
    Op::GetKeyRotationStatus,
    Op::ListKeyRotations,
    Op::GetKeyPolicy,
    Op::ListKeyPolicies,
    Op::ListGrants,
    Op::ListRetirableGrants,
    Op::ImportKeyMaterial,
];

/// The keys the fixture makes: (alias, CreateKey body).
const KEYS: &[(&str, &str)] = &[
    ("alias/fuzz-sym", r#"{"Description":"fuzz"}"#),
    (
        "alias/fuzz-rsa",
        r#"{"KeySpec":"RSA_2048","KeyUsage":"ENCRYPT_DECRYPT"}"#,
    ),
    (
        "alias/fuzz-sign",
        r#"{"KeySpec":"ECC_NIST_P256","KeyUsage":"SIGN_VERIFY"}"#,
    ),
    (
        "alias/fuzz-hmac",
        r#"{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC"}"#,
    ),
    (
        "alias/fuzz-ecdh",
        r#"{"KeySpec":"ECC_NIST_P256","KeyUsage":"KEY_AGREEMENT"}"#,
    ),
    ("alias/fuzz-ext", r#"{"Origin":"EXTERNAL"}"#),
];

struct Fixture {
    // Kept for its temporary directory.
    _fixture: ServiceFixture,
    service: std::sync::Arc<Service>,
    principal: Principal,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        crate::runtime().block_on(async {
            let fixture = ServiceFixture::new().await;
            let service = fixture.service.clone();
            for (alias, create) in KEYS {
                let created = kcm_aws_api::dispatch_authenticated(
                    &service,
                    &fixture.admin(),
                    "CreateKey",
                    create.as_bytes(),
                )
                .await
                .expect("CreateKey");
                let created: serde_json::Value =
                    serde_json::from_slice(&created).expect("CreateKey's JSON");
                let key_id = created["KeyMetadata"]["KeyId"]
                    .as_str()
                    .expect("a KeyId")
                    .to_owned();
                let alias = serde_json::json!({"AliasName": alias, "TargetKeyId": key_id});
                kcm_aws_api::dispatch_authenticated(
                    &service,
                    &fixture.admin(),
                    "CreateAlias",
                    alias.to_string().as_bytes(),
                )
                .await
                .expect("CreateAlias");
            }
            let mut principal = fixture.admin().principal.clone();
            let mut allowed = OpSet::EMPTY;
            for op in ALLOWED {
                allowed.insert(*op);
            }
            principal.operations = Some(allowed);
            Fixture {
                _fixture: fixture,
                service,
                principal,
            }
        })
    })
}

/// Runs one input (see the module documentation).
pub fn run(data: &[u8]) {
    let (target, body) = crate::first_line(data);
    let Ok(target) = std::str::from_utf8(target) else {
        return;
    };
    let f = fixture();
    let caller = Caller::new(f.principal.clone());
    let result = crate::runtime().block_on(kcm_aws_api::dispatch_authenticated(
        &f.service, &caller, target, body,
    ));
    if let Err(e) = result {
        assert!(
            !e.is_server_error(),
            "{target} answered a server error: {} {}",
            e.code(),
            e.message()
        );
    }
}
