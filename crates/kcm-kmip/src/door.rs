//! The KMIP door: a request message in, a response message out. Each batch item
//! takes the path every door shares ([`kcm_frontdoor::Call`]: begin as the door
//! `kmip`, admit the principal the client's certificate maps to, one core call,
//! finish with the audit record); its operation works on the core's managed
//! objects in the client's system.

use kcm_core::authz::{Caller, Op, Principal};
use kcm_core::error::{Error, ErrorKind};
use kcm_core::lifecycle::KeyState;
use kcm_core::model::{AuditOutcome, ObjectAttributes, ObjectId, SystemId};
use kcm_core::service::{
    GenerateObject, NewObject, ObjectChange, ObjectFilter, Service, MAX_OBJECT_PAGE,
};
use kcm_frontdoor::{Answer, Door, DoorError, FrontDoor, Requested};

use crate::message::{
    self, Failure, Operation, ProtocolVersion, Request, RequestItem, ResponseItem, ResultReason,
};
use crate::objects::{self, tag};
use crate::ttlv::{self, Limits, Ttlv, Value};
use crate::{attributes, crypto};

/// How audit records and metrics name this door.
pub const DOOR: Door = Door {
    name: "kmip",
    request_id_header: "kmip-request-id",
};

/// The protocol versions this server speaks, most preferred first (what Discover
/// Versions answers).
pub const VERSIONS: [ProtocolVersion; 7] = [
    ProtocolVersion::new(2, 1),
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
pub const OPERATIONS: [Operation; 24] = [
    Operation::DISCOVER_VERSIONS,
    Operation::QUERY,
    Operation::CREATE,
    Operation::CREATE_KEY_PAIR,
    Operation::REGISTER,
    Operation::REKEY,
    Operation::LOCATE,
    Operation::GET,
    Operation::GET_ATTRIBUTES,
    Operation::GET_ATTRIBUTE_LIST,
    Operation::ADD_ATTRIBUTE,
    Operation::MODIFY_ATTRIBUTE,
    Operation::DELETE_ATTRIBUTE,
    Operation::SET_ATTRIBUTE,
    Operation::ACTIVATE,
    Operation::REVOKE,
    Operation::DESTROY,
    Operation::ENCRYPT,
    Operation::DECRYPT,
    Operation::SIGN,
    Operation::SIGNATURE_VERIFY,
    Operation::MAC,
    Operation::MAC_VERIFY,
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
                    let answered = self
                        .serve_item(&request, item, principal, refusal.as_ref(), source)
                        .await;
                    let failed = answered.result.is_err();
                    items.push(answered);
                    // Stop (the default): the items after a failed one are neither
                    // processed nor answered.
                    if failed && request.on_error == message::BatchErrorOption::Stop {
                        break;
                    }
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
                    Err(e) if e.kind() == ErrorKind::UnknownAccessKey => {
                        refused("unknown access key or wrong password")
                    }
                    // The store or keystore could not answer: not the client's fault.
                    Err(e) => Some(KmipError::from(e).failure),
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
                .and_then(|payload| within_size(payload, request.maximum_response_size))
                .map(KmipAnswered::ok),
            Err(e) => Err(KmipError::from(e)),
        };
        let KmipAnswered(mut answered) = call.finish(result).await;
        answered.operation = Some(item.operation);
        answered.id.clone_from(&item.id);
        answered
    }
}

/// `payload`, unless it is larger than the Maximum Response Size the client
/// asked for: then Response Too Large, and the client gets none of it.
fn within_size(payload: Vec<Ttlv>, maximum: Option<i32>) -> Result<Vec<Ttlv>, KmipError> {
    let Some(maximum) = maximum else {
        return Ok(payload);
    };
    let size: usize = payload.iter().map(|item| ttlv::encode(item).len()).sum();
    if i64::try_from(size).unwrap_or(i64::MAX) > i64::from(maximum) {
        return Err(KmipError::refused(
            ResultReason::ResponseTooLarge,
            format!("the response payload is {size} bytes, more than the Maximum Response Size of {maximum}"),
        ));
    }
    Ok(payload)
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
        Operation::CREATE | Operation::CREATE_KEY_PAIR | Operation::REGISTER | Operation::REKEY => {
            Op::CreateObject
        }
        Operation::LOCATE => Op::ListObjects,
        Operation::GET => Op::GetObjectPayload,
        Operation::GET_ATTRIBUTES | Operation::GET_ATTRIBUTE_LIST | Operation::ACTIVATE => {
            Op::GetObject
        }
        Operation::RNG_RETRIEVE => Op::GenerateRandom,
        Operation::REVOKE
        | Operation::ADD_ATTRIBUTE
        | Operation::MODIFY_ATTRIBUTE
        | Operation::DELETE_ATTRIBUTE
        | Operation::SET_ATTRIBUTE => Op::UpdateObject,
        Operation::ENCRYPT
        | Operation::DECRYPT
        | Operation::SIGN
        | Operation::SIGNATURE_VERIFY
        | Operation::MAC
        | Operation::MAC_VERIFY => Op::UseObject,
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
        KmipError::refused(
            ResultReason::PermissionDenied,
            "the access key this client's certificate maps to is scoped to no system: a KMIP client keeps its objects in one system",
        )
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
        Operation::CREATE_KEY_PAIR => create_key_pair(service, caller, payload).await,
        Operation::REGISTER => register(service, caller, payload).await,
        Operation::REKEY => rekey(service, caller, payload).await,
        Operation::LOCATE => locate(service, caller, version, payload).await,
        Operation::GET => get(service, caller, payload).await,
        Operation::GET_ATTRIBUTES => {
            attributes::get_attributes(service, caller, version, payload).await
        }
        Operation::GET_ATTRIBUTE_LIST => {
            attributes::get_attribute_list(service, caller, version, payload).await
        }
        Operation::ADD_ATTRIBUTE | Operation::MODIFY_ATTRIBUTE | Operation::DELETE_ATTRIBUTE => {
            attributes::change(service, caller, version, item.operation, payload).await
        }
        Operation::SET_ATTRIBUTE if version.major >= 2 => {
            attributes::change(service, caller, version, item.operation, payload).await
        }
        Operation::ENCRYPT
        | Operation::DECRYPT
        | Operation::SIGN
        | Operation::SIGNATURE_VERIFY
        | Operation::MAC
        | Operation::MAC_VERIFY => crypto::run(service, caller, item.operation, payload).await,
        Operation::ACTIVATE => activate(service, caller, payload).await,
        Operation::REVOKE => revoke(service, caller, payload).await,
        Operation::RNG_RETRIEVE => rng_retrieve(service, caller, payload).await,
        Operation::DESTROY => destroy(service, caller, payload).await,
        other => Err(KmipError::refused(
            ResultReason::OperationNotSupported,
            format!(
                "{} is not supported by this server (KMIP {version})",
                other.name().unwrap_or("this operation")
            ),
        )),
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
        for object_type in objects::OBJECT_TYPES {
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

pub(crate) fn unique_identifier(payload: &[Ttlv]) -> Result<ObjectId, KmipError> {
    let id = objects::text(payload, tag::UNIQUE_IDENTIFIER).ok_or_else(|| {
        KmipError::refused(
            ResultReason::InvalidField,
            "the request names no Unique Identifier (ID placeholders are not supported)",
        )
    })?;
    ObjectId::parse(id).ok_or_else(|| {
        KmipError::refused(
            ResultReason::ItemNotFound,
            format!("no object has the Unique Identifier {id:?}"),
        )
    })
}

pub(crate) fn id_ttlv(id: ObjectId) -> Ttlv {
    Ttlv::new(tag::UNIQUE_IDENTIFIER, Value::TextString(id.to_string()))
}

fn object_type_ttlv(object_type: u32) -> Ttlv {
    Ttlv::new(tag::OBJECT_TYPE, Value::Enumeration(object_type))
}

/// kcm's description of a new object from a request's attributes: its Name, the
/// Cryptographic Algorithm and Length, and custom attributes as metadata.
fn kcm_attributes(attributes: &objects::Attributes) -> ObjectAttributes {
    ObjectAttributes {
        name: attributes.name.clone().unwrap_or_default(),
        algorithm: attributes
            .algorithm
            .and_then(objects::algorithm_name)
            .map(str::to_owned),
        bit_length: attributes.length.and_then(|l| u32::try_from(l).ok()),
        metadata: attributes.custom.iter().cloned().collect(),
        ..ObjectAttributes::default()
    }
}

/// A Cryptographic Length as a bit count.
fn bits_of(length: i32) -> Result<u32, KmipError> {
    u32::try_from(length).map_err(|_| {
        KmipError::refused(
            ResultReason::InvalidField,
            format!("Cryptographic Length {length} is not a length"),
        )
    })
}

/// Create: a symmetric key of the Cryptographic Algorithm AES (the default) or
/// HMAC-SHA256/384/512, of the Cryptographic Length asked for (256 bits by
/// default).
async fn create(
    service: &Service,
    caller: &Caller,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    if objects::enumeration(payload, tag::OBJECT_TYPE) != Some(objects::object_type::SYMMETRIC_KEY)
    {
        return Err(KmipError::refused(
            ResultReason::FeatureNotSupported,
            "Create makes symmetric keys (Object Type 2); Create Key Pair makes key pairs; register other objects",
        ));
    }
    let mut attributes = objects::read_attributes(payload).map_err(KmipError::failed)?;
    let algorithm = *attributes.algorithm.get_or_insert(objects::ALGORITHM_AES);
    if !matches!(
        algorithm,
        objects::ALGORITHM_AES
            | objects::ALGORITHM_HMAC_SHA256
            | objects::ALGORITHM_HMAC_SHA384
            | objects::ALGORITHM_HMAC_SHA512
    ) {
        return Err(KmipError::refused(
            ResultReason::FeatureNotSupported,
            format!("Create makes AES and HMAC-SHA256/384/512 keys, not Cryptographic Algorithm {algorithm}"),
        ));
    }
    let bits = bits_of(attributes.length.unwrap_or(256))?;
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

/// Create Key Pair: an RSA key pair (2048, 3072 or 4096 bits) or an EC key pair
/// (P-256, P-384, P-521: by Cryptographic Length or Recommended Curve). The
/// private key takes the private template's Name, the public key the public
/// template's; either, when its template has none, the common one.
async fn create_key_pair(
    service: &Service,
    caller: &Caller,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    let part = |template, attributes| {
        objects::read_key_pair_part(payload, template, attributes).map_err(KmipError::failed)
    };
    let common = part(tag::COMMON_TEMPLATE_ATTRIBUTE, tag::COMMON_ATTRIBUTES)?;
    let private = objects::merged(
        &common,
        part(
            tag::PRIVATE_KEY_TEMPLATE_ATTRIBUTE,
            tag::PRIVATE_KEY_ATTRIBUTES,
        )?,
    );
    let public = objects::merged(
        &common,
        part(
            tag::PUBLIC_KEY_TEMPLATE_ATTRIBUTE,
            tag::PUBLIC_KEY_ATTRIBUTES,
        )?,
    );
    // P-256, P-384 and P-521 by their Recommended Curve numbers.
    let curve_bits = |curve| match curve {
        7 => Some(256),
        0x0A => Some(384),
        0x0D => Some(521),
        _ => None,
    };
    let kcm = kcm_attributes(&private);
    let what = match private.algorithm.or(public.algorithm) {
        Some(objects::ALGORITHM_RSA) => GenerateObject::RsaKeyPair {
            bits: bits_of(private.length.or(public.length).unwrap_or(2048))?,
            attributes: kcm,
        },
        Some(objects::ALGORITHM_EC | objects::ALGORITHM_ECDSA) => {
            let bits = match private.curve.or(public.curve) {
                Some(curve) => curve_bits(curve).ok_or_else(|| {
                    KmipError::refused(
                        ResultReason::FeatureNotSupported,
                        format!("Recommended Curve {curve} is not supported (P-256, P-384 and P-521 are)"),
                    )
                })?,
                None => bits_of(private.length.or(public.length).unwrap_or(256))?,
            };
            GenerateObject::EcKeyPair {
                bits,
                attributes: kcm,
            }
        }
        other => {
            return Err(KmipError::refused(
                ResultReason::FeatureNotSupported,
                format!(
                "Create Key Pair makes RSA and EC key pairs, not Cryptographic Algorithm {other:?}"
            ),
            ))
        }
    };
    let system = system_of(caller)?;
    let made = service.generate_object(caller, system, what).await?;
    let id_of = |kind| {
        made.iter()
            .find(|o| o.kind == kind)
            .map(|o| o.id)
            .ok_or_else(|| {
                KmipError::from(Error::internal(
                    "generating a key pair made no key of a kind",
                ))
            })
    };
    let (private_id, public_id) = (
        id_of(kcm_core::model::ObjectKind::PrivateKey)?,
        id_of(kcm_core::model::ObjectKind::PublicKey)?,
    );
    let public_name = public.name.unwrap_or_default();
    if public_name != private.name.unwrap_or_default() {
        service
            .update_object(caller, public_id, ObjectChange::Rename(public_name))
            .await?;
    }
    Ok(vec![
        Ttlv::new(
            tag::PRIVATE_KEY_UNIQUE_IDENTIFIER,
            Value::TextString(private_id.to_string()),
        ),
        Ttlv::new(
            tag::PUBLIC_KEY_UNIQUE_IDENTIFIER,
            Value::TextString(public_id.to_string()),
        ),
    ])
}

/// Register: a symmetric, private or public key, a certificate, secret data or
/// an opaque object, in the formats kcm serves them in.
async fn register(
    service: &Service,
    caller: &Caller,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    let object_type = objects::enumeration(payload, tag::OBJECT_TYPE).ok_or_else(|| {
        KmipError::refused(ResultReason::InvalidField, "Register names no Object Type")
    })?;
    let kind = objects::kind_of(object_type).map_err(KmipError::failed)?;
    let mut attributes = objects::read_attributes(payload).map_err(KmipError::failed)?;
    let registered = objects::payload_of(kind, payload).map_err(KmipError::failed)?;
    attributes.algorithm = attributes.algorithm.or(registered.algorithm);
    attributes.length = attributes.length.or(registered.length);
    let mut kcm = kcm_attributes(&attributes);
    if kind == kcm_core::model::ObjectKind::SymmetricKey || kcm.bit_length.is_none() {
        kcm.bit_length = u32::try_from(registered.payload.expose_secret().len() * 8).ok();
    }
    kcm.content_type = Some("application/octet-stream".into());
    let system = system_of(caller)?;
    let info = service
        .create_object(
            caller,
            system,
            NewObject {
                kind,
                attributes: kcm,
                payload: Some(registered.payload),
            },
        )
        .await?;
    Ok(vec![id_ttlv(info.id)])
}

/// Re-key: a new symmetric key in place of the one named, which takes its Name.
async fn rekey(
    service: &Service,
    caller: &Caller,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    let id = unique_identifier(payload)?;
    let made = service.rekey_object(caller, id).await?;
    Ok(vec![id_ttlv(made.id)])
}

/// Locate: the objects of the client's system by Name, Object Type,
/// Cryptographic Algorithm and Length, skipping Offset Items and at most Maximum
/// Items of them (100 at a time); from KMIP 1.3, with Located Items, how many
/// match in all.
async fn locate(
    service: &Service,
    caller: &Caller,
    version: ProtocolVersion,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    let attributes = objects::read_attributes(payload).map_err(KmipError::failed)?;
    let count = |t| match message::find(payload, t).map(|m| &m.value) {
        Some(Value::Integer(n)) if *n > 0 => Some(*n as usize),
        _ => None,
    };
    let maximum = count(tag::MAXIMUM_ITEMS).map_or(MAX_OBJECT_PAGE, |n| n.min(MAX_OBJECT_PAGE));
    let kind = attributes
        .object_type
        .map(objects::kind_of)
        .transpose()
        .map_err(KmipError::failed)?;
    // An algorithm kcm records on no object matches nothing.
    let algorithm = attributes
        .algorithm
        .map(|a| objects::algorithm_name(a).unwrap_or("(none)").to_owned());
    let system = system_of(caller)?;
    let page = service
        .list_objects(
            caller,
            system,
            &ObjectFilter {
                kind,
                name: attributes.name.clone(),
                algorithm,
                bit_length: attributes.length.and_then(|l| u32::try_from(l).ok()),
                offset: count(tag::OFFSET_ITEMS).unwrap_or(0),
                limit: maximum,
                ..ObjectFilter::default()
            },
        )
        .await?;
    let mut out = Vec::with_capacity(page.objects.len() + 1);
    if version >= ProtocolVersion::new(1, 3) {
        out.push(Ttlv::new(
            tag::LOCATED_ITEMS,
            Value::Integer(i32::try_from(page.total).unwrap_or(i32::MAX)),
        ));
    }
    out.extend(
        page.objects
            .iter()
            .filter(|o| objects::object_type_of(o.kind).is_some())
            .map(|o| id_ttlv(o.id)),
    );
    Ok(out)
}

/// Get: the object in the format kcm keeps its kind in (a Key Format Type asked
/// for must be that one: kcm does not convert keys).
async fn get(service: &Service, caller: &Caller, payload: &[Ttlv]) -> Result<Vec<Ttlv>, KmipError> {
    let id = unique_identifier(payload)?;
    let asked = message::find(payload, tag::KEY_FORMAT_TYPE).map(|f| match f.value {
        Value::Enumeration(v) => Some(v),
        _ => None,
    });
    let (info, secret) = service.object_payload(caller, id).await?;
    let object_type = objects::object_type_of(info.kind).ok_or_else(|| {
        KmipError::refused(
            ResultReason::FeatureNotSupported,
            format!(
                "object {id} is a {}, which this server does not serve over KMIP",
                info.kind.as_str()
            ),
        )
    })?;
    if let Some(asked) = asked {
        let served = objects::key_format_of(info.kind);
        if asked != served {
            return Err(KmipError::refused(
                ResultReason::KeyFormatTypeNotSupported,
                format!(
                    "object {id} is served in Key Format Type {}, not {}",
                    served.map_or("(none: it is no key)".into(), |f| f.to_string()),
                    asked.map_or("(unreadable)".into(), |f| f.to_string())
                ),
            ));
        }
    }
    let described = objects::Described {
        kind: info.kind,
        algorithm: attributes::algorithm_of(&info),
        bits: info.attributes.bit_length,
    };
    let object = objects::object_ttlv(described, &secret).map_err(KmipError::failed)?;
    Ok(vec![object_type_ttlv(object_type), id_ttlv(id), object])
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
        return Err(KmipError::refused(
            ResultReason::IllegalOperation,
            format!(
                "object {id} is {}: only an active object confirms activation",
                info.state
            ),
        ));
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
            KmipError::refused(
                ResultReason::InvalidField,
                "Revoke needs a Revocation Reason with its code",
            )
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
            return Err(KmipError::refused(
                ResultReason::InvalidField,
                "RNG Retrieve needs a positive Data Length",
            ))
        }
    };
    let bytes = service.generate_random(caller, length).await?;
    Ok(vec![Ttlv::new(
        tag::DATA,
        Value::ByteString(zeroize::Zeroizing::new(bytes.expose_secret().to_vec())),
    )])
}

/// KMIP's State of a kcm lifecycle state (the same NIST states, numbered).
pub(crate) fn kmip_state(state: KeyState) -> u32 {
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
    /// A refusal of the door's own for `reason`, saying `message`.
    pub(crate) fn refused(reason: ResultReason, message: impl Into<String>) -> Self {
        Self::failed(Failure::new(reason, message))
    }

    /// A refusal of the door's own (bad input): `failed` in the audit log.
    pub(crate) fn failed(failure: Failure) -> Self {
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
