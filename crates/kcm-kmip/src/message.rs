//! KMIP's request and response messages, above TTLV: a request is a header
//! (protocol version, batch count, optionally credentials and options) and batch
//! items (an operation and its payload); a response answers each item with a result
//! status, and on failure a result reason and message.
//!
//! [`parse_request`] checks the frame every operation shares and leaves each
//! payload to its operation; [`response`] builds the answer. A request that is not
//! a KMIP request at all is a [`MessageError`], which a server answers with one
//! failed item of reason Invalid Message, in the protocol version it could read
//! (the lowest it speaks when it could read none).

use zeroize::Zeroizing;

use crate::ttlv::{Tag, Ttlv, Value};

/// The tags of the message frame and of what every server answers (the
/// specification's tag table; the same numbers in every version).
pub mod tag {
    use crate::ttlv::Tag;

    /// Request Message.
    pub const REQUEST_MESSAGE: Tag = Tag::new(0x42_0078);
    /// Request Header.
    pub const REQUEST_HEADER: Tag = Tag::new(0x42_0077);
    /// Response Message.
    pub const RESPONSE_MESSAGE: Tag = Tag::new(0x42_007B);
    /// Response Header.
    pub const RESPONSE_HEADER: Tag = Tag::new(0x42_007A);
    /// Protocol Version.
    pub const PROTOCOL_VERSION: Tag = Tag::new(0x42_0069);
    /// Protocol Version Major.
    pub const PROTOCOL_VERSION_MAJOR: Tag = Tag::new(0x42_006A);
    /// Protocol Version Minor.
    pub const PROTOCOL_VERSION_MINOR: Tag = Tag::new(0x42_006B);
    /// Batch Count.
    pub const BATCH_COUNT: Tag = Tag::new(0x42_000D);
    /// Batch Item.
    pub const BATCH_ITEM: Tag = Tag::new(0x42_000F);
    /// Operation.
    pub const OPERATION: Tag = Tag::new(0x42_005C);
    /// Request Payload.
    pub const REQUEST_PAYLOAD: Tag = Tag::new(0x42_0079);
    /// Response Payload.
    pub const RESPONSE_PAYLOAD: Tag = Tag::new(0x42_007C);
    /// Unique Batch Item ID.
    pub const UNIQUE_BATCH_ITEM_ID: Tag = Tag::new(0x42_0093);
    /// Result Status.
    pub const RESULT_STATUS: Tag = Tag::new(0x42_007F);
    /// Result Reason.
    pub const RESULT_REASON: Tag = Tag::new(0x42_007E);
    /// Result Message.
    pub const RESULT_MESSAGE: Tag = Tag::new(0x42_007D);
    /// Time Stamp.
    pub const TIME_STAMP: Tag = Tag::new(0x42_0092);
    /// Authentication.
    pub const AUTHENTICATION: Tag = Tag::new(0x42_000C);
    /// Credential.
    pub const CREDENTIAL: Tag = Tag::new(0x42_0023);
    /// Credential Type.
    pub const CREDENTIAL_TYPE: Tag = Tag::new(0x42_0024);
    /// Credential Value.
    pub const CREDENTIAL_VALUE: Tag = Tag::new(0x42_0025);
    /// Username.
    pub const USERNAME: Tag = Tag::new(0x42_0099);
    /// Password.
    pub const PASSWORD: Tag = Tag::new(0x42_00A1);
    /// Maximum Response Size.
    pub const MAXIMUM_RESPONSE_SIZE: Tag = Tag::new(0x42_0050);
    /// Batch Error Continuation Option.
    pub const BATCH_ERROR_CONTINUATION_OPTION: Tag = Tag::new(0x42_000E);
    /// Batch Order Option.
    pub const BATCH_ORDER_OPTION: Tag = Tag::new(0x42_0010);
    /// Asynchronous Indicator.
    pub const ASYNCHRONOUS_INDICATOR: Tag = Tag::new(0x42_0007);
}

/// A KMIP protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion {
    /// Major.
    pub major: i32,
    /// Minor.
    pub minor: i32,
}

impl ProtocolVersion {
    /// `major.minor`.
    pub const fn new(major: i32, minor: i32) -> Self {
        Self { major, minor }
    }

    /// A Protocol Version structure (its major and minor), as requests carry it and
    /// Discover Versions lists it; `None` for anything else.
    pub fn from_ttlv(item: &Ttlv) -> Option<Self> {
        if item.tag != tag::PROTOCOL_VERSION {
            return None;
        }
        let fields = item.items()?;
        let major = integer(find(fields, tag::PROTOCOL_VERSION_MAJOR)?)?;
        let minor = integer(find(fields, tag::PROTOCOL_VERSION_MINOR)?)?;
        Some(Self::new(major, minor))
    }

    /// The Protocol Version structure of this version.
    pub fn to_ttlv(self) -> Ttlv {
        Ttlv::new(
            tag::PROTOCOL_VERSION,
            Value::Structure(vec![
                Ttlv::new(tag::PROTOCOL_VERSION_MAJOR, Value::Integer(self.major)),
                Ttlv::new(tag::PROTOCOL_VERSION_MINOR, Value::Integer(self.minor)),
            ]),
        )
    }
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// An operation, by its number in the specification's Operation enumeration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Operation(pub u32);

macro_rules! operations {
    ($($name:ident = $value:literal, $text:literal;)*) => {
        impl Operation {
            $(
                #[doc = concat!("`", $text, "`.")]
                pub const $name: Operation = Operation($value);
            )*

            /// The specification's name, when this is one of its operations.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($text),)*
                    _ => None,
                }
            }
        }
    };
}

operations! {
    CREATE = 0x01, "Create";
    CREATE_KEY_PAIR = 0x02, "Create Key Pair";
    REGISTER = 0x03, "Register";
    REKEY = 0x04, "Re-key";
    DERIVE_KEY = 0x05, "Derive Key";
    CERTIFY = 0x06, "Certify";
    RECERTIFY = 0x07, "Re-certify";
    LOCATE = 0x08, "Locate";
    CHECK = 0x09, "Check";
    GET = 0x0A, "Get";
    GET_ATTRIBUTES = 0x0B, "Get Attributes";
    GET_ATTRIBUTE_LIST = 0x0C, "Get Attribute List";
    ADD_ATTRIBUTE = 0x0D, "Add Attribute";
    MODIFY_ATTRIBUTE = 0x0E, "Modify Attribute";
    DELETE_ATTRIBUTE = 0x0F, "Delete Attribute";
    OBTAIN_LEASE = 0x10, "Obtain Lease";
    GET_USAGE_ALLOCATION = 0x11, "Get Usage Allocation";
    ACTIVATE = 0x12, "Activate";
    REVOKE = 0x13, "Revoke";
    DESTROY = 0x14, "Destroy";
    ARCHIVE = 0x15, "Archive";
    RECOVER = 0x16, "Recover";
    VALIDATE = 0x17, "Validate";
    QUERY = 0x18, "Query";
    CANCEL = 0x19, "Cancel";
    POLL = 0x1A, "Poll";
    NOTIFY = 0x1B, "Notify";
    PUT = 0x1C, "Put";
    REKEY_KEY_PAIR = 0x1D, "Re-key Key Pair";
    DISCOVER_VERSIONS = 0x1E, "Discover Versions";
    ENCRYPT = 0x1F, "Encrypt";
    DECRYPT = 0x20, "Decrypt";
    SIGN = 0x21, "Sign";
    SIGNATURE_VERIFY = 0x22, "Signature Verify";
    MAC = 0x23, "MAC";
    MAC_VERIFY = 0x24, "MAC Verify";
    RNG_RETRIEVE = 0x25, "RNG Retrieve";
    RNG_SEED = 0x26, "RNG Seed";
    HASH = 0x27, "Hash";
    CREATE_SPLIT_KEY = 0x28, "Create Split Key";
    JOIN_SPLIT_KEY = 0x29, "Join Split Key";
    IMPORT = 0x2A, "Import";
    EXPORT = 0x2B, "Export";
    LOG = 0x2C, "Log";
    LOGIN = 0x2D, "Login";
    LOGOUT = 0x2E, "Logout";
    DELEGATED_LOGIN = 0x2F, "Delegated Login";
    ADJUST_ATTRIBUTE = 0x30, "Adjust Attribute";
    SET_ATTRIBUTE = 0x31, "Set Attribute";
    SET_ENDPOINT_ROLE = 0x32, "Set Endpoint Role";
    PKCS_11 = 0x33, "PKCS#11";
    INTEROP = 0x34, "Interop";
    REPROVISION = 0x35, "Re-Provision";
}

/// Why an operation failed: the specification's Result Reason enumeration (the
/// values a server of kcm's operations answers with).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultReason {
    /// No object matches.
    ItemNotFound = 0x01,
    /// The response would exceed the Maximum Response Size asked for.
    ResponseTooLarge = 0x02,
    /// The credentials do not authenticate.
    AuthenticationNotSuccessful = 0x03,
    /// The message is not a KMIP request.
    InvalidMessage = 0x04,
    /// The server does not do this operation.
    OperationNotSupported = 0x05,
    /// Something required is missing.
    MissingData = 0x06,
    /// A field has a value the operation does not take.
    InvalidField = 0x07,
    /// A feature of the request is not supported.
    FeatureNotSupported = 0x08,
    /// A cryptographic operation failed (a tag, a signature).
    CryptographicFailure = 0x0A,
    /// The object's state does not allow it.
    IllegalOperation = 0x0B,
    /// The caller may not.
    PermissionDenied = 0x0C,
    /// The key format type is not supported.
    KeyFormatTypeNotSupported = 0x10,
    /// Something else went wrong.
    GeneralFailure = 0x100,
}

/// The status of a batch item's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ResultStatus {
    Success = 0,
    OperationFailed = 1,
}

/// A failed operation's reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The reason.
    pub reason: ResultReason,
    /// What was wrong, for the client's log; never a secret.
    pub message: String,
}

impl Failure {
    /// A failure of `reason`.
    pub fn new(reason: ResultReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// Credentials a request carries in its header.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Credential Type 1: a username and an optional password.
    UsernamePassword {
        /// The username.
        username: String,
        /// The password, if any (wiped when dropped, never printed).
        password: Option<Zeroizing<String>>,
    },
    /// Any other credential type (a device or attestation credential), by number.
    Other(u32),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::UsernamePassword { username, password } => f
                .debug_struct("UsernamePassword")
                .field("username", username)
                .field("password", &password.as_ref().map(|_| "[REDACTED]"))
                .finish(),
            Credential::Other(kind) => write!(f, "Other({kind})"),
        }
    }
}

/// A request, its frame checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The version the client speaks.
    pub version: ProtocolVersion,
    /// The largest response the client takes, if it says.
    pub maximum_response_size: Option<i32>,
    /// Credentials in the header, if any.
    pub credential: Option<Credential>,
    /// What to do with the rest of the batch once an item fails.
    pub on_error: BatchErrorOption,
    /// The batch items, in order.
    pub items: Vec<RequestItem>,
}

/// The Batch Error Continuation Option of a request: what the server does with
/// the items after one that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchErrorOption {
    /// Process no further item, and answer only those processed (the default).
    Stop,
    /// Process every item, each on its own.
    Continue,
}

/// One batch item of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestItem {
    /// The operation.
    pub operation: Operation,
    /// Its id within the batch, echoed in its answer.
    pub id: Option<Vec<u8>>,
    /// The Request Payload's items.
    pub payload: Vec<Ttlv>,
}

/// Why a message is not a KMIP request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageError {
    /// The version the header named, when it could be read: the answer speaks it.
    pub version: Option<ProtocolVersion>,
    /// What is wrong.
    pub failure: Failure,
}

/// The child of `items` tagged `tag` (the first, when there are several).
pub fn find(items: &[Ttlv], tag: Tag) -> Option<&Ttlv> {
    items.iter().find(|i| i.tag == tag)
}

/// Reads a request message (already decoded from TTLV).
pub fn parse_request(message: &Ttlv) -> Result<Request, MessageError> {
    let invalid = |version: Option<ProtocolVersion>, message: String| MessageError {
        version,
        failure: Failure::new(ResultReason::InvalidMessage, message),
    };
    let fields = match (message.tag, message.items()) {
        (tag::REQUEST_MESSAGE, Some(items)) => items,
        _ => {
            return Err(invalid(
                None,
                format!(
                    "a request is a Request Message structure, not {}",
                    message.tag
                ),
            ))
        }
    };
    let header = find(fields, tag::REQUEST_HEADER)
        .and_then(Ttlv::items)
        .ok_or_else(|| invalid(None, "the request has no Request Header".into()))?;
    let version = find(header, tag::PROTOCOL_VERSION)
        .and_then(ProtocolVersion::from_ttlv)
        .ok_or_else(|| invalid(None, "the Request Header has no Protocol Version".into()))?;
    let invalid = |message: String| invalid(Some(version), message);
    let batch_count = find(header, tag::BATCH_COUNT)
        .and_then(integer)
        .ok_or_else(|| invalid("the Request Header has no Batch Count".into()))?;
    let items: Vec<&Ttlv> = fields.iter().filter(|f| f.tag == tag::BATCH_ITEM).collect();
    if usize::try_from(batch_count).ok() != Some(items.len()) || items.is_empty() {
        return Err(invalid(format!(
            "the Batch Count is {batch_count} and the request has {} batch items",
            items.len()
        )));
    }
    let maximum_response_size = find(header, tag::MAXIMUM_RESPONSE_SIZE).and_then(integer);
    let credential = match find(header, tag::AUTHENTICATION) {
        Some(auth) => Some(credential(auth).map_err(|m| invalid(m.into()))?),
        None => None,
    };
    if find(header, tag::ASYNCHRONOUS_INDICATOR).is_some_and(|a| a.value == Value::Boolean(true)) {
        return Err(MessageError {
            version: Some(version),
            failure: Failure::new(
                ResultReason::FeatureNotSupported,
                "asynchronous operations are not supported",
            ),
        });
    }
    // Batch Error Continuation Option: Continue (1), Stop (2, the default), Undo
    // (3). kcm commits each item as it runs, so it cannot undo one: a batch of
    // several items asking for Undo is refused whole, before any runs.
    let on_error = match find(header, tag::BATCH_ERROR_CONTINUATION_OPTION).map(|o| &o.value) {
        None | Some(Value::Enumeration(2)) => BatchErrorOption::Stop,
        Some(Value::Enumeration(1)) => BatchErrorOption::Continue,
        Some(Value::Enumeration(3)) if batch_count == 1 => BatchErrorOption::Stop,
        Some(Value::Enumeration(3)) => return Err(MessageError {
            version: Some(version),
            failure: Failure::new(
                ResultReason::FeatureNotSupported,
                "the Batch Error Continuation Option Undo is not supported: send Stop or Continue",
            ),
        }),
        Some(_) => {
            return Err(invalid(
                "the Batch Error Continuation Option is none of Continue, Stop, Undo".into(),
            ))
        }
    };
    let items = items
        .into_iter()
        .map(|item| request_item(item, batch_count > 1))
        .collect::<Result<Vec<_>, String>>()
        .map_err(invalid)?;
    Ok(Request {
        version,
        maximum_response_size,
        credential,
        on_error,
        items,
    })
}

fn integer(item: &Ttlv) -> Option<i32> {
    match item.value {
        Value::Integer(v) => Some(v),
        _ => None,
    }
}

fn text(item: &Ttlv) -> Option<&str> {
    match &item.value {
        Value::TextString(v) => Some(v),
        _ => None,
    }
}

fn credential(auth: &Ttlv) -> Result<Credential, &'static str> {
    let credential = auth
        .items()
        .and_then(|a| find(a, tag::CREDENTIAL))
        .and_then(Ttlv::items)
        .ok_or("the Authentication has no Credential")?;
    let kind = match find(credential, tag::CREDENTIAL_TYPE).map(|t| &t.value) {
        Some(Value::Enumeration(kind)) => *kind,
        _ => return Err("the Credential has no Credential Type"),
    };
    if kind != 1 {
        return Ok(Credential::Other(kind));
    }
    let value = find(credential, tag::CREDENTIAL_VALUE)
        .and_then(Ttlv::items)
        .ok_or("the Credential has no Credential Value")?;
    let username = find(value, tag::USERNAME)
        .and_then(text)
        .ok_or("a Username and Password credential has no Username")?;
    let password = find(value, tag::PASSWORD)
        .and_then(text)
        .map(|p| Zeroizing::new(p.to_owned()));
    Ok(Credential::UsernamePassword {
        username: username.to_owned(),
        password,
    })
}

fn request_item(item: &Ttlv, id_required: bool) -> Result<RequestItem, String> {
    let fields = item.items().ok_or("a Batch Item is a structure")?;
    let operation = match find(fields, tag::OPERATION).map(|o| &o.value) {
        Some(Value::Enumeration(op)) => Operation(*op),
        _ => return Err("a Batch Item has no Operation".into()),
    };
    let id = match find(fields, tag::UNIQUE_BATCH_ITEM_ID).map(|i| &i.value) {
        Some(Value::ByteString(id)) => Some(id.to_vec()),
        Some(_) => return Err("a Unique Batch Item ID is a byte string".into()),
        None if id_required => {
            return Err("a batch of several items needs a Unique Batch Item ID in each".into())
        }
        None => None,
    };
    let payload = find(fields, tag::REQUEST_PAYLOAD)
        .and_then(Ttlv::items)
        .ok_or("a Batch Item has no Request Payload")?
        .to_vec();
    Ok(RequestItem {
        operation,
        id,
        payload,
    })
}

/// The answer to one batch item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseItem {
    /// The operation answered (absent when the request's could not be read).
    pub operation: Option<Operation>,
    /// The request item's id, echoed.
    pub id: Option<Vec<u8>>,
    /// The Response Payload's items, or why the operation failed.
    pub result: Result<Vec<Ttlv>, Failure>,
}

/// A Response Message in `version`, stamped `time_stamp` (seconds since the Unix
/// epoch), answering `items` in order.
pub fn response(version: ProtocolVersion, time_stamp: i64, items: Vec<ResponseItem>) -> Ttlv {
    let header = Ttlv::new(
        tag::RESPONSE_HEADER,
        Value::Structure(vec![
            version.to_ttlv(),
            Ttlv::new(tag::TIME_STAMP, Value::DateTime(time_stamp)),
            Ttlv::new(tag::BATCH_COUNT, Value::Integer(items.len() as i32)),
        ]),
    );
    let mut fields = Vec::with_capacity(items.len() + 1);
    fields.push(header);
    for item in items {
        let mut out = Vec::new();
        if let Some(operation) = item.operation {
            out.push(Ttlv::new(tag::OPERATION, Value::Enumeration(operation.0)));
        }
        if let Some(id) = item.id {
            out.push(Ttlv::new(
                tag::UNIQUE_BATCH_ITEM_ID,
                Value::ByteString(Zeroizing::new(id)),
            ));
        }
        match item.result {
            Ok(payload) => {
                out.push(status(ResultStatus::Success));
                out.push(Ttlv::new(tag::RESPONSE_PAYLOAD, Value::Structure(payload)));
            }
            Err(failure) => {
                out.push(status(ResultStatus::OperationFailed));
                out.push(Ttlv::new(
                    tag::RESULT_REASON,
                    Value::Enumeration(failure.reason as u32),
                ));
                out.push(Ttlv::new(
                    tag::RESULT_MESSAGE,
                    Value::TextString(failure.message),
                ));
            }
        }
        fields.push(Ttlv::new(tag::BATCH_ITEM, Value::Structure(out)));
    }
    Ttlv::new(tag::RESPONSE_MESSAGE, Value::Structure(fields))
}

fn status(status: ResultStatus) -> Ttlv {
    Ttlv::new(tag::RESULT_STATUS, Value::Enumeration(status as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ttlv::{decode, encode, Limits};

    fn int(tag: Tag, v: i32) -> Ttlv {
        Ttlv::new(tag, Value::Integer(v))
    }

    fn st(tag: Tag, items: Vec<Ttlv>) -> Ttlv {
        Ttlv::new(tag, Value::Structure(items))
    }

    fn header(major: i32, minor: i32, batch: i32, extra: Vec<Ttlv>) -> Ttlv {
        let mut fields = vec![
            st(
                tag::PROTOCOL_VERSION,
                vec![
                    int(tag::PROTOCOL_VERSION_MAJOR, major),
                    int(tag::PROTOCOL_VERSION_MINOR, minor),
                ],
            ),
            int(tag::BATCH_COUNT, batch),
        ];
        fields.extend(extra);
        st(tag::REQUEST_HEADER, fields)
    }

    fn item(op: Operation, id: Option<&[u8]>) -> Ttlv {
        let mut fields = vec![Ttlv::new(tag::OPERATION, Value::Enumeration(op.0))];
        if let Some(id) = id {
            fields.push(Ttlv::new(
                tag::UNIQUE_BATCH_ITEM_ID,
                Value::ByteString(Zeroizing::new(id.to_vec())),
            ));
        }
        fields.push(st(tag::REQUEST_PAYLOAD, vec![]));
        st(tag::BATCH_ITEM, fields)
    }

    #[test]
    fn a_request_reads_with_its_version_credentials_and_items() {
        let auth = st(
            tag::AUTHENTICATION,
            vec![st(
                tag::CREDENTIAL,
                vec![
                    Ttlv::new(tag::CREDENTIAL_TYPE, Value::Enumeration(1)),
                    st(
                        tag::CREDENTIAL_VALUE,
                        vec![
                            Ttlv::new(tag::USERNAME, Value::TextString("rgw".into())),
                            Ttlv::new(tag::PASSWORD, Value::TextString("s3cr3t".into())),
                        ],
                    ),
                ],
            )],
        );
        let message = st(
            tag::REQUEST_MESSAGE,
            vec![
                header(1, 4, 2, vec![auth]),
                item(Operation::LOCATE, Some(b"1")),
                item(Operation::GET, Some(b"2")),
            ],
        );
        // Through the wire and back, as a server receives it.
        let message = decode(&encode(&message), &Limits::default()).unwrap();
        let request = parse_request(&message).unwrap();
        assert_eq!(request.version, ProtocolVersion::new(1, 4));
        assert_eq!(request.items.len(), 2);
        assert_eq!(request.items[1].operation.name(), Some("Get"));
        assert_eq!(request.items[0].id.as_deref(), Some(&b"1"[..]));
        let Some(Credential::UsernamePassword { username, password }) = &request.credential else {
            panic!("{:?}", request.credential);
        };
        assert_eq!(username, "rgw");
        assert_eq!(password.as_ref().map(|p| p.as_str()), Some("s3cr3t"));
        assert!(!format!("{request:?}").contains("s3cr3t"));
    }

    #[test]
    fn the_batch_error_continuation_option_is_read() {
        let request = |batch: i32, option: Option<u32>| {
            let extra = option
                .map(|o| {
                    vec![Ttlv::new(
                        tag::BATCH_ERROR_CONTINUATION_OPTION,
                        Value::Enumeration(o),
                    )]
                })
                .unwrap_or_default();
            let mut fields = vec![header(1, 4, batch, extra)];
            for n in 0..batch {
                fields.push(item(Operation::GET, Some(&[n as u8])));
            }
            parse_request(&st(tag::REQUEST_MESSAGE, fields))
        };
        let on_error = |batch, option| request(batch, option).unwrap().on_error;
        assert_eq!(on_error(2, None), BatchErrorOption::Stop);
        assert_eq!(on_error(2, Some(2)), BatchErrorOption::Stop);
        assert_eq!(on_error(2, Some(1)), BatchErrorOption::Continue);
        // Undo: nothing to undo in a batch of one; refused for several.
        assert_eq!(on_error(1, Some(3)), BatchErrorOption::Stop);
        let undo = request(2, Some(3)).unwrap_err();
        assert_eq!(undo.failure.reason, ResultReason::FeatureNotSupported);
        let odd = request(2, Some(7)).unwrap_err();
        assert_eq!(odd.failure.reason, ResultReason::InvalidMessage);
    }

    /// A Get request as PyKMIP 0.11's client writes it (KMIP 1.2, a username and
    /// password credential), captured from PyKMIP: read as PyKMIP meant it, and
    /// written back byte for byte.
    #[test]
    fn a_request_written_by_pykmip_reads() {
        let bytes = hex::decode(
            "42007801000000b84200770100000080420069010000002042006a0200000004000000010000000042006b02000000040000000200000000\
             42000c01000000404200230100000038420024050000000400000001000000004200250100000020420099070000000372677700000000\
             004200a10700000006733363723374000042000d0200000004000000010000000042000f010000002842005c05000000040000000a0000\
             0000420079010000001042009407000000023432000000000000",
        )
        .unwrap();
        let message = decode(&bytes, &Limits::default()).unwrap();
        assert_eq!(encode(&message), bytes);
        let request = parse_request(&message).unwrap();
        assert_eq!(request.version, ProtocolVersion::new(1, 2));
        assert!(matches!(
            &request.credential,
            Some(Credential::UsernamePassword { username, password: Some(p) })
                if username == "rgw" && p.as_str() == "s3cr3t"
        ));
        assert_eq!(request.items.len(), 1);
        assert_eq!(request.items[0].operation, Operation::GET);
        assert_eq!(
            request.items[0].payload,
            vec![Ttlv::new(
                Tag::new(0x42_0094),
                Value::TextString("42".into())
            )]
        );
    }

    #[test]
    fn what_is_not_a_request_is_an_invalid_message_in_the_version_it_named() {
        let reason = |m: &Ttlv| parse_request(m).unwrap_err();
        let e = reason(&st(tag::RESPONSE_MESSAGE, vec![]));
        assert_eq!(
            (e.version, e.failure.reason),
            (None, ResultReason::InvalidMessage)
        );
        let e = reason(&st(tag::REQUEST_MESSAGE, vec![item(Operation::GET, None)]));
        assert!(e.failure.message.contains("no Request Header"), "{e:?}");
        // The count disagrees with the items; several items without ids.
        let e = reason(&st(
            tag::REQUEST_MESSAGE,
            vec![header(2, 0, 2, vec![]), item(Operation::GET, None)],
        ));
        assert_eq!(e.version, Some(ProtocolVersion::new(2, 0)));
        assert!(e.failure.message.contains("Batch Count is 2"), "{e:?}");
        let e = reason(&st(
            tag::REQUEST_MESSAGE,
            vec![
                header(1, 0, 2, vec![]),
                item(Operation::GET, None),
                item(Operation::GET, None),
            ],
        ));
        assert!(e.failure.message.contains("Unique Batch Item ID"), "{e:?}");
        let e = reason(&st(
            tag::REQUEST_MESSAGE,
            vec![
                header(
                    1,
                    2,
                    1,
                    vec![Ttlv::new(tag::ASYNCHRONOUS_INDICATOR, Value::Boolean(true))],
                ),
                item(Operation::GET, None),
            ],
        ));
        assert_eq!(e.failure.reason, ResultReason::FeatureNotSupported);
        assert_eq!(Operation(0x99).name(), None);
    }

    #[test]
    fn responses_answer_each_item_with_its_status() {
        let message = response(
            ProtocolVersion::new(1, 0),
            1_700_000_000,
            vec![
                ResponseItem {
                    operation: Some(Operation::DISCOVER_VERSIONS),
                    id: Some(b"a".to_vec()),
                    result: Ok(vec![]),
                },
                ResponseItem {
                    operation: Some(Operation::GET),
                    id: None,
                    result: Err(Failure::new(ResultReason::ItemNotFound, "no object 7")),
                },
            ],
        );
        let bytes = encode(&message);
        // PyKMIP 0.11 writes the same response (its ResponseMessage of these two
        // items), byte for byte: its clients read kcm's answers as their own.
        let pykmip = "42007b01000000e042007a0100000048420069010000002042006a02000000040000000100000000\
            42006b020000000400000000000000004200920900000008000000006553f10042000d02000000040000000200000000\
            42000f010000003842005c05000000040000001e000000004200930800000001610000000000000042007f050000000400\
            0000000000000042007c010000000042000f010000004842005c05000000040000000a0000000042007f050000000400000001\
            0000000042007e0500000004000000010000000042007d070000000b6e6f206f626a65637420370000000000";
        assert_eq!(hex::encode(&bytes), pykmip.replace(' ', ""));
        let back = decode(&bytes, &Limits::default()).unwrap();
        assert_eq!(back, message);
        let fields = back.items().unwrap();
        let header = fields[0].items().unwrap();
        assert_eq!(
            find(header, tag::BATCH_COUNT).unwrap().value,
            Value::Integer(2)
        );
        let failed = fields[2].items().unwrap();
        assert_eq!(
            find(failed, tag::RESULT_STATUS).unwrap().value,
            Value::Enumeration(1)
        );
        assert_eq!(
            find(failed, tag::RESULT_REASON).unwrap().value,
            Value::Enumeration(1)
        );
    }
}
