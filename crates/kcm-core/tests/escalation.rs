//! No privilege escalation, against the real embedded store: no principal creates an
//! access key, a grant or a key policy that gives more than it holds itself. Each
//! refusal is `AccessDenied`, names the part that exceeded (role, operations, system
//! scope), and changes nothing.

use kcm_core::authz::Caller;
use kcm_core::error::{Error, ErrorKind};
use kcm_core::model::Role;
use kcm_core::service::{CreateGrantRequest, CreateKeyRequest, KeyRef, NewSystem};
use kcm_test_support::service::ServiceFixture;

const VERSION: &str = "kcm-2026-11";

/// A caller signing with a new access key of the default tenant, made by its
/// tenant-admin with `role`, `system` scope and `operations` limit.
async fn new_caller(
    f: &ServiceFixture,
    role: Role,
    system: Option<&str>,
    operations: Option<&[&str]>,
) -> Caller {
    let operations: Option<Vec<String>> =
        operations.map(|ops| ops.iter().map(|s| s.to_string()).collect());
    let made = f
        .service
        .create_access_key(
            &f.admin(),
            role,
            system,
            operations.as_deref(),
            "escalation test".into(),
        )
        .await
        .unwrap();
    caller_of(f, &made.info.id).await
}

async fn caller_of(f: &ServiceFixture, id: &str) -> Caller {
    Caller::new(f.service.credential(id).await.unwrap().principal.clone())
}

fn names(ops: &[&str]) -> Vec<String> {
    ops.iter().map(|s| s.to_string()).collect()
}

/// The ids of the tenant's access keys, as its tenant-admin lists them.
async fn access_key_ids(f: &ServiceFixture) -> Vec<String> {
    let mut ids: Vec<String> = f
        .service
        .list_access_keys(&f.admin())
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    ids.sort();
    ids
}

/// Asserts `result` is `AccessDenied` whose message mentions `part`.
#[track_caller]
fn assert_denied<T: std::fmt::Debug>(result: Result<T, Error>, part: &str) {
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AccessDenied, "{err}");
    assert!(
        err.message().contains(part),
        "the denial should name {part:?}: {err}"
    );
}

/// `creator`'s attempt to create an access key, which must be refused naming `part`
/// and leave the tenant's access keys as they were.
async fn refused_access_key(
    f: &ServiceFixture,
    creator: &Caller,
    role: Role,
    system: Option<&str>,
    operations: Option<&[&str]>,
    part: &str,
) {
    let before = access_key_ids(f).await;
    let operations = operations.map(names);
    let result = f
        .service
        .create_access_key(creator, role, system, operations.as_deref(), String::new())
        .await;
    assert_denied(result, part);
    assert_eq!(access_key_ids(f).await, before, "a refusal changed nothing");
}

async fn allowed_access_key(
    f: &ServiceFixture,
    creator: &Caller,
    role: Role,
    operations: Option<&[&str]>,
) {
    let operations = operations.map(names);
    f.service
        .create_access_key(creator, role, None, operations.as_deref(), String::new())
        .await
        .unwrap();
}

async fn new_key(f: &ServiceFixture, policy: Option<String>) -> KeyRef {
    let req = CreateKeyRequest {
        policy,
        ..CreateKeyRequest::default()
    };
    KeyRef::Id(
        f.service
            .create_key(&f.admin(), req)
            .await
            .unwrap()
            .record
            .id,
    )
}

/// Bypasses AWS's lockout check, for a policy written by a tenant-admin that does not
/// name it: these tests are about what a policy gives, and a tenant-admin may always
/// replace a policy anyway.
const BYPASS: bool = true;

fn policy(statements: &[(&str, &str, &[&str])]) -> String {
    let statements: Vec<_> = statements
        .iter()
        .map(|(effect, principal, actions)| {
            serde_json::json!({"Effect": effect, "Principal": principal, "Action": actions})
        })
        .collect();
    serde_json::json!({"Version": VERSION, "Statement": statements}).to_string()
}

#[tokio::test]
async fn a_key_limited_to_create_access_key_cannot_mint_an_unlimited_tenant_admin() {
    let f = ServiceFixture::new().await;
    let minter = new_caller(&f, Role::TenantAdmin, None, Some(&["CreateAccessKey"])).await;
    // No limit means every operation: more than {CreateAccessKey}.
    for role in [Role::TenantAdmin, Role::KeyUser, Role::Auditor] {
        refused_access_key(&f, &minter, role, None, None, "operations").await;
    }
    // Its own set, or less, it may hand on.
    allowed_access_key(&f, &minter, Role::TenantAdmin, Some(&["CreateAccessKey"])).await;
}

#[tokio::test]
async fn a_key_with_operations_s_cannot_mint_one_with_s_and_one_more() {
    let f = ServiceFixture::new().await;
    let s = ["CreateAccessKey", "Encrypt", "Decrypt"];
    let minter = new_caller(&f, Role::TenantAdmin, None, Some(&s)).await;
    refused_access_key(
        &f,
        &minter,
        Role::KeyUser,
        None,
        Some(&["Encrypt", "Decrypt", "GenerateDataKey"]),
        "operations",
    )
    .await;
    refused_access_key(
        &f,
        &minter,
        Role::TenantAdmin,
        None,
        Some(&[s[0], s[1], s[2], "CreateSystem"]),
        "operations",
    )
    .await;
    refused_access_key(&f, &minter, Role::KeyUser, None, None, "operations").await;
    allowed_access_key(&f, &minter, Role::KeyUser, Some(&["Encrypt", "Decrypt"])).await;
    allowed_access_key(&f, &minter, Role::TenantAdmin, Some(&s)).await;
}

#[tokio::test]
async fn a_system_scoped_key_cannot_mint_a_key_of_wider_scope() {
    let f = ServiceFixture::new().await;
    for name in ["sys-a", "sys-b"] {
        let new = NewSystem {
            name: name.into(),
            kind: "application".into(),
            link: true,
            ..NewSystem::default()
        };
        f.service.create_system(&f.admin(), &new).await.unwrap();
    }
    let scoped = new_caller(&f, Role::TenantAdmin, Some("sys-a"), None).await;
    refused_access_key(&f, &scoped, Role::KeyUser, None, None, "system").await;
    refused_access_key(&f, &scoped, Role::KeyUser, Some("sys-b"), None, "system").await;
}

#[tokio::test]
async fn only_a_role_that_covers_the_new_role_creates_it() {
    let f = ServiceFixture::new().await;
    // The key-admin may manage keys, not the tenant: no tenant-admin from it.
    for creator in [Role::KeyAdmin, Role::KeyUser, Role::Auditor] {
        let creator = new_caller(&f, creator, None, None).await;
        refused_access_key(&f, &creator, Role::TenantAdmin, None, None, "role").await;
        refused_access_key(&f, &creator, Role::KeyUser, None, None, "role").await;
    }
}

/// `creator`'s grant of `ops` on `key` to `grantee`, which must be refused naming the
/// operations, and leave the key's grants as they were.
async fn refused_grant(
    f: &ServiceFixture,
    creator: &Caller,
    key: &KeyRef,
    grantee: &str,
    ops: &[&str],
) {
    let grants = |f: &ServiceFixture| {
        let key = key.clone();
        let service = f.service.clone();
        let admin = f.admin();
        async move {
            service
                .list_grants(&admin, &key, None, None, None, None)
                .await
                .unwrap()
                .grants
        }
    };
    let before = grants(f).await;
    let req = CreateGrantRequest {
        grantee: grantee.into(),
        operations: names(ops),
        ..CreateGrantRequest::default()
    };
    assert_denied(
        f.service.create_grant(creator, key, req).await,
        "operations",
    );
    assert_eq!(grants(f).await, before, "a refusal changed nothing");
}

async fn allowed_grant(
    f: &ServiceFixture,
    creator: &Caller,
    key: &KeyRef,
    grantee: &str,
    ops: &[&str],
) {
    let req = CreateGrantRequest {
        grantee: grantee.into(),
        operations: names(ops),
        ..CreateGrantRequest::default()
    };
    f.service.create_grant(creator, key, req).await.unwrap();
}

#[tokio::test]
async fn a_grant_gives_only_what_its_creator_may_do_on_the_key() {
    let f = ServiceFixture::new().await;
    let grantee = new_caller(&f, Role::KeyUser, None, None).await;
    let grantee = grantee.principal.access_key_id.clone();
    // Only tenant-admins by policy: the grant is what would open the key.
    let key = new_key(&f, Some(policy(&[("Allow", "role:tenant-admin", &["*"])]))).await;

    // A key-admin may not use keys, so it may not grant their use.
    let key_admin = new_caller(&f, Role::KeyAdmin, None, None).await;
    let key_admin_key = new_key(&f, None).await;
    refused_grant(&f, &key_admin, &key_admin_key, &grantee, &["Encrypt"]).await;
    refused_grant(
        &f,
        &key_admin,
        &key_admin_key,
        &grantee,
        &["DescribeKey", "Decrypt"],
    )
    .await;
    allowed_grant(&f, &key_admin, &key_admin_key, &grantee, &["DescribeKey"]).await;

    // A tenant-admin limited to CreateGrant holds nothing else to give.
    let granter = new_caller(&f, Role::TenantAdmin, None, Some(&["CreateGrant"])).await;
    refused_grant(&f, &granter, &key, &grantee, &["Decrypt"]).await;
    allowed_grant(&f, &granter, &key, &grantee, &["CreateGrant"]).await;
    let granter = new_caller(
        &f,
        Role::TenantAdmin,
        None,
        Some(&["CreateGrant", "Encrypt"]),
    )
    .await;
    refused_grant(&f, &granter, &key, &grantee, &["Encrypt", "Decrypt"]).await;
    allowed_grant(&f, &granter, &key, &grantee, &["Encrypt"]).await;

    // The key's policy bounds its creator too: denied Decrypt, it grants no Decrypt.
    let admin_id = f.admin.principal.access_key_id.clone();
    let no_decrypt = new_key(&f, None).await;
    f.service
        .put_key_policy(
            &f.admin(),
            &no_decrypt,
            None,
            &policy(&[("Allow", "*", &["*"]), ("Deny", &admin_id, &["Decrypt"])]),
            false,
        )
        .await
        .unwrap();
    refused_grant(&f, &f.admin(), &no_decrypt, &grantee, &["Decrypt"]).await;
    allowed_grant(&f, &f.admin(), &no_decrypt, &grantee, &["Encrypt"]).await;
}

/// `caller`'s PutKeyPolicy of `document` on `key`, which must be refused naming the
/// operations, and leave the key's policy as it was.
async fn refused_policy(f: &ServiceFixture, caller: &Caller, key: &KeyRef, document: &str) {
    let current = |f: &ServiceFixture| {
        let key = key.clone();
        let service = f.service.clone();
        let admin = f.admin();
        async move { service.get_key_policy(&admin, &key, None).await.unwrap() }
    };
    let before = current(f).await;
    let result = f
        .service
        .put_key_policy(caller, key, None, document, false)
        .await;
    assert_denied(result, "operations");
    assert_eq!(current(f).await, before, "a refusal changed nothing");
}

#[tokio::test]
async fn a_policy_allows_only_what_its_writer_may_do_on_the_key() {
    let f = ServiceFixture::new().await;
    let key_admin = new_caller(&f, Role::KeyAdmin, None, None).await;
    let key = new_key(&f, None).await;
    // The key-admin cannot use keys: it may not open their use to others.
    refused_policy(&f, &key_admin, &key, &policy(&[("Allow", "*", &["*"])])).await;
    refused_policy(
        &f,
        &key_admin,
        &key,
        &policy(&[("Allow", "role:key-user", &["Encrypt"])]),
    )
    .await;
    // What it may do itself it may allow; a Deny gives nothing, so it may name anything.
    let own = policy(&[
        (
            "Allow",
            "role:key-admin",
            &["DescribeKey", "PutKeyPolicy", "ScheduleKeyDeletion"],
        ),
        ("Deny", "*", &["Encrypt"]),
    ]);
    f.service
        .put_key_policy(&key_admin, &key, None, &own, false)
        .await
        .unwrap();

    // Bounded by the policy in force: a key-admin denied ScheduleKeyDeletion may not
    // allow it.
    let denied = policy(&[
        (
            "Allow",
            "role:key-admin",
            &["DescribeKey", "PutKeyPolicy", "ScheduleKeyDeletion"],
        ),
        ("Deny", "role:key-admin", &["ScheduleKeyDeletion"]),
    ]);
    f.service
        .put_key_policy(&f.admin(), &key, None, &denied, BYPASS)
        .await
        .unwrap();
    refused_policy(
        &f,
        &key_admin,
        &key,
        &policy(&[(
            "Allow",
            "role:key-admin",
            &["PutKeyPolicy", "ScheduleKeyDeletion"],
        )]),
    )
    .await;

    // A tenant-admin limited to PutKeyPolicy holds only that.
    let limited = new_caller(&f, Role::TenantAdmin, None, Some(&["PutKeyPolicy"])).await;
    refused_policy(&f, &limited, &key, &policy(&[("Allow", "*", &["Decrypt"])])).await;

    // A tenant-admin may always replace a policy, so one that denies it a use does not
    // bound the next one: the tenant is never locked out of its own key.
    let admin_id = f.admin.principal.access_key_id.clone();
    f.service
        .put_key_policy(
            &f.admin(),
            &key,
            None,
            &policy(&[("Allow", "*", &["*"]), ("Deny", &admin_id, &["Encrypt"])]),
            false,
        )
        .await
        .unwrap();
    f.service
        .put_key_policy(
            &f.admin(),
            &key,
            None,
            &policy(&[("Allow", "*", &["*"])]),
            false,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_key_is_created_with_a_policy_only_of_what_its_creator_may_do() {
    let f = ServiceFixture::new().await;
    let key_admin = new_caller(&f, Role::KeyAdmin, None, None).await;
    let keys = |f: &ServiceFixture| {
        let service = f.service.clone();
        let admin = f.admin();
        async move { service.list_keys(&admin, None, None).await.unwrap().keys }
    };
    let before = keys(&f).await;
    for document in [
        policy(&[("Allow", "*", &["*"])]),
        policy(&[("Allow", "role:key-user", &["Encrypt", "Decrypt"])]),
    ] {
        let req = CreateKeyRequest {
            policy: Some(document),
            ..CreateKeyRequest::default()
        };
        assert_denied(f.service.create_key(&key_admin, req).await, "operations");
    }
    let limited = new_caller(&f, Role::TenantAdmin, None, Some(&["CreateKey", "Encrypt"])).await;
    let req = CreateKeyRequest {
        policy: Some(policy(&[("Allow", "*", &["Encrypt", "Decrypt"])])),
        ..CreateKeyRequest::default()
    };
    assert_denied(f.service.create_key(&limited, req).await, "operations");
    assert_eq!(keys(&f).await, before, "a refusal changed nothing");

    let req = CreateKeyRequest {
        policy: Some(policy(&[(
            "Allow",
            "role:key-admin",
            &["DescribeKey", "PutKeyPolicy"],
        )])),
        ..CreateKeyRequest::default()
    };
    f.service.create_key(&key_admin, req).await.unwrap();
    let req = CreateKeyRequest {
        policy: Some(policy(&[
            ("Allow", "*", &["Encrypt"]),
            ("Deny", "*", &["Decrypt"]),
        ])),
        bypass_policy_lockout_safety_check: BYPASS,
        ..CreateKeyRequest::default()
    };
    f.service.create_key(&limited, req).await.unwrap();
}
