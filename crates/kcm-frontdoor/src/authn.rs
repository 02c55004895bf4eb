//! Authentication (who is calling), as opposed to the core's authorisation (what the
//! caller may do): proves which access key sent a request, against the core's credentials.

use std::sync::Arc;

use http::{HeaderMap, Method, Uri};
use kcm_core::authz::Principal;
use kcm_core::error::{Error, ErrorKind};
use kcm_core::model::{AuditOutcome, CredentialKind};
use kcm_core::service::Service;
use kcm_sigv4::{AuthorizationHeader, CheckedHead, SigV4Error, SigningKey, SigningKeyCache};

/// Why a request could not be authenticated (named for authentication, so it is not
/// mistaken for an authorisation refusal, which is the core's `AccessDenied`).
#[derive(Debug)]
pub enum AuthnError {
    /// The core refused (unknown or disabled access key, store unavailable, …).
    Core(Error),
    /// The signature is missing, malformed, wrong or expired.
    Signature {
        /// The AWS error type (`InvalidSignatureException`, …).
        error_type: &'static str,
        /// What was wrong (never the secret or the expected signature).
        message: String,
    },
}

impl AuthnError {
    /// How the audit log classifies it: a signature that is missing, malformed or
    /// wrong is `denied`, and so is an unknown or disabled access key; when the core
    /// could not check the credential at all (its store is down), the request `failed`.
    pub fn audit_outcome(&self) -> AuditOutcome {
        match self {
            AuthnError::Core(e) => kcm_core::audit::outcome_of(e.kind()),
            AuthnError::Signature { .. } => AuditOutcome::Denied,
        }
    }
}

impl From<Error> for AuthnError {
    fn from(e: Error) -> Self {
        AuthnError::Core(e)
    }
}

impl From<SigV4Error> for AuthnError {
    fn from(e: SigV4Error) -> Self {
        AuthnError::Signature {
            error_type: e.aws_error_type(),
            message: e.to_string(),
        }
    }
}

/// What a door's SigV4 signatures are checked for: the service their scope names
/// and the kind of access key that may sign them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigV4Service {
    /// The service in the credential scope (`kms`, `kms-xks-proxy`).
    pub name: &'static str,
    /// The access keys this door takes; a key of another kind is an unknown key.
    pub credentials: CredentialKind,
}

impl SigV4Service {
    /// A service signed for with kcm's own access keys ([`CredentialKind::SigV4`]).
    pub const fn kcm(name: &'static str) -> Self {
        Self {
            name,
            credentials: CredentialKind::SigV4,
        }
    }
}

/// A SigV4 request whose head passed [`Authenticator::sigv4_head`]: the access key
/// it names is known and its scope and date are right; only the signature over the
/// body is left to check ([`Authenticator::sigv4_body`]).
pub struct SigV4Head {
    auth: AuthorizationHeader,
    checked: CheckedHead,
    key: Arc<SigningKey>,
    principal: Principal,
}

impl std::fmt::Debug for SigV4Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigV4Head")
            .field("access_key_id", &self.auth.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Authenticates requests: SigV4 for every front door, bearer tokens for `/v1`.
pub struct Authenticator {
    service: Arc<Service>,
    signing_keys: SigningKeyCache,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator")
    }
}

impl Authenticator {
    /// An authenticator asking `service` for credentials.
    pub fn new(service: Arc<Service>) -> Self {
        Self {
            service,
            signing_keys: SigningKeyCache::new(10_000),
        }
    }

    /// Checks what the head of a SigV4-signed request for `service` decides
    /// — the header's form, the scope (this region, this service), the date and its
    /// skew, the signed headers, no session token, and last (the one step that may
    /// reach the store) a known, enabled access key of the service's kind — so that
    /// a request failing any of it is refused before its body is read.
    /// [`Authenticator::sigv4_body`] then checks the signature over the body.
    pub async fn sigv4_head(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        service: SigV4Service,
    ) -> Result<SigV4Head, AuthnError> {
        let signing_service = service.name;
        let auth: AuthorizationHeader = kcm_sigv4::parse_authorization(headers)?;
        let region = self.service.region();
        let checked = kcm_sigv4::verify_head(
            uri,
            headers,
            &auth,
            region,
            signing_service,
            time::OffsetDateTime::now_utc(),
            kcm_sigv4::MAX_CLOCK_SKEW,
        )?;
        let credential = self
            .service
            .credential_of_kind(&auth.access_key_id, service.credentials)
            .await?;
        let key = self.signing_keys.get_or_derive(
            &auth.access_key_id,
            credential.secret().expose_secret(),
            &auth.scope.date,
            region,
            signing_service,
        );
        Ok(SigV4Head {
            auth,
            checked,
            key,
            principal: credential.principal.clone(),
        })
    }

    /// Checks the signature of a request whose head passed
    /// [`Authenticator::sigv4_head`] over its `body`: the caller it names.
    pub fn sigv4_body(
        &self,
        head: SigV4Head,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Principal, AuthnError> {
        kcm_sigv4::verify_signature(
            method,
            uri,
            headers,
            body,
            &head.auth,
            &head.key,
            &head.checked,
        )?;
        Ok(head.principal)
    }

    /// Verifies a SigV4-signed request for `service` in the service's region
    /// whose body is already in hand: [`Authenticator::sigv4_head`], then
    /// [`Authenticator::sigv4_body`].
    pub async fn authenticate_sigv4(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        service: SigV4Service,
    ) -> Result<Principal, AuthnError> {
        let head = self.sigv4_head(uri, headers, service).await?;
        self.sigv4_body(head, method, uri, headers, body)
    }

    /// Verifies `Authorization: Bearer <access key id>:<secret>`.
    pub async fn authenticate_bearer(&self, token: &str) -> Result<Principal, AuthnError> {
        let (id, secret) = token.split_once(':').ok_or_else(|| {
            Error::new(
                ErrorKind::UnknownAccessKey,
                "bearer token must be <access key id>:<secret>",
            )
        })?;
        Ok(self.service.authenticate_bearer(id, secret).await?)
    }
}
