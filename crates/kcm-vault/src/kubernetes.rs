//! `auth/kubernetes/login`: a workload of a Kubernetes cluster (ceph-csi, an
//! operator, any pod) logs in with its service account's token, as with Vault's
//! Kubernetes auth method.
//!
//! kcm asks the cluster's TokenReview API whether the token is valid and whose it
//! is (`system:serviceaccount:<namespace>:<name>`); the role the login names must
//! admit that service account; the core then issues a session acting as the role's
//! Vault token ([`kcm_core::service::Service::issue_vault_session`]). kcm never
//! reads the token's claims itself: the API server, which signed it, decides.

use std::time::Duration;

use kcm_core::error::{Error, ErrorKind};
use kcm_core::service::{Service, VaultSession};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::config::{KubernetesAuthSettings, KubernetesRole};
use crate::error::VaultError;
use crate::request::Request;

/// The longest service account token kcm sends on (they are a few KB).
const MAX_JWT: usize = 16 * 1024;
/// The most of a TokenReview answer kcm reads.
const MAX_REVIEW: usize = 64 * 1024;

/// The Kubernetes auth method: the API server's client and the roles.
pub struct KubernetesAuth {
    http: reqwest::Client,
    review_url: String,
    reviewer_token: Option<Zeroizing<String>>,
    settings: KubernetesAuthSettings,
}

impl std::fmt::Debug for KubernetesAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesAuth")
            .field("review_url", &self.review_url)
            .field("roles", &self.settings.roles.len())
            .finish_non_exhaustive()
    }
}

/// A service account, as TokenReview names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccount {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
}

/// A successful login: the session and who logged in with which role.
#[derive(Debug)]
pub struct Login<'a> {
    /// The session the core issued.
    pub session: VaultSession,
    /// The service account.
    pub account: ServiceAccount,
    /// The role.
    pub role: &'a KubernetesRole,
}

impl KubernetesAuth {
    /// The auth method of `settings` (checked): its HTTP client and reviewer token.
    pub fn new(settings: KubernetesAuthSettings) -> Result<Self, String> {
        settings.validate()?;
        let reviewer_token = match &settings.reviewer_token_file {
            Some(path) => {
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    format!(
                        "vault_server.kubernetes.reviewer_token_file {}: {e}",
                        path.display()
                    )
                })?);
                Some(Zeroizing::new(text.trim().to_owned()))
            }
            None => None,
        };
        let timeout = Duration::from_secs(settings.timeout_seconds);
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(kcm_tls_client::client_config(
                &settings.api_server,
                settings.ca_file.as_deref(),
                "vault_server.kubernetes.ca_file",
            )?)
            // A redirect would carry the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(4)
            .build()
            .map_err(|e| format!("cannot build the Kubernetes API client: {e}"))?;
        Ok(Self {
            http,
            review_url: format!(
                "{}/apis/authentication.k8s.io/v1/tokenreviews",
                settings.api_server.trim_end_matches('/')
            ),
            reviewer_token,
            settings,
        })
    }

    /// Logs in with the `role` and `jwt` of a login request.
    pub async fn login<'a>(
        &'a self,
        service: &Service,
        request: &Request,
    ) -> Result<Login<'a>, VaultError> {
        let role_name = request
            .text("role")?
            .ok_or_else(|| VaultError::invalid("missing role"))?;
        let jwt = request
            .text("jwt")?
            .filter(|j| !j.is_empty())
            .ok_or_else(|| VaultError::invalid("missing jwt"))?;
        if jwt.len() > MAX_JWT {
            return Err(VaultError::invalid(format!(
                "the jwt is longer than {MAX_JWT} bytes"
            )));
        }
        let role = self
            .settings
            .roles
            .iter()
            .find(|r| r.name == role_name)
            .ok_or_else(|| VaultError::invalid(format!("invalid role name {role_name:?}")))?;
        let account = self.review(jwt).await?;
        let admits = |list: &[String], value: &str| list.iter().any(|v| v == "*" || v == value);
        if !admits(&role.service_account_names, &account.name)
            || !admits(&role.service_account_namespaces, &account.namespace)
        {
            return Err(denied(format!(
                "permission denied: service account {}/{} is not bound to role {role_name:?}",
                account.namespace, account.name
            )));
        }
        let ttl = Duration::from_secs(self.settings.token_ttl_seconds);
        let session = service.issue_vault_session(&role.access_key, ttl).await?;
        Ok(Login {
            session,
            account,
            role,
        })
    }

    /// Asks TokenReview whose `jwt` is.
    async fn review(&self, jwt: &str) -> Result<ServiceAccount, VaultError> {
        let bearer = match &self.reviewer_token {
            Some(t) => t.as_str(),
            None => jwt,
        };
        let mut spec = json!({ "token": jwt });
        if !self.settings.audiences.is_empty() {
            spec["audiences"] = json!(self.settings.audiences);
        }
        // The review carries the JWT to the API server: the body is handed to the HTTP
        // client as it is (no second copy), which owns it from then on.
        let body = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": spec,
        })
        .to_string();
        let unavailable = |why: String| {
            VaultError::unavailable(format!(
                "the Kubernetes API server at {} could not check the token: {why}",
                self.settings.api_server
            ))
        };
        let answer = self
            .http
            .post(&self.review_url)
            .bearer_auth(bearer)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        let status = answer.status();
        let bytes = answer
            .bytes()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        if bytes.len() > MAX_REVIEW {
            return Err(unavailable(format!("an answer of {} bytes", bytes.len())));
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(match self.reviewer_token {
                // kcm's own reviewer token was refused: the operator must fix it.
                Some(_) => unavailable(format!(
                    "it refused kcm's reviewer token ({status}); check reviewer_token_file and its RBAC"
                )),
                // Without a reviewer, the login's own token was refused.
                None => denied("permission denied: the service account token is not valid".into()),
            });
        }
        if !status.is_success() {
            return Err(unavailable(format!("it answered {status}")));
        }
        let review: Value = serde_json::from_slice(&bytes)
            .map_err(|_| unavailable("its answer is not JSON".into()))?;
        service_account_of(&review)
    }
}

fn denied(message: String) -> VaultError {
    VaultError::from(Error::new(ErrorKind::AccessDenied, message))
}

/// The service account a TokenReview answer names, if it authenticated the token.
pub fn service_account_of(review: &Value) -> Result<ServiceAccount, VaultError> {
    let status = &review["status"];
    if status["authenticated"] != Value::Bool(true) {
        return Err(denied(
            "permission denied: the service account token is not valid".into(),
        ));
    }
    let username = status["user"]["username"].as_str().unwrap_or("");
    let Some((namespace, name)) = username
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
        .filter(|(ns, n)| !ns.is_empty() && !n.is_empty() && !n.contains(':'))
    else {
        return Err(denied(format!(
            "permission denied: {username:?} is not a service account"
        )));
    };
    Ok(ServiceAccount {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        uid: status["user"]["uid"].as_str().unwrap_or("").to_owned(),
    })
}

/// The `auth` of a login's answer: the session token, and who logged in.
pub fn login_auth(login: &Login<'_>) -> Value {
    let ttl = (login.session.expires_at - kcm_core::service::now_ms()).max(0) / 1000;
    json!({
        "client_token": login.session.token.expose_secret(),
        "accessor": login.session.principal.access_key_id,
        "policies": ["default"],
        "token_policies": ["default"],
        "metadata": {
            "role": login.role.name,
            "service_account_name": login.account.name,
            "service_account_namespace": login.account.namespace,
            "service_account_uid": login.account.uid,
        },
        "lease_duration": ttl,
        "renewable": false,
        "entity_id": "",
        "token_type": "service",
        "orphan": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_review_names_a_service_account_or_refuses() {
        let ok = json!({"status": {"authenticated": true, "user": {
            "username": "system:serviceaccount:ceph-csi:rbd-csi", "uid": "u1"}}});
        assert_eq!(
            service_account_of(&ok).unwrap(),
            ServiceAccount {
                namespace: "ceph-csi".into(),
                name: "rbd-csi".into(),
                uid: "u1".into()
            }
        );
        for bad in [
            json!({"status": {"authenticated": false}}),
            json!({"status": {"authenticated": "true", "user": {"username": "system:serviceaccount:a:b"}}}),
            json!({"status": {"authenticated": true, "user": {"username": "alice"}}}),
            json!({"status": {"authenticated": true, "user": {"username": "system:serviceaccount::b"}}}),
            json!({"status": {"authenticated": true, "user": {"username": "system:serviceaccount:a:b:c"}}}),
            json!({}),
        ] {
            assert_eq!(
                service_account_of(&bad).unwrap_err().status(),
                http::StatusCode::FORBIDDEN,
                "{bad}"
            );
        }
    }
}
