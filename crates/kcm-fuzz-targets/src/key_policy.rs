//! Key policy documents (`kcm-core` `policy`: [`KeyPolicy::parse`]), as
//! `PutKeyPolicy` and `CreateKey` take them.
//!
//! The input is a policy document. A document that parses is asked what it gives
//! ([`KeyPolicy::allowed_operations`]) and, for a caller of every role (and two
//! access key ids), in a request that says nothing and in one that says everything
//! conditions ask about, whether it admits every operation and whether it passes
//! the lockout check. Whatever it admits to an operation on keys is among what it
//! gives (bar the tenant-admin's own way to its key's policy), and parsing the
//! stored document again gives the same policy.

use kcm_core::authz::{Op, OpClass, Principal, ALL_OPS};
use kcm_core::model::{KeyId, TenantId, ALL_ROLES};
use kcm_core::policy::always_replaces_policy;
use kcm_core::policy::{
    ConditionContext, Connection, KeyAccess, KeyFacts, KeyPolicy, RequestFacts,
};

/// A policy is at most `MAX_POLICY_BYTES` (32 KiB); a little more, so the limit
/// itself is tried.
pub const MAX_LEN: usize = kcm_core::policy::MAX_POLICY_BYTES + 1024;

/// Runs one input (see the module documentation).
pub fn run(data: &[u8]) {
    let Ok(document) = std::str::from_utf8(data) else {
        return;
    };
    let policy = match KeyPolicy::parse(document) {
        Ok(policy) => policy,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert_eq!(
        KeyPolicy::parse(&policy.document).expect("a stored policy parses again"),
        policy
    );
    let given = policy.allowed_operations();
    let key = KeyId(uuid::Uuid::from_u128(7));
    let access = KeyAccess {
        policy: Some(policy),
        grants: Vec::new(),
    };
    let context: std::collections::BTreeMap<String, String> = [("app", "orders"), ("Tenant", "t1")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let operations = vec!["Encrypt".to_owned(), "Decrypt".to_owned()];
    let everything = ConditionContext {
        request: RequestFacts {
            encryption_context: Some(&context),
            encryption_algorithm: Some("SYMMETRIC_DEFAULT"),
            signing_algorithm: Some("ECDSA_SHA_256"),
            grant_operations: Some(&operations),
        },
        connection: Connection {
            source_ip: Some(std::net::Ipv4Addr::new(10, 1, 2, 3).into()),
            secure_transport: Some(true),
        },
        key: Some(KeyFacts {
            id: key,
            region: "eu-west-1",
            spec: kcm_core::keyspec::KeySpec::SymmetricDefault,
            usage: kcm_core::keyspec::KeyUsage::EncryptDecrypt,
            origin: kcm_core::keyspec::KeyOrigin::AwsKms,
        }),
        request_alias: Some("alias/orders"),
        now: Some(1_800_000_000_000),
    };
    for role in ALL_ROLES {
        for access_key_id in ["KCMFUZZ0000000000001", "KCMFUZZ0000000000002"] {
            let principal = Principal {
                access_key_id: access_key_id.to_owned(),
                tenant_id: Some(TenantId(uuid::Uuid::from_u128(1))),
                account_id: "111122223333".to_owned(),
                role,
                system_scope: None,
                operations: None,
            };
            for ctx in [&ConditionContext::NONE, &everything] {
                let policy = access.policy.as_ref().expect("a policy");
                let _ = policy.lets_update(&principal, ctx);
                for op in ALL_OPS {
                    judge(&access, &principal, *op, key, ctx, given);
                }
            }
        }
    }
}

/// Asks whether `access` admits `principal` to `op`, and checks what it admits is given.
fn judge(
    access: &KeyAccess,
    principal: &Principal,
    op: Op,
    key: KeyId,
    ctx: &ConditionContext<'_>,
    given: kcm_core::authz::OpSet,
) {
    match access.admits(principal, op, key, ctx) {
        Ok(()) => {
            let on_keys = matches!(
                op.class(),
                OpClass::ReadKeys | OpClass::ManageKeys | OpClass::UseKeys
            );
            let own_way = always_replaces_policy(principal)
                && matches!(op, Op::GetKeyPolicy | Op::PutKeyPolicy);
            assert!(
                !on_keys || own_way || given.contains(op),
                "{op} admitted but not given"
            );
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
