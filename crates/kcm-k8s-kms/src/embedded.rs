//! The backend of the plugin inside `kcm serve`, for a single host: the core itself,
//! through the shared front-door path, as the door `k8s-kms`.
//!
//! Whoever can open the socket (mode 0600: the server's own user) acts as one
//! configured access key: the door admits that key's principal (read through the
//! core's credential cache, so a disabled or deleted key stops working within the
//! revocation bound) and the core authorises every call as it would that key's.
//! Each call is one core call between `FrontDoor::begin` and `Call::finish`, so it
//! is audited with the door's name and the API server's uid.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use async_trait::async_trait;
use kcm_core::audit::outcome_of;
use kcm_core::authz::{Caller, Op};
use kcm_core::error::{Error, ErrorKind};
use kcm_core::lifecycle::KeyState;
use kcm_core::model::{AuditOutcome, KeyId};
use kcm_core::service::{KeyRef, Service};
use kcm_frontdoor::{Answer, Door, DoorError, FrontDoor};
use zeroize::Zeroizing;

use crate::backend::grpc_code;
use crate::{BackendError, KeyBackend, CLUSTER_CONTEXT_KEY};

/// How the embedded plugin is named in audit records and metrics.
pub const DOOR: Door = Door {
    name: "k8s-kms",
    // gRPC metadata keys are lower case; the API server does not read it, the log does.
    request_id_header: "x-kcm-request-id",
};

/// One kcm service key used for one cluster, through the core of this process.
pub struct EmbeddedKey {
    front: FrontDoor,
    access_key_id: String,
    key: KeyRef,
    context: BTreeMap<String, String>,
}

impl std::fmt::Debug for EmbeddedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedKey")
            .field("access_key_id", &self.access_key_id)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Reads a key setting: a key id, or `alias/NAME`.
pub fn parse_key(text: &str) -> Result<KeyRef, String> {
    if text.starts_with("alias/") && text.len() > "alias/".len() {
        return Ok(KeyRef::Alias(text.to_owned()));
    }
    KeyId::parse(text)
        .map(KeyRef::Id)
        .ok_or_else(|| format!("{text:?} is neither a key id nor alias/NAME"))
}

impl EmbeddedKey {
    /// The key `key` for the cluster `cluster`, used as the access key
    /// `access_key_id` through `front` (a front door named [`DOOR`]).
    pub fn new(
        front: FrontDoor,
        access_key_id: impl Into<String>,
        key: KeyRef,
        cluster: impl Into<String>,
    ) -> Self {
        Self {
            front,
            access_key_id: access_key_id.into(),
            key,
            context: BTreeMap::from([(CLUSTER_CONTEXT_KEY.to_owned(), cluster.into())]),
        }
    }

    /// Runs one core call for `op` as the configured access key, between the door's
    /// begin and finish (the audit record, with the API server's `uid`).
    async fn through_door<T, F>(&self, op: Op, uid: &str, call: F) -> Result<T, BackendError>
    where
        F: AsyncFnOnce(&Service, &Caller) -> Result<T, Error>,
    {
        let service = self.front.service();
        let mut door_call = self.front.begin(op, None, None);
        door_call.set_client_request_id(uid);
        let result = match service.credential(&self.access_key_id).await {
            Ok(credential) => match door_call.admit(credential.principal.clone()) {
                Ok(caller) => call(service, caller).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let answered = door_call
            .finish(result.map(Answered::ok).map_err(EmbeddedError::<T>::from))
            .await;
        answered.0
    }
}

#[async_trait]
impl KeyBackend for EmbeddedKey {
    async fn encrypt(&self, plaintext: &[u8], uid: &str) -> Result<Vec<u8>, BackendError> {
        self.through_door(Op::Encrypt, uid, async |service, caller| {
            let (_, blob) = service
                .encrypt(caller, &self.key, plaintext, &self.context)
                .await?;
            Ok(blob)
        })
        .await
    }

    async fn decrypt(
        &self,
        ciphertext: &[u8],
        uid: &str,
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        self.through_door(Op::Decrypt, uid, async |service, caller| {
            let opened = service
                .decrypt(caller, Some(&self.key), ciphertext, &self.context)
                .await?;
            Ok(Zeroizing::new(opened.plaintext.expose_secret().to_vec()))
        })
        .await
    }

    async fn probe(&self) -> Result<String, BackendError> {
        let record = self
            .through_door(
                Op::DescribeKey,
                "kms-plugin-status",
                async |service, caller| Ok(service.describe_key(caller, &self.key).await?.record),
            )
            .await?;
        let state = record.lifecycle.state();
        if state != KeyState::Active {
            return Err(BackendError::KeyUnusable(format!(
                "the key {} is {state}",
                record.id
            )));
        }
        // Whether every key above it lets it encrypt shows only by encrypting.
        self.encrypt(&[0], "kms-plugin-status").await?;
        Ok(format!("{}:{}", record.id, record.current_material_id()))
    }
}

/// A refusal of the core, as the embedded door reports it: what it means to the
/// plugin, and its audit classification.
struct EmbeddedError<T> {
    error: BackendError,
    code: &'static str,
    outcome: AuditOutcome,
    answer: PhantomData<T>,
}

impl<T> From<Error> for EmbeddedError<T> {
    fn from(e: Error) -> Self {
        use ErrorKind::*;
        let message = e.message().to_owned();
        // Every kind is named, so that a new one is a compile error here.
        let (error, code) = match e.kind() {
            StoreUnavailable | KeystoreUnavailable => {
                (BackendError::Unavailable(message), "unavailable")
            }
            Internal => (BackendError::Unavailable(message), "internal"),
            Unaudited => (BackendError::Unavailable(message), "unaudited"),
            // The API server retries UNAVAILABLE with backoff: what a quota asks for.
            Throttled => (BackendError::Unavailable(message), "throttled"),
            KeyDisabled | InvalidState | NotFound => {
                (BackendError::KeyUnusable(message), "key_unusable")
            }
            AccessDenied | UnknownAccessKey => (BackendError::Denied(message), "access_denied"),
            InvalidInput | InvalidAliasName | InvalidMarker | InvalidTag | MalformedPolicy
            | AlreadyExists | InvalidCiphertext | IncorrectKey | InvalidKeyUsage
            | InvalidSignature | InvalidMac | Unsupported | LimitExceeded | InvalidImportToken
            | ExpiredImportToken | IncorrectKeyMaterial => {
                (BackendError::Invalid(message), "invalid")
            }
        };
        Self {
            error,
            code,
            outcome: outcome_of(e.kind()),
            answer: PhantomData,
        }
    }
}

/// What a call through the embedded door ends with.
struct Answered<T>(Result<T, BackendError>);

impl<T> Answered<T> {
    fn ok(value: T) -> Self {
        Self(Ok(value))
    }
}

impl<T> Answer for Answered<T> {
    fn status_code(&self) -> u16 {
        match &self.0 {
            Ok(_) => 0,
            Err(e) => grpc_code(e) as u16,
        }
    }

    fn set_request_id(&mut self, _name: &'static str, _request_id: &str) {
        // The gRPC answer is made by `KmsV2` from this value; the request id stays
        // in the audit record and the log.
    }
}

impl<T> DoorError for EmbeddedError<T> {
    type Answer = Answered<T>;

    fn audit_outcome(&self) -> AuditOutcome {
        self.outcome
    }

    fn code(&self) -> &str {
        self.code
    }

    fn message(&self) -> &str {
        match &self.error {
            BackendError::Unavailable(m)
            | BackendError::KeyUnusable(m)
            | BackendError::Denied(m)
            | BackendError::Invalid(m) => m,
        }
    }

    fn is_server_error(&self) -> bool {
        matches!(self.error, BackendError::Unavailable(_))
    }

    fn into_answer(self) -> Answered<T> {
        Answered(Err(self.error))
    }
}
