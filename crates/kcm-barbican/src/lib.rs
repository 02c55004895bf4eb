//! # kcm-barbican
//!
//! The OpenStack Key Manager API (Barbican v1) as a front door of kcm, on its own
//! listener, for the OpenStack services that keep keys in Barbican (Cinder, Nova,
//! Glance, Swift, Octavia through castellan; Ceph RGW).
//!
//! | route | what |
//! |---|---|
//! | `GET /`, `GET /v1` | version discovery (public) |
//! | `POST`, `GET /v1/secrets` | store a secret; list (filters `name`, `alg`, `mode`, `bits`, `secret_type`; paging) |
//! | `GET`, `PUT`, `DELETE /v1/secrets/{id}` | metadata (or the payload, by `Accept`); the payload of a metadata-only secret; delete |
//! | `GET /v1/secrets/{id}/payload` | the payload, as `Accept` asks |
//! | `/v1/secrets/{id}/metadata`, `…/metadata/{key}` | user metadata |
//! | `/v1/secrets/{id}/acl`, `/v1/containers/{id}/acl` | read ACLs |
//! | `/v1/secrets/{id}/consumers`, `/v1/containers/{id}/consumers` | consumers |
//! | `POST`, `GET /v1/containers`, `GET`, `DELETE /v1/containers/{id}` | containers: generic, rsa, certificate |
//! | `POST`, `GET /v1/orders`, `GET`, `DELETE /v1/orders/{id}` | symmetric keys and RSA key pairs, made at once |
//! | `/v1/cas…`, certificate orders | refused: kcm is no certificate authority |
//!
//! Callers are authenticated by Keystone tokens ([`auth`]): a project is a kcm
//! system of the tenant its domain maps to, registered on first use; Keystone's
//! `admin`, `member` and `reader` roles are kcm's tenant-admin, key-user and
//! auditor. Every request goes the way every door's does (`FrontDoor::begin` →
//! admit the caller → one core call → `Call::finish`, the audit record with the
//! door name `barbican`); the core authorises and holds every rule. Payloads are
//! sealed under the project's system key by the core, so the kill switch and the
//! revocation bound apply to them as to any key.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
mod call;
pub mod config;
pub mod error;
mod handlers;
pub mod keystone;
pub mod microversion;
pub mod paging;
pub mod payload;
pub mod refs;
pub mod request;
pub mod roles;
pub mod timefmt;
pub mod versions;
pub mod wire;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::routing::{any, get, MethodRouter};
use axum::Router;
use kcm_frontdoor::{Door, FrontDoor};

pub use config::{BarbicanConfig, BarbicanSettings};

/// How audit records and metrics name this front door, and the header that carries
/// the request id back (OpenStack's).
pub const DOOR: Door = Door {
    name: "barbican",
    request_id_header: "x-openstack-request-id",
};

/// What the Barbican door needs, shared by all requests.
#[derive(Clone, Debug)]
pub struct BarbicanApi {
    front: FrontDoor,
    auth: Arc<auth::Authenticator>,
    public_url: Option<String>,
    scheme: &'static str,
    listen: String,
}

impl BarbicanApi {
    /// The door over `front` (a [`FrontDoor`] named [`DOOR`]) as `config` says,
    /// serving HTTPS when `tls` (which refs built from requests then say).
    pub fn new(front: FrontDoor, config: &BarbicanConfig, tls: bool) -> Result<Self, String> {
        Ok(Self {
            front,
            auth: Arc::new(auth::Authenticator::new(config)?),
            public_url: config.public_url.clone(),
            scheme: if tls { "https" } else { "http" },
            listen: config.listen.to_string(),
        })
    }

    /// How refs are written in the answer to a request with `headers`.
    fn refs(&self, headers: &HeaderMap) -> refs::Refs {
        refs::Refs::for_request(
            self.public_url.as_deref(),
            self.scheme,
            headers,
            &self.listen,
        )
    }
}

/// Adds `path` and `path/` (python-barbicanclient posts to `secrets/`).
fn both(
    router: Router<BarbicanApi>,
    path: &str,
    methods: MethodRouter<BarbicanApi>,
) -> Router<BarbicanApi> {
    router
        .route(path, methods.clone())
        .route(&format!("{path}/"), methods)
}

/// The door's router: every Barbican route, Barbican-shaped 404 and 405 answers
/// for the rest. It is served on the door's own listener.
pub fn router(api: BarbicanApi) -> Router {
    use handlers::*;
    let mut r = Router::new().route("/", get(meta::root));
    r = both(r, "/v1", get(meta::v1));
    r = both(r, "/v1/secrets", get(secrets::list).post(secrets::create));
    r = both(
        r,
        "/v1/secrets/{id}",
        get(secrets::get)
            .put(secrets::put_payload)
            .delete(secrets::delete),
    );
    r = both(r, "/v1/secrets/{id}/payload", get(secrets::payload));
    r = both(
        r,
        "/v1/secrets/{id}/metadata",
        get(metadata::get_all)
            .put(metadata::replace)
            .post(metadata::add),
    );
    r = both(
        r,
        "/v1/secrets/{id}/metadata/{key}",
        get(metadata::get_one)
            .put(metadata::put_one)
            .delete(metadata::delete_one),
    );
    r = both(
        r,
        "/v1/secrets/{id}/acl",
        get(acl::get_secret_acl)
            .put(acl::put_secret_acl)
            .patch(acl::patch_secret_acl)
            .delete(acl::delete_secret_acl),
    );
    r = both(
        r,
        "/v1/secrets/{id}/consumers",
        get(consumers::list_secret_consumers)
            .post(consumers::add_secret_consumer)
            .delete(consumers::remove_secret_consumer),
    );
    r = both(
        r,
        "/v1/containers",
        get(containers::list).post(containers::create),
    );
    r = both(
        r,
        "/v1/containers/{id}",
        get(containers::get).delete(containers::delete),
    );
    r = both(
        r,
        "/v1/containers/{id}/acl",
        get(acl::get_container_acl)
            .put(acl::put_container_acl)
            .patch(acl::patch_container_acl)
            .delete(acl::delete_container_acl),
    );
    r = both(
        r,
        "/v1/containers/{id}/consumers",
        get(consumers::list_container_consumers)
            .post(consumers::add_container_consumer)
            .delete(consumers::remove_container_consumer),
    );
    r = both(r, "/v1/orders", get(orders::list).post(orders::create));
    r = both(
        r,
        "/v1/orders/{id}",
        get(orders::get).delete(orders::delete),
    );
    r.method_not_allowed_fallback(meta::method_not_allowed)
        .route("/v1/cas", any(meta::certificate_authorities))
        .route("/v1/cas/", any(meta::certificate_authorities))
        .route("/v1/cas/{*rest}", any(meta::certificate_authorities))
        .fallback(meta::unknown_path)
        .with_state(api)
}
