//! # kcm-rest-api
//!
//! kcm's native REST management API, under `/v1`, described by an OpenAPI 3 document
//! served at `GET /v1/openapi.json` (DESIGN.md §5).
//!
//! | route | operation |
//! |---|---|
//! | `POST /v1/tenants`, `GET /v1/tenants`, `GET /v1/tenants/{id_or_name}` | tenants (the operator) |
//! | `POST /v1/access-keys`, `GET /v1/access-keys` | access keys of the caller's tenant |
//! | `POST /v1/access-keys/{id}/disable`, `…/enable`, `DELETE /v1/access-keys/{id}` | |
//! | `POST /v1/systems`, `GET /v1/systems`, `GET /v1/systems/{id_or_name}` | systems |
//! | `POST /v1/systems/{id_or_name}/switch-root-key` | re-wrap a system's key under another root key |
//! | `POST /v1/systems/{id_or_name}/link`, `…/unlink` | link a system to a root key, or erase its system key |
//! | `POST /v1/systems/{id_or_name}/rotate-key`, `…/rewrap?limit=N` | rotate a system key online, re-wrapping the keys below in batches |
//! | `POST /v1/root-keys`, `GET /v1/root-keys`, `GET /v1/root-keys/{id}` | root keys of the caller's tenant |
//! | `POST /v1/root-keys/{id}/disable`, `…/suspend`, `…/enable` (`?dry_run=true`) | the kill switch, with an impact preview |
//! | `POST /v1/root-keys/{id}/rotate` | new root material; the system keys below are re-wrapped |
//! | `POST /v1/root-keys/import-parameters`, `POST /v1/root-keys/import` | bring your own root key (BYOK) |
//! | `POST /v1/root-keys/reference` | hold your own root key (HYOK): refer to a key in a keystore |
//! | `GET /v1/keychain` | the tenant's tree: root keys → systems → service keys |
//! | `GET /v1/audit`, `…/checkpoints`, `…/head`, `…/signing-key` | the caller's audit chain |
//! | `GET /v1/backup` | a backup archive of the whole store (the operator; binary) |
//! | `GET /v1/openapi.json` | this API's description (no authentication) |
//!
//! Every other route authenticates with the same credentials as the AWS API: either
//! `Authorization: Bearer <access key id>:<secret>` (for scripts) or an AWS SigV4
//! signature with signing service `kcm`.
//!
//! The front door is thin by design: each request takes the path every door shares
//! ([`kcm_frontdoor::Call`]: authenticate, one core call, finish with the audit
//! record, request id and metrics); between those steps it parses the JSON, calls one
//! [`kcm_core::service::Service`] method and shapes the answer. Authorisation,
//! validation and lifecycle rules are the core's. Core errors become
//! `{"error": {"code": …, "message": …}}` bodies through one mapping,
//! [`error::status_and_code`]. Secrets appear only in the responses that create
//! them (`POST /v1/tenants`, `POST /v1/access-keys`) and never in logs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
mod call;
pub mod error;
mod handlers;
mod keys;
mod request;
mod root_keys;
mod wire;

#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::routing::{any, delete, get, post};
use kcm_core::service::Service;
use kcm_frontdoor::{Authenticator, Door, FrontDoor, Metrics};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::OpenApi as _;

/// How audit records and metrics name this front door, and the header that carries
/// the request id back.
pub const DOOR: Door = Door {
    name: "rest",
    request_id_header: "x-kcm-request-id",
};

/// SigV4 signing service name of the REST API.
pub const SIGNING_SERVICE: &str = request::SIGNING_SERVICE;

/// What the REST front door needs, shared by all requests.
#[derive(Clone, Debug)]
pub struct RestApi {
    front: FrontDoor,
}

impl RestApi {
    /// A front door over `service`, authenticating with `auth` and recording into `metrics`.
    pub fn new(service: Arc<Service>, auth: Arc<Authenticator>, metrics: Arc<Metrics>) -> Self {
        Self {
            front: FrontDoor::new(DOOR, service, auth, metrics),
        }
    }

    /// The core.
    fn service(&self) -> &Service {
        self.front.service()
    }
}

/// The router of this front door: every `/v1` route, with JSON 404 and 405 answers
/// for paths and methods it does not serve. It carries no fallback of its own, so it
/// merges with the other front doors' routers.
pub fn router(api: RestApi) -> axum::Router {
    use handlers::*;
    use root_keys::*;
    axum::Router::new()
        .route("/v1/openapi.json", get(openapi_json))
        .route("/v1/tenants", post(create_tenant).get(list_tenants))
        .route("/v1/tenants/{id_or_name}", get(get_tenant))
        .route(
            "/v1/access-keys",
            post(create_access_key).get(list_access_keys),
        )
        .route("/v1/access-keys/{id}", delete(delete_access_key))
        .route("/v1/access-keys/{id}/disable", post(disable_access_key))
        .route("/v1/access-keys/{id}/enable", post(enable_access_key))
        .route("/v1/systems", post(create_system).get(list_systems))
        .route("/v1/systems/{id_or_name}", get(get_system))
        .route(
            "/v1/systems/{id_or_name}/rotate-key",
            post(rotate_system_key),
        )
        .route("/v1/systems/{id_or_name}/rewrap", post(rewrap_system_keys))
        .route(
            "/v1/systems/{id_or_name}/switch-root-key",
            post(switch_system_root_key),
        )
        .route("/v1/systems/{id_or_name}/link", post(link_system))
        .route("/v1/systems/{id_or_name}/unlink", post(unlink_system))
        .route("/v1/root-keys", post(create_root_key).get(list_root_keys))
        .route("/v1/root-keys/import-parameters", post(import_parameters))
        .route("/v1/root-keys/reference", post(reference_root_key))
        .route("/v1/root-keys/import", post(import_root_key))
        .route("/v1/root-keys/{id}", get(get_root_key))
        .route("/v1/root-keys/{id}/enable", post(enable_root_key))
        .route("/v1/root-keys/{id}/disable", post(disable_root_key))
        .route("/v1/root-keys/{id}/rotate", post(rotate_root_key))
        .route("/v1/root-keys/{id}/suspend", post(suspend_root_key))
        .route(
            "/v1/root-keys/{id}/compromise",
            post(mark_root_key_compromised),
        )
        .route(
            "/v1/keys/{key}/compromise",
            post(keys::mark_key_compromised),
        )
        .route(
            "/v1/keys/{key}/destroy",
            post(keys::destroy_compromised_key),
        )
        .route("/v1/keychain", get(keychain))
        .route("/v1/audit", get(audit::list_records))
        .route("/v1/audit/checkpoints", get(audit::list_checkpoints))
        .route("/v1/audit/signing-key", get(audit::signing_key))
        .route("/v1/audit/head", get(audit::head))
        .route("/v1/backup", get(backup))
        // A known path called with a method it does not serve: a JSON 405. Set once
        // here, for the routes above only (the catch-alls below take every method).
        .method_not_allowed_fallback(method_not_allowed)
        // Everything else under /v1 is answered (and audited) as an unknown path.
        .route("/v1", any(unknown_path))
        .route("/v1/", any(unknown_path))
        .route("/v1/{*rest}", any(unknown_path))
        .with_state(api)
}

/// Body of `GET /v1/backup`: a kcm backup archive (`KCMBAK1`), binary.
///
/// Only for the OpenAPI document; the handler sends the archive bytes as they are.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct BackupArchiveBody(pub Vec<u8>);

/// The one route that is public: this document itself.
const PUBLIC_DOCUMENT: &str = "/v1/openapi.json";

/// What every authenticated route can answer, whatever its handler does: the request
/// path every route shares ([`RestApi::serve`]) produces these before, around or
/// after the handler's one core call. A route's own `responses(...)` name what is
/// particular to it (its success, and a 404 or 409 that only some routes can give);
/// [`SharedResponses`] adds each of these that the route does not already describe in
/// its own words.
const SHARED_RESPONSES: [(&str, &str); 8] = [
    (
        "400",
        "The request cannot be read: a body that is not a JSON object of this operation's \
         shape, a path or query parameter of the wrong form, or a body the connection \
         could not deliver",
    ),
    ("401", "Not authenticated"),
    (
        "403",
        "The caller's role, operations or system scope do not allow this operation",
    ),
    (
        "408",
        "The request body did not arrive within the body timeout",
    ),
    (
        "413",
        "The request body is larger than 64 KiB (refused from Content-Length before it is read)",
    ),
    (
        "429",
        "`Throttled`: the caller's access key or tenant exceeded its request-rate quota \
         (`[rate_limits]`); nothing was done, retry after the delay the message names",
    ),
    (
        "500",
        "`Internal`: an internal error (logged by the server); or `Unaudited`: the request \
         was carried out but its audit record could not be written, so check its effect \
         before repeating it",
    ),
    (
        "503",
        "The store or a keystore is unavailable, or the server is busy reading other \
         requests' bodies; retry (`Retry-After`)",
    ),
];

/// What every route with a path parameter can answer besides: nothing by that id or
/// name, as well as a path whose parameter no route takes (it contains a `/`).
const NOT_FOUND: &str = "Nothing by this id or name is visible to the caller";

/// The error response `description`: an [`ErrorBody`](kcm_api_types::ErrorBody) as JSON.
fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// How to authenticate and what the shared request path answers, said once for the
/// whole document: the two schemes, and on every operation but [`PUBLIC_DOCUMENT`]
/// that one of them is required and every status of [`SHARED_RESPONSES`] (and, on
/// routes with a path parameter, 404). Every such route goes through the same
/// [`RestApi::serve`], so the routes do not each repeat them. Added entries are
/// inline objects, not `$ref`s, like the routes' own.
struct SharedResponses;

impl utoipa::Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("<access key id>:<secret>")
                    .description(Some(
                        "An access key id and its secret joined by a colon: \
                         `Authorization: Bearer KCMEXAMPLE:secret`. Meant for scripts; \
                         prefer SigV4 where the client supports it.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "sigv4",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "AWS Signature Version 4 (`AWS4-HMAC-SHA256 Credential=<access key id>/<date>/<region>/kcm/aws4_request, …`) \
                 with signing service `kcm` and the server's region; the body is part of the signature \
                 (`x-amz-content-sha256` optional). Any AWS SDK signer works.",
            ))),
        );
        let required = ["bearer", "sigv4"].map(|scheme| SecurityRequirement::new(scheme, [""; 0]));
        for (path, item) in &mut openapi.paths.paths {
            if path == PUBLIC_DOCUMENT {
                continue;
            }
            let names_something = path.contains('{');
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                operation.security = Some(required.to_vec());
                let responses = &mut operation.responses.responses;
                let not_found = names_something.then_some(("404", NOT_FOUND));
                for (status, description) in SHARED_RESPONSES.into_iter().chain(not_found) {
                    responses
                        .entry(status.into())
                        .or_insert_with(|| RefOr::T(error_response(description)));
                }
            }
        }
    }
}

/// What the request schemas can say that their types alone do not: the roles and
/// operation names an access key may be given (the core's tables: every role but
/// the operator's), and that a system
/// registered without a link (`"link": false`) names no root key. With these, a
/// body the document admits is one the server takes, short of what only the
/// server's state or configuration decides (which keystores exist, whether a name is
/// taken, whether an import token is live).
struct RequestConstraints;

impl utoipa::Modify for RequestConstraints {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{
            AllOfBuilder, AnyOfBuilder, ArrayItems, ObjectBuilder, Schema, Type,
        };
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let schemas = &mut components.schemas;
        if let Some(RefOr::T(Schema::Object(request))) = schemas.get_mut("CreateAccessKeyRequest") {
            let tenant_roles = kcm_core::model::ALL_ROLES
                .into_iter()
                .filter(|role| *role != kcm_core::model::Role::SystemAdmin)
                .map(|role| role.as_str().into());
            let role = ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(tenant_roles.collect::<Vec<serde_json::Value>>()))
                .description(Some(
                    "Role of the new key: any role but `system-admin`, which only the operator's \
                     keys have",
                ));
            request.properties.insert("role".into(), role.into());
            if let Some(RefOr::T(Schema::Array(operations))) =
                request.properties.get_mut("operations")
            {
                if let ArrayItems::RefOrSchema(item) = &mut operations.items {
                    if let RefOr::T(Schema::Object(name)) = item.as_mut() {
                        let names = kcm_core::authz::ALL_OPS.iter().map(|op| op.as_str().into());
                        name.enum_values = Some(names.collect());
                    }
                }
            }
        }
        if let Some(RefOr::T(request)) = schemas.get_mut("CreateAccessKeyRequest") {
            let sigv4 = ObjectBuilder::new().property(
                "kind",
                ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                        Type::String,
                        Type::Null,
                    ]))
                    .enum_values(Some([serde_json::json!("sigv4"), serde_json::Value::Null])),
            );
            let xks = ObjectBuilder::new()
                .property(
                    "kind",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(["xks"])),
                )
                .property(
                    "role",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(["key-user"])),
                )
                .property("operations", ObjectBuilder::new().schema_type(Type::Null))
                .property("system", ObjectBuilder::new().schema_type(Type::String))
                .required("kind")
                .required("system");
            let consistent = AnyOfBuilder::new().item(sigv4).item(xks).description(Some(
                "An access key of kind `xks` is a key-user of one system (`system` required) \
                     and takes no `operations`: it may call the XKS operations only",
            ));
            let object = std::mem::replace(request, Schema::Object(Default::default()));
            *request = AllOfBuilder::new()
                .item(object)
                .item(consistent)
                .build()
                .into();
        }
        if let Some(RefOr::T(request)) = schemas.get_mut("CreateSystemRequest") {
            let linked = ObjectBuilder::new().property(
                "link",
                ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                        Type::Boolean,
                        Type::Null,
                    ]))
                    .enum_values(Some([serde_json::json!(true), serde_json::Value::Null])),
            );
            let no_root_key = ObjectBuilder::new()
                .property("root_key_id", ObjectBuilder::new().schema_type(Type::Null));
            let consistent = AnyOfBuilder::new()
                .item(linked)
                .item(no_root_key)
                .description(Some(
                    "A system registered without a link (`\"link\": false`) names no root key",
                ));
            let object = std::mem::replace(request, Schema::Object(Default::default()));
            *request = AllOfBuilder::new()
                .item(object)
                .item(consistent)
                .build()
                .into();
        }
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "kcm REST API",
        description = "Native management API of kcm, the key chain manager: tenants, access keys, \
                       root keys, systems, the keychain, the audit log and backups. Errors are `{\"error\": {\"code\", \"message\"}}` with \
                       codes InvalidInput and the other validation codes (400), Unauthenticated (401), AccessDenied (403), \
                       NotFound (404), MethodNotAllowed (405), RequestTimeout (408), AlreadyExists (409), \
                       InvalidState (409), PayloadTooLarge (413), Throttled (429), Internal and Unaudited (500) and Unavailable (503). \
                       Every operation lists every status it can answer.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        handlers::create_tenant,
        handlers::list_tenants,
        handlers::get_tenant,
        handlers::create_access_key,
        handlers::list_access_keys,
        handlers::disable_access_key,
        handlers::enable_access_key,
        handlers::delete_access_key,
        handlers::create_system,
        handlers::list_systems,
        handlers::get_system,
        handlers::switch_system_root_key,
        handlers::link_system,
        handlers::unlink_system,
        handlers::rotate_system_key,
        handlers::rewrap_system_keys,
        handlers::keychain,
        keys::mark_key_compromised,
        keys::destroy_compromised_key,
        root_keys::create_root_key,
        root_keys::list_root_keys,
        root_keys::get_root_key,
        root_keys::enable_root_key,
        root_keys::disable_root_key,
        root_keys::suspend_root_key,
        root_keys::mark_root_key_compromised,
        root_keys::rotate_root_key,
        root_keys::import_parameters,
        root_keys::import_root_key,
        root_keys::reference_root_key,
        audit::list_records,
        audit::list_checkpoints,
        audit::signing_key,
        audit::head,
        handlers::backup,
        handlers::openapi_json,
    ),
    components(schemas(kcm_api_types::ErrorBody, kcm_api_types::ErrorDetail, kcm_api_types::RoleName, kcm_api_types::WrappingAlgorithm, kcm_api_types::WrappingKeySpec, BackupArchiveBody)),
    modifiers(&SharedResponses, &RequestConstraints),
    tags(
        (name = "tenants", description = "Tenants: isolation boundaries, managed by the operator (system-admin)"),
        (name = "access-keys", description = "Access keys of the caller's tenant"),
        (name = "systems", description = "Systems: consumer environments, each with a system key under a root key"),
        (name = "root-keys", description = "Root keys (L1) in keystores, and the kill switch: disable, suspend, enable with an impact preview"),
        (name = "keys", description = "Service keys: the lifecycle changes the AWS KMS API has no words for (compromise)"),
        (name = "keychain", description = "The tenant's tree of root keys, systems and service keys"),
        (name = "audit", description = "The tamper-evident audit log: records, signed checkpoints, a signed head, the signing key"),
        (name = "backup", description = "Backup archives of the whole store, for the operator (system-admin)"),
        (name = "meta", description = "About this API"),
    ),
)]
struct ApiDoc;

/// The OpenAPI 3 document of the REST API (served at `GET /v1/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The serialized document, built once.
fn openapi_json() -> &'static Bytes {
    static JSON: OnceLock<Bytes> = OnceLock::new();
    JSON.get_or_init(|| {
        let json = openapi().to_json().unwrap_or_else(|e| {
            format!("{{\"error\":\"cannot render the OpenAPI document: {e}\"}}")
        });
        Bytes::from(json)
    })
}
