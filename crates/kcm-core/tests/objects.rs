//! Managed objects against the real embedded store and software keystore: sealed
//! payloads, the chain and the kill switch, system key rotation, federated
//! principals and their project scope, read ACLs, generated material, lists.

use std::time::Duration;

use kcm_core::authz::Caller;
use kcm_core::error::ErrorKind;
use kcm_core::lifecycle::KeyState;
use kcm_core::model::*;
use kcm_core::secret::SecretBytes;
use kcm_core::service::{
    FederatedLogin, GenerateObject, NewObject, ObjectChange, ObjectFilter, RootKeyChange,
    PROJECT_SYSTEM_KIND,
};
use kcm_core::store::Store;
use kcm_test_support::service::ServiceFixture;

const BOUND: Duration = Duration::from_millis(40);

async fn fixture() -> ServiceFixture {
    ServiceFixture::with_revocation_bound(BOUND).await
}

async fn tenant_name(f: &ServiceFixture) -> String {
    let id = f.admin.principal.tenant_id.unwrap();
    f.store.tenant(id).await.unwrap().unwrap().name
}

/// A Keystone user of `project` with `role`, as the Barbican door would build it.
async fn keystone_user(f: &ServiceFixture, user: &str, project: &str, role: Role) -> Caller {
    let login = FederatedLogin {
        provider: "keystone".into(),
        user_id: user.into(),
        tenant: tenant_name(f).await,
        project_id: project.into(),
        project_name: format!("project {project}"),
        root_key: None,
        role,
    };
    Caller::new(f.service.federated_principal(&login).await.unwrap())
}

fn scope(caller: &Caller) -> SystemId {
    caller.principal.system_scope.unwrap()
}

fn passphrase(name: &str, payload: &[u8]) -> NewObject {
    NewObject {
        kind: ObjectKind::Passphrase,
        attributes: ObjectAttributes {
            name: name.into(),
            content_type: Some("text/plain".into()),
            ..ObjectAttributes::default()
        },
        payload: Some(SecretBytes::copy_from(payload)),
    }
}

async fn store_secret(f: &ServiceFixture, caller: &Caller, payload: &[u8]) -> ObjectId {
    f.service
        .create_object(caller, scope(caller), passphrase("s", payload))
        .await
        .unwrap()
        .id
}

async fn read(f: &ServiceFixture, caller: &Caller, id: ObjectId) -> Vec<u8> {
    let (_, payload) = f.service.object_payload(caller, id).await.unwrap();
    payload.expose_secret().to_vec()
}

async fn refused_read(f: &ServiceFixture, caller: &Caller, id: ObjectId) -> ErrorKind {
    f.service
        .object_payload(caller, id)
        .await
        .unwrap_err()
        .kind()
}

#[tokio::test]
async fn a_payload_is_stored_sealed_and_reads_back() {
    let f = fixture().await;
    let alice = keystone_user(&f, "alice", "p1", Role::KeyUser).await;
    let plaintext = b"correct horse battery staple";
    let id = store_secret(&f, &alice, plaintext).await;
    assert_eq!(read(&f, &alice, id).await, plaintext);
    // Its audit record names the object's system, though no key was used.
    assert_eq!(alice.noted_system(), Some(scope(&alice)));
    assert!(alice.noted_keys().is_empty());

    let stored = f.store.managed_object(id).await.unwrap().unwrap();
    let sealed = &stored.payload.as_ref().unwrap().sealed;
    assert!(!sealed.windows(plaintext.len()).any(|w| w == plaintext));
    assert_eq!(stored.attributes.creator, "keystone:alice");
    assert_eq!(stored.lifecycle.state(), KeyState::Active);

    // The payload is bound to its object: moved onto another, it does not open.
    let other = store_secret(&f, &alice, b"other").await;
    let mut moved = f.store.managed_object(other).await.unwrap().unwrap();
    moved.payload = stored.payload.clone();
    f.store
        .commit(vec![kcm_core::store::Write::PutManagedObject(moved)])
        .await
        .unwrap();
    assert_eq!(refused_read(&f, &alice, other).await, ErrorKind::Internal);
}

#[tokio::test]
async fn an_object_without_payload_waits_for_one_and_takes_it_once() {
    let f = fixture().await;
    let alice = keystone_user(&f, "alice", "p1", Role::KeyUser).await;
    let mut new = passphrase("later", b"");
    new.payload = None;
    let info = f
        .service
        .create_object(&alice, scope(&alice), new)
        .await
        .unwrap();
    assert_eq!(info.state, KeyState::PreActive);
    assert!(!info.has_payload);
    assert_eq!(refused_read(&f, &alice, info.id).await, ErrorKind::NotFound);
    let done = f
        .service
        .put_object_payload(&alice, info.id, SecretBytes::copy_from(b"now"), None)
        .await
        .unwrap();
    assert_eq!(done.state, KeyState::Active);
    assert_eq!(read(&f, &alice, info.id).await, b"now");
    let again = f
        .service
        .put_object_payload(&alice, info.id, SecretBytes::copy_from(b"again"), None)
        .await
        .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::InvalidState);
    assert_eq!(read(&f, &alice, info.id).await, b"now");
}

#[tokio::test]
async fn the_kill_switch_cuts_off_payloads_within_the_bound_and_enable_restores_them() {
    let f = fixture().await;
    let alice = keystone_user(&f, "alice", "p1", Role::KeyUser).await;
    let id = store_secret(&f, &alice, b"volume key").await;
    let root = f.default_root_id().await;
    let impact = f
        .service
        .change_root_key_state(&f.admin, &root, RootKeyChange::Disable, false)
        .await
        .unwrap();
    assert!(impact
        .systems
        .iter()
        .any(|s| s.kind == PROJECT_SYSTEM_KIND && s.managed_objects == 1));
    tokio::time::sleep(BOUND * 2).await;
    assert_eq!(refused_read(&f, &alice, id).await, ErrorKind::KeyDisabled);
    let create = f
        .service
        .create_object(&alice, scope(&alice), passphrase("new", b"x"))
        .await
        .unwrap_err();
    assert_eq!(create.kind(), ErrorKind::InvalidState);
    f.service
        .change_root_key_state(&f.admin, &root, RootKeyChange::Enable, false)
        .await
        .unwrap();
    tokio::time::sleep(BOUND * 2).await;
    assert_eq!(read(&f, &alice, id).await, b"volume key");
}

#[tokio::test]
async fn rotating_the_system_key_reseals_payloads_before_the_old_version_goes() {
    let f = fixture().await;
    let alice = keystone_user(&f, "alice", "p1", Role::KeyUser).await;
    let id = store_secret(&f, &alice, b"kept across rotation").await;
    let system = scope(&alice).to_string();
    let rotation = f
        .service
        .rotate_system_key(&f.admin, &system)
        .await
        .unwrap();
    assert_eq!(rotation.remaining, 1);
    assert_eq!(read(&f, &alice, id).await, b"kept across rotation");
    let done = f
        .service
        .rewrap_system_keys(&f.admin, &system, 10)
        .await
        .unwrap();
    assert_eq!((done.rewrapped, done.remaining), (1, 0));
    let stored = f.store.managed_object(id).await.unwrap().unwrap();
    assert_eq!(stored.payload.unwrap().system_key_version, 2);
    let old = f.store.system_key(scope(&alice), 1).await.unwrap().unwrap();
    assert!(old.lifecycle.state().is_destroyed());
    assert_eq!(read(&f, &alice, id).await, b"kept across rotation");
}

#[tokio::test]
async fn a_project_is_one_system_and_sees_only_its_own_objects() {
    let f = fixture().await;
    let alice = keystone_user(&f, "alice", "p1", Role::KeyUser).await;
    let alice_again = keystone_user(&f, "alice", "p1", Role::KeyUser).await;
    let bob = keystone_user(&f, "bob", "p2", Role::TenantAdmin).await;
    assert_eq!(scope(&alice), scope(&alice_again));
    assert_ne!(scope(&alice), scope(&bob));
    let system = f.store.system(scope(&alice)).await.unwrap().unwrap();
    assert_eq!(
        (system.name.as_str(), system.kind.as_str()),
        ("keystone-p1", PROJECT_SYSTEM_KIND)
    );

    let id = store_secret(&f, &alice, b"p1 only").await;
    assert_eq!(refused_read(&f, &bob, id).await, ErrorKind::AccessDenied);
    let get = f.service.get_object(&bob, id).await.unwrap_err();
    assert_eq!(get.kind(), ErrorKind::AccessDenied);
    let delete = f.service.delete_object(&bob, id).await.unwrap_err();
    assert_eq!(delete.kind(), ErrorKind::AccessDenied);
    // A list of another project's system is refused, not empty.
    let filter = ObjectFilter {
        limit: 10,
        ..ObjectFilter::default()
    };
    let list = f
        .service
        .list_objects(&bob, scope(&alice), &filter)
        .await
        .unwrap_err();
    assert_eq!(list.kind(), ErrorKind::AccessDenied);
    assert_eq!(read(&f, &alice, id).await, b"p1 only");

    // Another tenant does not see that the object exists.
    let other = f
        .service
        .create_tenant(&f.operator, "other-tenant")
        .await
        .unwrap();
    let login = FederatedLogin {
        provider: "keystone".into(),
        user_id: "mallory".into(),
        tenant: other.tenant.name.clone(),
        project_id: "p1".into(),
        project_name: "p1".into(),
        root_key: None,
        role: Role::TenantAdmin,
    };
    let mallory = Caller::new(f.service.federated_principal(&login).await.unwrap());
    assert_eq!(refused_read(&f, &mallory, id).await, ErrorKind::NotFound);

    // A domain with no tenant is refused.
    let unknown = FederatedLogin {
        tenant: "no-such-tenant".into(),
        ..login
    };
    let err = f.service.federated_principal(&unknown).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AccessDenied);
}

#[tokio::test]
async fn roles_decide_what_a_project_user_may_do() {
    let f = fixture().await;
    let member = keystone_user(&f, "m", "p1", Role::KeyUser).await;
    let reader = keystone_user(&f, "r", "p1", Role::Auditor).await;
    let id = store_secret(&f, &member, b"secret").await;
    assert_eq!(f.service.get_object(&reader, id).await.unwrap().id, id);
    assert_eq!(refused_read(&f, &reader, id).await, ErrorKind::AccessDenied);
    let create = f
        .service
        .create_object(&reader, scope(&reader), passphrase("x", b"x"))
        .await
        .unwrap_err();
    assert_eq!(create.kind(), ErrorKind::AccessDenied);
    let acl = f
        .service
        .update_object(&member, id, ObjectChange::SetAcl(ObjectAcl::default()))
        .await
        .unwrap_err();
    assert_eq!(acl.kind(), ErrorKind::AccessDenied);
    // The operator is never a federated user.
    let login = FederatedLogin {
        provider: "keystone".into(),
        user_id: "op".into(),
        tenant: tenant_name(&f).await,
        project_id: "p1".into(),
        project_name: "p1".into(),
        root_key: None,
        role: Role::SystemAdmin,
    };
    let err = f.service.federated_principal(&login).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AccessDenied);
}

#[tokio::test]
async fn a_read_acl_closes_an_object_to_its_project_and_opens_it_to_named_users() {
    let f = fixture().await;
    let creator = keystone_user(&f, "creator", "p1", Role::KeyUser).await;
    let admin = keystone_user(&f, "admin1", "p1", Role::TenantAdmin).await;
    let colleague = keystone_user(&f, "colleague", "p1", Role::KeyUser).await;
    let outsider = keystone_user(&f, "outsider", "p2", Role::KeyUser).await;
    let other_admin = keystone_user(&f, "admin2", "p2", Role::TenantAdmin).await;
    let id = store_secret(&f, &creator, b"private").await;
    let acl = ObjectAcl {
        project_access: false,
        users: vec!["keystone:outsider".into()],
    };
    f.service
        .update_object(&admin, id, ObjectChange::SetAcl(acl))
        .await
        .unwrap();
    // The creator, the project's admin and the listed outsider read it; the
    // creator's colleague and another project's admin do not.
    assert_eq!(read(&f, &creator, id).await, b"private");
    assert_eq!(read(&f, &admin, id).await, b"private");
    assert_eq!(read(&f, &outsider, id).await, b"private");
    assert_eq!(
        refused_read(&f, &other_admin, id).await,
        ErrorKind::AccessDenied
    );
    assert_eq!(
        refused_read(&f, &colleague, id).await,
        ErrorKind::AccessDenied
    );
    // The ACL opens reading only: the outsider cannot delete it.
    let delete = f.service.delete_object(&outsider, id).await.unwrap_err();
    assert_eq!(delete.kind(), ErrorKind::AccessDenied);
    // Lists leave out what the caller may not read.
    let filter = ObjectFilter {
        limit: 10,
        ..ObjectFilter::default()
    };
    let page = f
        .service
        .list_objects(&colleague, scope(&colleague), &filter)
        .await
        .unwrap();
    assert_eq!(page.total, 0);
}

#[tokio::test]
async fn generated_key_pairs_come_in_a_container_and_parse() {
    let f = fixture().await;
    let alice = keystone_user(&f, "alice", "p1", Role::KeyUser).await;
    let made = f
        .service
        .generate_object(
            &alice,
            scope(&alice),
            GenerateObject::RsaKeyPair {
                bits: 2048,
                attributes: ObjectAttributes {
                    name: "pair".into(),
                    ..ObjectAttributes::default()
                },
            },
        )
        .await
        .unwrap();
    let kinds: Vec<ObjectKind> = made.iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        [
            ObjectKind::Container,
            ObjectKind::PrivateKey,
            ObjectKind::PublicKey
        ]
    );
    let links = &made[0].attributes.links;
    assert_eq!(links[0].object, made[1].id);
    assert_eq!(links[1].object, made[2].id);
    let private = read(&f, &alice, made[1].id).await;
    assert!(private.starts_with(b"-----BEGIN PRIVATE KEY-----\n"));
    let public = read(&f, &alice, made[2].id).await;
    assert!(public.starts_with(b"-----BEGIN PUBLIC KEY-----\n"));

    let key = f
        .service
        .generate_object(
            &alice,
            scope(&alice),
            GenerateObject::Symmetric {
                bits: 256,
                attributes: ObjectAttributes {
                    algorithm: Some("aes".into()),
                    ..ObjectAttributes::default()
                },
            },
        )
        .await
        .unwrap();
    assert_eq!(read(&f, &alice, key[0].id).await.len(), 32);
    let odd = f
        .service
        .generate_object(
            &alice,
            scope(&alice),
            GenerateObject::Symmetric {
                bits: 100,
                attributes: ObjectAttributes::default(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(odd.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let f = fixture().await;
    let alice = keystone_user(&f, "alice", "p1", Role::KeyUser).await;
    let too_big = passphrase(
        "big",
        &vec![b'x'; kcm_core::service::MAX_OBJECT_PAYLOAD + 1],
    );
    let mut past = passphrase("past", b"x");
    past.attributes.expiration = Some(1);
    let mut container_with_payload = passphrase("c", b"x");
    container_with_payload.kind = ObjectKind::Container;
    let mut dangling = passphrase("d", b"x");
    dangling.kind = ObjectKind::Container;
    dangling.payload = None;
    dangling.attributes.links = vec![ObjectLink {
        name: "m".into(),
        object: ObjectId::new_random(),
    }];
    let mut versioned = passphrase("v", b"{}");
    versioned.kind = ObjectKind::VersionedSecret;
    for (new, kind) in [
        (versioned, ErrorKind::InvalidInput),
        (too_big, ErrorKind::LimitExceeded),
        (past, ErrorKind::InvalidInput),
        (container_with_payload, ErrorKind::InvalidInput),
        (dangling, ErrorKind::InvalidInput),
    ] {
        let err = f
            .service
            .create_object(&alice, scope(&alice), new)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
    }
    assert!(f
        .store
        .managed_objects(scope(&alice))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn lists_filter_and_page_and_metadata_and_consumers_change() {
    let f = fixture().await;
    let alice = keystone_user(&f, "alice", "p1", Role::KeyUser).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let info = f
            .service
            .create_object(
                &alice,
                scope(&alice),
                passphrase(&format!("n{}", i % 2), b"x"),
            )
            .await
            .unwrap();
        ids.push(info.id);
    }
    let filter = ObjectFilter {
        name: Some("n0".into()),
        offset: 1,
        limit: 1,
        ..ObjectFilter::default()
    };
    let page = f
        .service
        .list_objects(&alice, scope(&alice), &filter)
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(page.objects.len(), 1);
    assert_eq!(page.objects[0].id, ids[2]);

    let id = ids[0];
    let change = ObjectChange::PutMetadataItem {
        key: "purpose".into(),
        value: "volume".into(),
    };
    let info = f.service.update_object(&alice, id, change).await.unwrap();
    assert_eq!(info.attributes.metadata["purpose"], "volume");
    let consumer = ObjectConsumer {
        service: "volume".into(),
        resource_type: "volume".into(),
        resource_id: "v-1".into(),
    };
    for _ in 0..2 {
        let change = ObjectChange::AddConsumer(consumer.clone());
        let info = f.service.update_object(&alice, id, change).await.unwrap();
        assert_eq!(info.attributes.consumers, std::slice::from_ref(&consumer));
    }
    let in_use = f.service.delete_object(&alice, id).await.unwrap_err();
    assert_eq!(in_use.kind(), ErrorKind::InvalidState);
    assert!(in_use.message().contains("v-1"), "{in_use}");
    let change = ObjectChange::RemoveConsumer(consumer.clone());
    f.service.update_object(&alice, id, change).await.unwrap();
    let change = ObjectChange::RemoveConsumer(consumer);
    let gone = f
        .service
        .update_object(&alice, id, change)
        .await
        .unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound);

    f.service.delete_object(&alice, id).await.unwrap();
    assert_eq!(refused_read(&f, &alice, id).await, ErrorKind::NotFound);
}
