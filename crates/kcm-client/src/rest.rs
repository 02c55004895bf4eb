//! The native REST API client (`/v1`, SigV4 service `kcm`): one method per route,
//! taking and returning the bodies of [`kcm_api_types`], so that the client and the
//! server cannot disagree on a field without the build saying so.

use http::{HeaderMap, HeaderValue, Method};
use kcm_api_types::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::rest_error;
use crate::signing::{connection_setup, Connection};
use crate::ClientError;

/// The SigV4 service name of the REST API.
const SERVICE: &str = "kcm";

/// A client for the native REST API under `/v1`.
#[derive(Debug, Clone)]
pub struct RestClient {
    conn: Connection,
}

/// A kill-switch change of a root key: the route it is sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootKeyChange {
    /// `…/enable`: everything below works again.
    Enable,
    /// `…/disable`: everything below refuses every operation.
    Disable,
    /// `…/suspend`: everything below may only decrypt.
    Suspend,
    /// `…/compromise`: everything below may only decrypt, for good.
    MarkCompromised,
}

impl RootKeyChange {
    fn verb(self) -> &'static str {
        match self {
            RootKeyChange::Enable => "enable",
            RootKeyChange::Disable => "disable",
            RootKeyChange::Suspend => "suspend",
            RootKeyChange::MarkCompromised => "compromise",
        }
    }
}

impl RestClient {
    connection_setup!(SERVICE);

    /// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
    pub fn encode_segment(segment: &str) -> String {
        let mut out = String::with_capacity(segment.len());
        for b in segment.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    // ------------------------------------------------------------ tenants

    /// `POST /v1/tenants` (system-admin): a tenant and its first tenant-admin key.
    pub async fn create_tenant(
        &self,
        body: &CreateTenantRequest,
    ) -> Result<CreateTenantResponse, ClientError> {
        self.send(Method::POST, "/tenants", Some(body)).await
    }

    /// `GET /v1/tenants` (system-admin).
    pub async fn list_tenants(&self) -> Result<TenantList, ClientError> {
        self.get("/tenants").await
    }

    /// `GET /v1/tenants/{id_or_name}`.
    pub async fn get_tenant(&self, id_or_name: &str) -> Result<Tenant, ClientError> {
        self.get(&path("/tenants", id_or_name, "")).await
    }

    // ------------------------------------------------------------ access keys

    /// `POST /v1/access-keys`: the new key, with its secret (shown only here).
    pub async fn create_access_key(
        &self,
        body: &CreateAccessKeyRequest,
    ) -> Result<CreatedAccessKey, ClientError> {
        self.send(Method::POST, "/access-keys", Some(body)).await
    }

    /// `GET /v1/access-keys` (never with secrets).
    pub async fn list_access_keys(&self) -> Result<AccessKeyList, ClientError> {
        self.get("/access-keys").await
    }

    /// `POST /v1/access-keys/{id}/enable` or `…/disable`.
    pub async fn set_access_key_enabled(
        &self,
        id: &str,
        enabled: bool,
    ) -> Result<AccessKey, ClientError> {
        let verb = if enabled { "/enable" } else { "/disable" };
        self.post(&path("/access-keys", id, verb)).await
    }

    /// `DELETE /v1/access-keys/{id}`.
    pub async fn delete_access_key(&self, id: &str) -> Result<(), ClientError> {
        let url = self
            .conn
            .url(&format!("/v1{}", path("/access-keys", id, "")));
        let (status, bytes) = self
            .conn
            .send(Method::DELETE, &url, HeaderMap::new(), Vec::new())
            .await?;
        check(status, &bytes)
    }

    // ------------------------------------------------------------ systems

    /// `POST /v1/systems`.
    pub async fn create_system(&self, body: &CreateSystemRequest) -> Result<System, ClientError> {
        self.send(Method::POST, "/systems", Some(body)).await
    }

    /// `GET /v1/systems`.
    pub async fn list_systems(&self) -> Result<SystemList, ClientError> {
        self.get("/systems").await
    }

    /// `GET /v1/systems/{id_or_name}`.
    pub async fn get_system(&self, id_or_name: &str) -> Result<System, ClientError> {
        self.get(&path("/systems", id_or_name, "")).await
    }

    /// `POST /v1/systems/{id_or_name}/link`.
    pub async fn link_system(
        &self,
        id_or_name: &str,
        body: &LinkSystemRequest,
    ) -> Result<System, ClientError> {
        let path = path("/systems", id_or_name, "/link");
        self.send(Method::POST, &path, Some(body)).await
    }

    /// `POST /v1/systems/{id_or_name}/unlink`.
    pub async fn unlink_system(&self, id_or_name: &str) -> Result<System, ClientError> {
        self.post(&path("/systems", id_or_name, "/unlink")).await
    }

    /// `POST /v1/systems/{id_or_name}/switch-root-key`.
    pub async fn switch_system_root_key(
        &self,
        id_or_name: &str,
        body: &SwitchRootKeyRequest,
    ) -> Result<System, ClientError> {
        let path = path("/systems", id_or_name, "/switch-root-key");
        self.send(Method::POST, &path, Some(body)).await
    }

    /// `POST /v1/systems/{id_or_name}/rotate-key`: a new system key version, active at once.
    pub async fn rotate_system_key(
        &self,
        id_or_name: &str,
    ) -> Result<SystemKeyRotationBody, ClientError> {
        self.post(&path("/systems", id_or_name, "/rotate-key"))
            .await
    }

    /// `POST /v1/systems/{id_or_name}/rewrap?limit=N`: one batch of a rotation.
    pub async fn rewrap_system_keys(
        &self,
        id_or_name: &str,
        params: &RewrapParams,
    ) -> Result<SystemKeyRotationBody, ClientError> {
        let path = path("/systems", id_or_name, "/rewrap") + &query(params)?;
        self.post(&path).await
    }

    /// `GET /v1/keychain`.
    pub async fn keychain(&self) -> Result<Keychain, ClientError> {
        self.get("/keychain").await
    }

    // ------------------------------------------------------------ root keys

    /// `POST /v1/root-keys`: a root key generated in a keystore.
    pub async fn create_root_key(
        &self,
        body: &CreateRootKeyRequest,
    ) -> Result<RootKey, ClientError> {
        self.send(Method::POST, "/root-keys", Some(body)).await
    }

    /// `GET /v1/root-keys`.
    pub async fn list_root_keys(&self) -> Result<RootKeyList, ClientError> {
        self.get("/root-keys").await
    }

    /// `GET /v1/root-keys/{id}`.
    pub async fn get_root_key(&self, id: &str) -> Result<RootKey, ClientError> {
        self.get(&path("/root-keys", id, "")).await
    }

    /// `POST /v1/root-keys/{id}/enable|disable|suspend|compromise`, or with `dry_run` only the
    /// impact preview.
    pub async fn change_root_key_state(
        &self,
        id: &str,
        change: RootKeyChange,
        params: &StateChangeParams,
    ) -> Result<RootKeyImpactBody, ClientError> {
        let verb = format!("/{}", change.verb());
        self.post(&(path("/root-keys", id, &verb) + &query(params)?))
            .await
    }

    /// `POST /v1/keys/{key}/compromise`: `key` is a key id or an alias.
    pub async fn mark_key_compromised(&self, key: &str) -> Result<ServiceKey, ClientError> {
        self.post(&path("/keys", key, "/compromise")).await
    }

    /// `POST /v1/keys/{key}/destroy`: destroys a compromised key at once.
    pub async fn destroy_compromised_key(&self, key: &str) -> Result<ServiceKey, ClientError> {
        self.post(&path("/keys", key, "/destroy")).await
    }

    /// `POST /v1/root-keys/{id}/rotate`.
    pub async fn rotate_root_key(&self, id: &str) -> Result<RootKeyImpactBody, ClientError> {
        self.post(&path("/root-keys", id, "/rotate")).await
    }

    /// `POST /v1/root-keys/import-parameters` (BYOK, step 1).
    pub async fn root_key_import_parameters(
        &self,
        body: &RootKeyImportParametersRequest,
    ) -> Result<RootKeyImportParameters, ClientError> {
        self.send(Method::POST, "/root-keys/import-parameters", Some(body))
            .await
    }

    /// `POST /v1/root-keys/import` (BYOK, step 2).
    pub async fn import_root_key(
        &self,
        body: &ImportRootKeyRequest,
    ) -> Result<RootKey, ClientError> {
        self.send(Method::POST, "/root-keys/import", Some(body))
            .await
    }

    /// `POST /v1/root-keys/reference` (HYOK).
    pub async fn reference_root_key(
        &self,
        body: &ReferenceRootKeyRequest,
    ) -> Result<RootKey, ClientError> {
        self.send(Method::POST, "/root-keys/reference", Some(body))
            .await
    }

    // ------------------------------------------------------------ audit

    /// `GET /v1/audit`: a page of the caller's audit chain. `R` is the record type
    /// (the core's `AuditRecord`; this crate does not depend on the core).
    pub async fn audit_records<R: DeserializeOwned>(
        &self,
        params: &AuditParams,
    ) -> Result<AuditPage<R>, ClientError> {
        self.get(&format!("/audit{}", query(params)?)).await
    }

    /// `GET /v1/audit/checkpoints`: a page of signed checkpoints (`C`: the core's
    /// `AuditCheckpoint`).
    pub async fn audit_checkpoints<C: DeserializeOwned>(
        &self,
        params: &CheckpointParams,
    ) -> Result<CheckpointPage<C>, ClientError> {
        self.get(&format!("/audit/checkpoints{}", query(params)?))
            .await
    }

    /// `GET /v1/audit/head`: the chain's signed head, made now (`C`: the core's
    /// `AuditCheckpoint`).
    pub async fn audit_head<C: DeserializeOwned>(&self) -> Result<HeadOf<C>, ClientError> {
        self.get("/audit/head").await
    }

    /// `GET /v1/audit/signing-key`.
    pub async fn audit_signing_key(&self) -> Result<SigningKey, ClientError> {
        self.get("/audit/signing-key").await
    }

    // ------------------------------------------------------------ backup

    /// `GET /v1/backup` (system-admin): the archive, written to `sink` as it arrives.
    /// `progress(received, total)` is called after each piece, with the
    /// `Content-Length` as `total` when the server sent one. Fails if the body ends
    /// before the announced length. Returns the bytes received.
    pub async fn backup(
        &self,
        sink: &mut impl std::io::Write,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> Result<u64, ClientError> {
        let url = self.conn.url("/v1/backup");
        let mut response = self
            .conn
            .send_streaming(Method::GET, &url, HeaderMap::new(), Vec::new())
            .await?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let bytes = response
                .bytes()
                .await
                .map_err(|e| ClientError::transport(&url, &e))?;
            return Err(rest_error(status, &bytes));
        }
        let total = response.content_length();
        let mut received = 0u64;
        progress(0, total);
        while let Some(piece) = response
            .chunk()
            .await
            .map_err(|e| ClientError::transport(&url, &e))?
        {
            sink.write_all(&piece)
                .map_err(|e| ClientError::Io(e.to_string()))?;
            received += piece.len() as u64;
            progress(received, total);
        }
        if let Some(total) = total {
            if received != total {
                return Err(ClientError::InvalidResponse {
                    status,
                    detail: format!("the download ended after {received} of {total} bytes; retry"),
                });
            }
        }
        sink.flush().map_err(|e| ClientError::Io(e.to_string()))?;
        Ok(received)
    }

    // ------------------------------------------------------------ plumbing

    /// `GET /v1<path>`.
    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(Method::GET, path, None::<&()>).await
    }

    /// `POST /v1<path>` of a route that takes no body.
    async fn post<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(Method::POST, path, None::<&()>).await
    }

    /// `method /v1<path>` with an optional JSON body; the JSON answer as `T`.
    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let url = self.conn.url(&format!("/v1{path}"));
        let mut headers = HeaderMap::new();
        let body = match body {
            Some(b) => {
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                serde_json::to_vec(b).map_err(|e| ClientError::InvalidResponse {
                    status: 0,
                    detail: format!("cannot serialise the request: {e}"),
                })?
            }
            None => Vec::new(),
        };
        let (status, bytes) = self.conn.send(method, &url, headers, body).await?;
        check(status, &bytes)?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::InvalidResponse {
            status,
            detail: format!("the response is not the JSON this client expects: {e}"),
        })
    }
}

/// `Ok` for a 2xx status, else the REST error the body carries.
fn check(status: u16, body: &[u8]) -> Result<(), ClientError> {
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(rest_error(status, body))
    }
}

/// `<collection>/<id, encoded><rest>`.
fn path(collection: &str, id: &str, rest: &str) -> String {
    format!("{collection}/{}{rest}", RestClient::encode_segment(id))
}

/// `?name=value&…` of the parameters that are set (empty when none is).
fn query(params: &impl Serialize) -> Result<String, ClientError> {
    let value = serde_json::to_value(params).map_err(|e| ClientError::InvalidResponse {
        status: 0,
        detail: format!("cannot serialise the query: {e}"),
    })?;
    let mut out = String::new();
    for (name, value) in value.as_object().into_iter().flatten() {
        let text = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => RestClient::encode_segment(s),
            other => other.to_string(),
        };
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(name);
        out.push('=');
        out.push_str(&text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcm_sigv4::Credentials;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(RestClient::encode_segment("alias/a b"), "alias%2Fa%20b");
        assert_eq!(RestClient::encode_segment("k-1_.~"), "k-1_.~");
    }

    #[test]
    fn queries_carry_only_what_is_set() {
        assert_eq!(query(&AuditParams::default()).unwrap(), "");
        let params = AuditParams {
            after: Some(7),
            limit: Some(1000),
            operation: Some("Create System".into()),
            ..AuditParams::default()
        };
        assert_eq!(
            query(&params).unwrap(),
            "?after=7&limit=1000&operation=Create%20System"
        );
        assert_eq!(
            query(&StateChangeParams { dry_run: true }).unwrap(),
            "?dry_run=true"
        );
    }

    #[test]
    fn endpoints_are_validated() {
        let c = Credentials::new("a", "s");
        assert!(RestClient::new("http://127.0.0.1:8990/", c.clone()).is_ok());
        assert!(RestClient::new("127.0.0.1:8990", c.clone()).is_err());
        assert!(crate::KmsClient::new("ftp://x", c).is_err());
    }
}
