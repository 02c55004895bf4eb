//! The KMIP door: a request message in, a response message out. Each batch item
//! takes the path every door shares ([`kcm_frontdoor::Call`]: begin as the door
//! `kmip`, admit the principal the client's certificate maps to, one core call,
//! finish with the audit record); its operation works on the core's managed
//! objects in the client's system.

use kcm_core::authz::{Caller, Op, Principal};
use kcm_core::error::{Error, ErrorKind};
use kcm_core::lifecycle::KeyState;
use kcm_core::model::{AuditOutcome, ObjectAttributes, ObjectId, SystemId};
use kcm_core::service::{GenerateObject, NewObject, ObjectFilter, Service, MAX_OBJECT_PAGE};
use kcm_frontdoor::{Answer, Door, DoorError, FrontDoor, Requested};

use crate::message::{
    self, Failure, Operation, ProtocolVersion, Request, RequestItem, ResponseItem, ResultReason,
};
use crate::objects::{self, tag};
use crate::ttlv::{self, Limits, Ttlv, Value};

/// How audit records and metrics name this door.
pub const DOOR: Door = Door {
    name: "kmip",
    request_id_header: "kmip-request-id",
};

/// The protocol versions this server speaks, most preferred first (what Discover
/// Versions answers).
pub const VERSIONS: [ProtocolVersion; 6] = [
    ProtocolVersion::new(2, 0),
    ProtocolVersion::new(1, 4),
    ProtocolVersion::new(1, 3),
    ProtocolVersion::new(1, 2),
    ProtocolVersion::new(1, 1),
    ProtocolVersion::new(1, 0),
];

/// The lowest version this server speaks: what it answers a message in whose
/// version it could not read.
const LOWEST_VERSION: ProtocolVersion = VERSIONS[VERSIONS.len() - 1];

/// The operations this server does; everything else is Operation Not Supported.
pub const OPERATIONS: [Operation; 12] = [
    Operation::DISCOVER_VERSIONS,
    Operation::QUERY,
    Operation::CREATE,
    Operation::REGISTER,
    Operation::LOCATE,
    Operation::GET,
    Operation::GET_ATTRIBUTES,
    Operation::GET_ATTRIBUTE_LIST,
    Operation::ACTIVATE,
    Operation::REVOKE,
    Operation::DESTROY,
    Operation::RNG_RETRIEVE,
];

/// The KMIP door over the shared front door.
#[derive(Clone, Debug)]
pub struct KmipDoor {
    front: FrontDoor,
    limits: Limits,
}

impl KmipDoor {
    /// The door over `front`.
    pub fn new(front: FrontDoor) -> Self {
        Self {
            front,
            limits: Limits::default(),
        }
    }

    /// The principal of the access key `id` (kcm's own kind), through the core's
    /// credential cache.
    pub async fn principal(&self, id: &str) -> Result<Principal, Error> {
        Ok(self.front.service().credential(id).await?.principal.clone())
    }

    /// The message limits the listener frames messages by.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Answers one request message (`bytes`, a whole TTLV message) from a client
    /// whose certificate maps to `principal`, at `source`.
    pub async fn serve(
        &self,
        bytes: &[u8],
        principal: &Principal,
        source: Option<std::net::SocketAddr>,
    ) -> Vec<u8> {
        let now = time_now();
        let request = ttlv::decode(bytes, &self.limits)
            .map_err(|e| message::MessageError {
                version: None,
                failure: Failure::new(ResultReason::InvalidMessage, e.to_string()),
            })
            .and_then(|m| message::parse_request(&m));
        let response = match request {
            Ok(request) => {
                let refusal = self.check_credential(&request, principal).await;
                let mut items = Vec::with_capacity(request.items.len());
                for item in &request.items {
                    items.push(
                        self.serve_item(&request, item, principal, refusal.as_ref(), source)
                            .await,
                    );
                }
                message::response(answer_version(request.version), now, items)
            }
            Err(e) => {
                let call =
                    self.front
                        .begin(Requested::Unrecognised("InvalidMessage"), source, None);
                let item = call
                    .finish::<KmipError>(Err(KmipError::failed(e.failure)))
                    .await;
                message::response(
                    answer_version(e.version.unwrap_or(LOWEST_VERSION)),
                    now,
                    vec![item.0],
                )
            }
        };
        ttlv::encode(&response)
    }

    /// Username and password credentials in the request header, which some clients
    /// send (RGW's `rgw_crypt_kmip_username`): the username is a kcm access key id
    /// and the password its secret, and they must name the same access key as the
    /// client certificate. Without them the certificate alone authenticates.
    async fn check_credential(&self, request: &Request, principal: &Principal) -> Option<Failure> {
        let refused = |why: &str| {
            Some(Failure::new(
                ResultReason::AuthenticationNotSuccessful,
                format!("the request's credential does not authenticate: {why}"),
            ))
        };
        match &request.credential {
            None => None,
            Some(message::Credential::UsernamePassword { username, password }) => {
                let password = password.as_ref().map_or("", |p| p.as_str());
                match self
                    .front
                    .service()
                    .authenticate_bearer(username, password)
                    .await
                {
                    Ok(p) if p.access_key_id == principal.access_key_id => None,
                    Ok(_) => refused("it names another access key than the client certificate"),
                    Err(_) => refused("unknown access key or wrong password"),
                }
            }
            Some(message::Credential::Other(kind)) => {
                refused(&format!("credential type {kind} is not supported"))
            }
        }
    }

    async fn serve_item(
        &self,
        request: &Request,
        item: &RequestItem,
        principal: &Principal,
        refusal: Option<&Failure>,
        source: Option<std::net::SocketAddr>,
    ) -> ResponseItem {
        let requested = match core_op(item.operation) {
            Some(op) => Requested::Op(op),
            None => Requested::Unrecognised(unrecognised_name(item.operation)),
        };
        let mut call = self.front.begin(requested, source, None);
        if let Some(failure) = refusal {
            let error = KmipError {
                failure: failure.clone(),
                outcome: AuditOutcome::Denied,
                server_error: false,
            };
            let KmipAnswered(mut answered) = call.finish(Err(error)).await;
            answered.operation = Some(item.operation);
            answered.id.clone_from(&item.id);
            return answered;
        }
        let result = match call.admit(principal.clone()) {
            Ok(caller) => run(self.front.service(), caller, request.version, item)
                .await
                .map(KmipAnswered::ok),
            Err(e) => Err(KmipError::from(e)),
        };
        let KmipAnswered(mut answered) = call.finish(result).await;
        answered.operation = Some(item.operation);
        answered.id.clone_from(&item.id);
        answered
    }
}

/// The version to answer in: the client's, or the highest this server speaks
/// below it.
fn answer_version(asked: ProtocolVersion) -> ProtocolVersion {
    VERSIONS
        .iter()
        .copied()
        .find(|v| *v <= asked)
        .unwrap_or(VERSIONS[VERSIONS.len() - 1])
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The core operation a KMIP operation is, for authorisation and the audit log.
fn core_op(operation: Operation) -> Option<Op> {
    Some(match operation {
        Operation::CREATE | Operation::REGISTER => Op::CreateObject,
        Operation::LOCATE => Op::ListObjects,
        Operation::GET => Op::GetObjectPayload,
        Operation::GET_ATTRIBUTES | Operation::GET_ATTRIBUTE_LIST | Operation::ACTIVATE => {
            Op::GetObject
        }
        Operation::RNG_RETRIEVE => Op::GenerateRandom,
        Operation::REVOKE => Op::UpdateObject,
        Operation::DESTROY => Op::DeleteObject,
        _ => return None,
    })
}

/// The audit name of an operation that is no core operation.
fn unrecognised_name(operation: Operation) -> &'static str {
    match operation {
        Operation::DISCOVER_VERSIONS => "DiscoverVersions",
        Operation::QUERY => "Query",
        _ => "OperationNotSupported",
    }
}

/// The system a client's objects live in: its access key's.
fn system_of(caller: &Caller) -> Result<SystemId, KmipError> {
    caller.principal.system_scope.ok_or_else(|| {
        KmipError::failed(Failure::new(
            ResultReason::PermissionDenied,
            "the access key this client's certificate maps to is scoped to no system: a KMIP client keeps its objects in one system",
        ))
    })
}

/// Runs one batch item.
async fn run(
    service: &Service,
    caller: &Caller,
    version: ProtocolVersion,
    item: &RequestItem,
) -> Result<Vec<Ttlv>, KmipError> {
    let payload = &item.payload;
    match item.operation {
        Operation::DISCOVER_VERSIONS => Ok(discover_versions(payload)),
        Operation::QUERY => Ok(query(payload)),
        Operation::CREATE => create(service, caller, payload).await,
        Operation::REGISTER => register(service, caller, payload).await,
        Operation::LOCATE => locate(service, caller, payload).await,
        Operation::GET => get(service, caller, payload).await,
        Operation::GET_ATTRIBUTES => get_attributes(service, caller, version, payload).await,
        Operation::GET_ATTRIBUTE_LIST => {
            get_attribute_list(service, caller, version, payload).await
        }
        Operation::ACTIVATE => activate(service, caller, payload).await,
        Operation::REVOKE => revoke(service, caller, payload).await,
        Operation::RNG_RETRIEVE => rng_retrieve(service, caller, payload).await,
        Operation::DESTROY => destroy(service, caller, payload).await,
        other => Err(KmipError::failed(Failure::new(
            ResultReason::OperationNotSupported,
            format!(
                "{} is not supported by this server (KMIP {version})",
                other.name().unwrap_or("this operation")
            ),
        ))),
    }
}

fn discover_versions(payload: &[Ttlv]) -> Vec<Ttlv> {
    let asked: Vec<ProtocolVersion> = payload
        .iter()
        .filter_map(ProtocolVersion::from_ttlv)
        .collect();
    VERSIONS
        .iter()
        .filter(|v| asked.is_empty() || asked.contains(v))
        .map(|v| v.to_ttlv())
        .collect()
}

fn query(payload: &[Ttlv]) -> Vec<Ttlv> {
    let functions: Vec<u32> = payload
        .iter()
        .filter(|i| i.tag == tag::QUERY_FUNCTION)
        .filter_map(|i| match i.value {
            Value::Enumeration(f) => Some(f),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    // Query Operations (1), Objects (2), Server Information (3).
    if functions.contains(&1) {
        out.extend(
            OPERATIONS
                .iter()
                .map(|op| Ttlv::new(message::tag::OPERATION, Value::Enumeration(op.0))),
        );
    }
    if functions.contains(&2) {
        for object_type in [
            objects::object_type::SYMMETRIC_KEY,
            objects::object_type::SECRET_DATA,
            objects::object_type::OPAQUE_OBJECT,
        ] {
            out.push(Ttlv::new(tag::OBJECT_TYPE, Value::Enumeration(object_type)));
        }
    }
    if functions.contains(&3) {
        out.push(Ttlv::new(
            tag::VENDOR_IDENTIFICATION,
            Value::TextString(format!("kcm {}", env!("CARGO_PKG_VERSION"))),
        ));
    }
    out
}

fn unique_identifier(payload: &[Ttlv]) -> Result<ObjectId, KmipError> {
    let id = objects::text(payload, tag::UNIQUE_IDENTIFIER).ok_or_else(|| {
        KmipError::failed(Failure::new(
            ResultReason::InvalidField,
            "the request names no Unique Identifier (ID placeholders are not supported)",
        ))
    })?;
    ObjectId::parse(id).ok_or_else(|| {
        KmipError::failed(Failure::new(
            ResultReason::ItemNotFound,
            format!("no object has the Unique Identifier {id:?}"),
        ))
    })
}

fn id_ttlv(id: ObjectId) -> Ttlv {
    Ttlv::new(tag::UNIQUE_IDENTIFIER, Value::TextString(id.to_string()))
}

fn object_type_ttlv(object_type: u32) -> Ttlv {
    Ttlv::new(tag::OBJECT_TYPE, Value::Enumeration(object_type))
}

fn kcm_attributes(attributes: &objects::Attributes) -> ObjectAttributes {
    ObjectAttributes {
        name: attributes.name.clone().unwrap_or_default(),
        algorithm: attributes
            .algorithm
            .filter(|a| *a == objects::ALGORITHM_AES)
            .map(|_| "aes".to_owned()),
        ..ObjectAttributes::default()
    }
}

async fn create(
    service: &Service,
    caller: &Caller,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    if objects::enumeration(payload, tag::OBJECT_TYPE) != Some(objects::object_type::SYMMETRIC_KEY)
    {
        return Err(KmipError::failed(Failure::new(
            ResultReason::FeatureNotSupported,
            "Create makes symmetric keys (Object Type 2); register other objects",
        )));
    }
    let attributes = objects::read_attributes(payload).map_err(KmipError::failed)?;
    if attributes
        .algorithm
        .is_some_and(|a| a != objects::ALGORITHM_AES)
    {
        return Err(KmipError::failed(Failure::new(
            ResultReason::FeatureNotSupported,
            "Create makes AES keys (Cryptographic Algorithm 3)",
        )));
    }
    let bits = attributes.length.unwrap_or(256);
    let bits = u32::try_from(bits).map_err(|_| {
        KmipError::failed(Failure::new(
            ResultReason::InvalidField,
            format!("Cryptographic Length {bits} is not a length"),
        ))
    })?;
    let system = system_of(caller)?;
    let made = service
        .generate_object(
            caller,
            system,
            GenerateObject::Symmetric {
                bits,
                attributes: kcm_attributes(&attributes),
            },
        )
        .await?;
    let id = made.first().map(|o| o.id).ok_or_else(|| {
        KmipError::from(Error::internal("generating a symmetric key made no object"))
    })?;
    Ok(vec![
        object_type_ttlv(objects::object_type::SYMMETRIC_KEY),
        id_ttlv(id),
    ])
}

async fn register(
    service: &Service,
    caller: &Caller,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    let object_type = objects::enumeration(payload, tag::OBJECT_TYPE).ok_or_else(|| {
        KmipError::failed(Failure::new(
            ResultReason::InvalidField,
            "Register names no Object Type",
        ))
    })?;
    let kind = objects::kind_of(object_type).map_err(KmipError::failed)?;
    let attributes = objects::read_attributes(payload).map_err(KmipError::failed)?;
    let secret = objects::payload_of(kind, payload).map_err(KmipError::failed)?;
    let mut kcm = kcm_attributes(&attributes);
    kcm.bit_length = u32::try_from(secret.expose_secret().len() * 8).ok();
    kcm.content_type = Some("application/octet-stream".into());
    let system = system_of(caller)?;
    let info = service
        .create_object(
            caller,
            system,
            NewObject {
                kind,
                attributes: kcm,
                payload: Some(secret),
            },
        )
        .await?;
    Ok(vec![id_ttlv(info.id)])
}

async fn locate(
    service: &Service,
    caller: &Caller,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    let attributes = objects::read_attributes(payload).map_err(KmipError::failed)?;
    let maximum = match message::find(payload, tag::MAXIMUM_ITEMS).map(|m| &m.value) {
        Some(Value::Integer(n)) if *n > 0 => (*n as usize).min(MAX_OBJECT_PAGE),
        _ => MAX_OBJECT_PAGE,
    };
    let kind = attributes
        .object_type
        .map(objects::kind_of)
        .transpose()
        .map_err(KmipError::failed)?;
    let system = system_of(caller)?;
    let page = service
        .list_objects(
            caller,
            system,
            &ObjectFilter {
                kind,
                name: attributes.name.clone(),
                limit: maximum,
                ..ObjectFilter::default()
            },
        )
        .await?;
    Ok(page
        .objects
        .iter()
        .filter(|o| objects::object_type_of(o.kind).is_some())
        .map(|o| id_ttlv(o.id))
        .collect())
}

async fn get(service: &Service, caller: &Caller, payload: &[Ttlv]) -> Result<Vec<Ttlv>, KmipError> {
    let id = unique_identifier(payload)?;
    let (info, secret) = service.object_payload(caller, id).await?;
    let object_type = objects::object_type_of(info.kind);
    let object = objects::object_ttlv(info.kind, &secret, info.attributes.bit_length);
    match (object_type, object) {
        (Some(object_type), Some(object)) => {
            Ok(vec![object_type_ttlv(object_type), id_ttlv(id), object])
        }
        _ => Err(KmipError::failed(Failure::new(
            ResultReason::FeatureNotSupported,
            format!(
                "object {id} is a {}, which this server does not serve over KMIP",
                info.kind.as_str()
            ),
        ))),
    }
}

async fn get_attributes(
    service: &Service,
    caller: &Caller,
    version: ProtocolVersion,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    let id = unique_identifier(payload)?;
    let info = service.get_object(caller, id).await?;
    // Each attribute by its 1.x name and its 2.0 tag.
    let mut found: Vec<(&str, crate::ttlv::Tag, Value)> = Vec::new();
    if let Some(object_type) = objects::object_type_of(info.kind) {
        found.push((
            "Object Type",
            tag::OBJECT_TYPE,
            Value::Enumeration(object_type),
        ));
    }
    if !info.attributes.name.is_empty() {
        found.push((
            "Name",
            tag::NAME,
            objects::name_value(&info.attributes.name),
        ));
    }
    if info.kind == kcm_core::model::ObjectKind::SymmetricKey {
        found.push((
            "Cryptographic Algorithm",
            tag::CRYPTOGRAPHIC_ALGORITHM,
            Value::Enumeration(objects::ALGORITHM_AES),
        ));
    }
    if let Some(bits) = info.attributes.bit_length {
        found.push((
            "Cryptographic Length",
            tag::CRYPTOGRAPHIC_LENGTH,
            Value::Integer(bits as i32),
        ));
    }
    found.push((
        "State",
        tag::STATE,
        Value::Enumeration(kmip_state(info.state)),
    ));
    let attributes = if version.major >= 2 {
        let items = found.into_iter().map(|(_, t, value)| Ttlv::new(t, value));
        vec![Ttlv::new(
            tag::ATTRIBUTES,
            Value::Structure(items.collect()),
        )]
    } else {
        found
            .into_iter()
            .map(|(name, _, value)| objects::attribute(name, value))
            .collect()
    };
    Ok([vec![id_ttlv(id)], attributes].concat())
}

/// Get Attribute List (KMIP 1.x): the names of the attributes Get Attributes
/// answers with.
async fn get_attribute_list(
    service: &Service,
    caller: &Caller,
    version: ProtocolVersion,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    if version.major >= 2 {
        return Err(KmipError::failed(Failure::new(
            ResultReason::OperationNotSupported,
            "Get Attribute List is answered in KMIP 1.x; ask for Get Attributes in 2.0",
        )));
    }
    let answer = get_attributes(service, caller, version, payload).await?;
    let mut out = vec![answer[0].clone()];
    for attribute in &answer[1..] {
        if let Some(name) = attribute
            .items()
            .and_then(|a| message::find(a, tag::ATTRIBUTE_NAME))
        {
            out.push(name.clone());
        }
    }
    Ok(out)
}

/// Activate: kcm's objects are active from the moment their material exists, so
/// activating one that is active confirms it; one in any other state is refused.
async fn activate(
    service: &Service,
    caller: &Caller,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    let id = unique_identifier(payload)?;
    let info = service.get_object(caller, id).await?;
    if info.state != KeyState::Active {
        return Err(KmipError::failed(Failure::new(
            ResultReason::IllegalOperation,
            format!(
                "object {id} is {}: only an active object confirms activation",
                info.state
            ),
        )));
    }
    Ok(vec![id_ttlv(id)])
}

/// Revoke: Key Compromise (2) or CA Compromise (3) marks the object compromised;
/// any other reason deactivates it. Either way it can still be got, to process
/// what it protected (KMIP's rule for both states), and never be activated again.
async fn revoke(
    service: &Service,
    caller: &Caller,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    let id = unique_identifier(payload)?;
    let code = message::find(payload, tag::REVOCATION_REASON)
        .and_then(Ttlv::items)
        .and_then(|r| objects::enumeration(r, tag::REVOCATION_REASON_CODE))
        .ok_or_else(|| {
            KmipError::failed(Failure::new(
                ResultReason::InvalidField,
                "Revoke needs a Revocation Reason with its code",
            ))
        })?;
    service
        .revoke_object(caller, id, matches!(code, 2 | 3))
        .await?;
    Ok(vec![id_ttlv(id)])
}

/// RNG Retrieve: 1 to 1024 random bytes from the server's generator.
async fn rng_retrieve(
    service: &Service,
    caller: &Caller,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    let length = match message::find(payload, tag::DATA_LENGTH).map(|l| &l.value) {
        Some(Value::Integer(n)) if *n > 0 => *n as usize,
        _ => {
            return Err(KmipError::failed(Failure::new(
                ResultReason::InvalidField,
                "RNG Retrieve needs a positive Data Length",
            )))
        }
    };
    let bytes = service.generate_random(caller, length).await?;
    Ok(vec![Ttlv::new(
        tag::DATA,
        Value::ByteString(zeroize::Zeroizing::new(bytes.expose_secret().to_vec())),
    )])
}

/// KMIP's State of a kcm lifecycle state (the same NIST states, numbered).
fn kmip_state(state: KeyState) -> u32 {
    match state {
        KeyState::PreActive => 1,
        KeyState::Active => 2,
        KeyState::Suspended | KeyState::Disabled | KeyState::PendingDeletion => 3,
        KeyState::Compromised => 4,
        KeyState::Destroyed => 5,
        KeyState::DestroyedCompromised => 6,
    }
}

async fn destroy(
    service: &Service,
    caller: &Caller,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    let id = unique_identifier(payload)?;
    service.delete_object(caller, id).await?;
    Ok(vec![id_ttlv(id)])
}

/// A batch item's answer as the shared path carries it.
#[derive(Debug)]
pub struct KmipAnswered(ResponseItem);

impl KmipAnswered {
    fn ok(payload: Vec<Ttlv>) -> Self {
        Self(ResponseItem {
            operation: None,
            id: None,
            result: Ok(payload),
        })
    }
}

impl Answer for KmipAnswered {
    fn status_code(&self) -> u16 {
        match &self.0.result {
            Ok(_) => 0,
            Err(f) => f.reason as u16,
        }
    }

    fn set_request_id(&mut self, _name: &'static str, _request_id: &str) {
        // KMIP responses have no place for it: it stays in the audit record and log.
    }
}

/// A batch item's failure, with the audit classification of its origin.
#[derive(Debug)]
pub struct KmipError {
    failure: Failure,
    outcome: AuditOutcome,
    server_error: bool,
}

impl KmipError {
    /// A refusal of the door's own (bad input): `failed` in the audit log.
    fn failed(failure: Failure) -> Self {
        let outcome = if failure.reason == ResultReason::PermissionDenied {
            AuditOutcome::Denied
        } else {
            AuditOutcome::Failed
        };
        Self {
            failure,
            outcome,
            server_error: false,
        }
    }
}

/// The KMIP result reason of each core error kind.
///
/// The match has no catch-all: a kind added to the core does not compile until it
/// is mapped here.
pub fn reason_of(kind: ErrorKind) -> ResultReason {
    use ErrorKind::*;
    match kind {
        InvalidInput | InvalidAliasName | InvalidMarker | InvalidTag | MalformedPolicy
        | InvalidImportToken | ExpiredImportToken | IncorrectKeyMaterial => {
            ResultReason::InvalidField
        }
        NotFound => ResultReason::ItemNotFound,
        AlreadyExists => ResultReason::IllegalOperation,
        AccessDenied | UnknownAccessKey => ResultReason::PermissionDenied,
        InvalidCiphertext | IncorrectKey | InvalidSignature | InvalidMac => {
            ResultReason::CryptographicFailure
        }
        // The object, or the chain above it (the kill switch), forbids the use.
        KeyDisabled | InvalidState => ResultReason::IllegalOperation,
        InvalidKeyUsage | Unsupported => ResultReason::FeatureNotSupported,
        LimitExceeded | Throttled => ResultReason::GeneralFailure,
        StoreUnavailable | KeystoreUnavailable | Unaudited | Internal => {
            ResultReason::GeneralFailure
        }
    }
}

impl From<Error> for KmipError {
    fn from(e: Error) -> Self {
        Self {
            failure: Failure::new(reason_of(e.kind()), e.message()),
            outcome: kcm_core::audit::outcome_of(e.kind()),
            server_error: matches!(
                e.kind(),
                ErrorKind::StoreUnavailable
                    | ErrorKind::KeystoreUnavailable
                    | ErrorKind::Unaudited
                    | ErrorKind::Internal
            ),
        }
    }
}

impl DoorError for KmipError {
    type Answer = KmipAnswered;

    fn audit_outcome(&self) -> AuditOutcome {
        self.outcome
    }

    fn code(&self) -> &str {
        reason_name(self.failure.reason)
    }

    fn message(&self) -> &str {
        &self.failure.message
    }

    fn is_server_error(&self) -> bool {
        self.server_error
    }

    fn into_answer(self) -> KmipAnswered {
        KmipAnswered(ResponseItem {
            operation: None,
            id: None,
            result: Err(self.failure),
        })
    }
}

/// The specification's name of a result reason (what the audit record names).
fn reason_name(reason: ResultReason) -> &'static str {
    match reason {
        ResultReason::ItemNotFound => "ItemNotFound",
        ResultReason::ResponseTooLarge => "ResponseTooLarge",
        ResultReason::AuthenticationNotSuccessful => "AuthenticationNotSuccessful",
        ResultReason::InvalidMessage => "InvalidMessage",
        ResultReason::OperationNotSupported => "OperationNotSupported",
        ResultReason::MissingData => "MissingData",
        ResultReason::InvalidField => "InvalidField",
        ResultReason::FeatureNotSupported => "FeatureNotSupported",
        ResultReason::CryptographicFailure => "CryptographicFailure",
        ResultReason::IllegalOperation => "IllegalOperation",
        ResultReason::PermissionDenied => "PermissionDenied",
        ResultReason::KeyFormatTypeNotSupported => "KeyFormatTypeNotSupported",
        ResultReason::GeneralFailure => "GeneralFailure",
    }
}
