//! KMIP's managed objects and attributes as kcm's managed objects: the tags and
//! enumerations of the object types kcm keeps, and their translation both ways.

use kcm_core::model::ObjectKind;
use kcm_core::secret::SecretBytes;
use zeroize::Zeroizing;

use crate::message::{find, Failure, ResultReason};
use crate::ttlv::{Tag, Ttlv, Value};

/// The tags of objects and attributes.
pub mod tag {
    use crate::ttlv::Tag;

    /// Unique Identifier.
    pub const UNIQUE_IDENTIFIER: Tag = Tag::new(0x42_0094);
    /// Object Type.
    pub const OBJECT_TYPE: Tag = Tag::new(0x42_0057);
    /// Template-Attribute (KMIP 1.x).
    pub const TEMPLATE_ATTRIBUTE: Tag = Tag::new(0x42_0091);
    /// Attribute.
    pub const ATTRIBUTE: Tag = Tag::new(0x42_0008);
    /// Attribute Name.
    pub const ATTRIBUTE_NAME: Tag = Tag::new(0x42_000A);
    /// Attribute Value.
    pub const ATTRIBUTE_VALUE: Tag = Tag::new(0x42_000B);
    /// Name.
    pub const NAME: Tag = Tag::new(0x42_0053);
    /// Name Value.
    pub const NAME_VALUE: Tag = Tag::new(0x42_0055);
    /// Name Type.
    pub const NAME_TYPE: Tag = Tag::new(0x42_0054);
    /// Cryptographic Algorithm.
    pub const CRYPTOGRAPHIC_ALGORITHM: Tag = Tag::new(0x42_0028);
    /// Cryptographic Length.
    pub const CRYPTOGRAPHIC_LENGTH: Tag = Tag::new(0x42_002A);
    /// Cryptographic Usage Mask.
    pub const CRYPTOGRAPHIC_USAGE_MASK: Tag = Tag::new(0x42_002C);
    /// Symmetric Key.
    pub const SYMMETRIC_KEY: Tag = Tag::new(0x42_008F);
    /// Secret Data.
    pub const SECRET_DATA: Tag = Tag::new(0x42_0085);
    /// Secret Data Type.
    pub const SECRET_DATA_TYPE: Tag = Tag::new(0x42_0086);
    /// Opaque Object.
    pub const OPAQUE_OBJECT: Tag = Tag::new(0x42_005B);
    /// Opaque Data Type.
    pub const OPAQUE_DATA_TYPE: Tag = Tag::new(0x42_0059);
    /// Opaque Data Value.
    pub const OPAQUE_DATA_VALUE: Tag = Tag::new(0x42_005A);
    /// Key Block.
    pub const KEY_BLOCK: Tag = Tag::new(0x42_0040);
    /// Key Format Type.
    pub const KEY_FORMAT_TYPE: Tag = Tag::new(0x42_0042);
    /// Key Value.
    pub const KEY_VALUE: Tag = Tag::new(0x42_0045);
    /// Key Material.
    pub const KEY_MATERIAL: Tag = Tag::new(0x42_0043);
    /// State.
    pub const STATE: Tag = Tag::new(0x42_008D);
    /// Maximum Items.
    pub const MAXIMUM_ITEMS: Tag = Tag::new(0x42_004F);
    /// Offset Items (Locate, KMIP 1.3).
    pub const OFFSET_ITEMS: Tag = Tag::new(0x42_00D4);
    /// Located Items (Locate, KMIP 1.3).
    pub const LOCATED_ITEMS: Tag = Tag::new(0x42_00D5);
    /// Query Function.
    pub const QUERY_FUNCTION: Tag = Tag::new(0x42_0074);
    /// Revocation Reason.
    pub const REVOCATION_REASON: Tag = Tag::new(0x42_0081);
    /// Revocation Reason Code.
    pub const REVOCATION_REASON_CODE: Tag = Tag::new(0x42_0082);
    /// Data Length (RNG Retrieve).
    pub const DATA_LENGTH: Tag = Tag::new(0x42_00C4);
    /// Data (RNG Retrieve).
    pub const DATA: Tag = Tag::new(0x42_00C2);
    /// Attributes (KMIP 2.0: attributes as items of their own tags).
    pub const ATTRIBUTES: Tag = Tag::new(0x42_0125);
    /// Vendor Identification.
    pub const VENDOR_IDENTIFICATION: Tag = Tag::new(0x42_009D);
    /// Server Information.
    pub const SERVER_INFORMATION: Tag = Tag::new(0x42_0088);
    /// Private Key.
    pub const PRIVATE_KEY: Tag = Tag::new(0x42_0064);
    /// Public Key.
    pub const PUBLIC_KEY: Tag = Tag::new(0x42_006D);
    /// Certificate.
    pub const CERTIFICATE: Tag = Tag::new(0x42_0013);
    /// Certificate Type.
    pub const CERTIFICATE_TYPE: Tag = Tag::new(0x42_001D);
    /// Certificate Value.
    pub const CERTIFICATE_VALUE: Tag = Tag::new(0x42_001E);
    /// Recommended Curve (of an EC key pair to create).
    pub const RECOMMENDED_CURVE: Tag = Tag::new(0x42_0075);
    /// Cryptographic Domain Parameters (KMIP 1.x: holds the Recommended Curve).
    pub const CRYPTOGRAPHIC_DOMAIN_PARAMETERS: Tag = Tag::new(0x42_0029);
    /// Attribute Index (KMIP 1.x).
    pub const ATTRIBUTE_INDEX: Tag = Tag::new(0x42_0009);
    /// Current Attribute (KMIP 2.0).
    pub const CURRENT_ATTRIBUTE: Tag = Tag::new(0x42_013C);
    /// New Attribute (KMIP 2.0).
    pub const NEW_ATTRIBUTE: Tag = Tag::new(0x42_013D);
    /// Attribute Reference (KMIP 2.0).
    pub const ATTRIBUTE_REFERENCE: Tag = Tag::new(0x42_013B);
    /// Common Template-Attribute (Create Key Pair, KMIP 1.x).
    pub const COMMON_TEMPLATE_ATTRIBUTE: Tag = Tag::new(0x42_001F);
    /// Private Key Template-Attribute (Create Key Pair, KMIP 1.x).
    pub const PRIVATE_KEY_TEMPLATE_ATTRIBUTE: Tag = Tag::new(0x42_0065);
    /// Public Key Template-Attribute (Create Key Pair, KMIP 1.x).
    pub const PUBLIC_KEY_TEMPLATE_ATTRIBUTE: Tag = Tag::new(0x42_006E);
    /// Common Attributes (Create Key Pair, KMIP 2.0).
    pub const COMMON_ATTRIBUTES: Tag = Tag::new(0x42_0126);
    /// Private Key Attributes (Create Key Pair, KMIP 2.0).
    pub const PRIVATE_KEY_ATTRIBUTES: Tag = Tag::new(0x42_0127);
    /// Public Key Attributes (Create Key Pair, KMIP 2.0).
    pub const PUBLIC_KEY_ATTRIBUTES: Tag = Tag::new(0x42_0128);
    /// Private Key Unique Identifier.
    pub const PRIVATE_KEY_UNIQUE_IDENTIFIER: Tag = Tag::new(0x42_0066);
    /// Public Key Unique Identifier.
    pub const PUBLIC_KEY_UNIQUE_IDENTIFIER: Tag = Tag::new(0x42_006F);
}

/// Object Type values kcm keeps.
pub mod object_type {
    /// Certificate.
    pub const CERTIFICATE: u32 = 1;
    /// Public Key.
    pub const PUBLIC_KEY: u32 = 3;
    /// Private Key.
    pub const PRIVATE_KEY: u32 = 4;
    /// Symmetric Key.
    pub const SYMMETRIC_KEY: u32 = 2;
    /// Secret Data.
    pub const SECRET_DATA: u32 = 7;
    /// Opaque Object.
    pub const OPAQUE_OBJECT: u32 = 8;
}

/// Every Object Type kcm keeps, as Query answers them.
pub const OBJECT_TYPES: [u32; 6] = [
    object_type::CERTIFICATE,
    object_type::SYMMETRIC_KEY,
    object_type::PUBLIC_KEY,
    object_type::PRIVATE_KEY,
    object_type::SECRET_DATA,
    object_type::OPAQUE_OBJECT,
];

/// Key Format Type Raw.
pub const KEY_FORMAT_RAW: u32 = 1;
/// Key Format Type Opaque.
pub const KEY_FORMAT_OPAQUE: u32 = 2;
/// Key Format Type PKCS#8 (private keys).
pub const KEY_FORMAT_PKCS8: u32 = 4;
/// Key Format Type X.509 (public keys: SubjectPublicKeyInfo).
pub const KEY_FORMAT_X509: u32 = 5;
/// Certificate Type X.509.
pub const CERTIFICATE_X509: u32 = 1;
/// Cryptographic Algorithm AES.
pub const ALGORITHM_AES: u32 = 3;
/// Cryptographic Algorithm RSA.
pub const ALGORITHM_RSA: u32 = 4;
/// Cryptographic Algorithm ECDSA.
pub const ALGORITHM_ECDSA: u32 = 6;
/// Cryptographic Algorithm HMAC-SHA256.
pub const ALGORITHM_HMAC_SHA256: u32 = 9;
/// Cryptographic Algorithm HMAC-SHA384.
pub const ALGORITHM_HMAC_SHA384: u32 = 0x0A;
/// Cryptographic Algorithm HMAC-SHA512.
pub const ALGORITHM_HMAC_SHA512: u32 = 0x0B;
/// Cryptographic Algorithm EC.
pub const ALGORITHM_EC: u32 = 0x1A;

/// The Cryptographic Algorithms kcm records on objects, and the name each is
/// kept under (the `algorithm` Barbican shows).
const ALGORITHMS: [(u32, &str); 7] = [
    (ALGORITHM_AES, "aes"),
    (ALGORITHM_RSA, "rsa"),
    (ALGORITHM_ECDSA, "ecdsa"),
    (ALGORITHM_HMAC_SHA256, "hmac_sha256"),
    (ALGORITHM_HMAC_SHA384, "hmac_sha384"),
    (ALGORITHM_HMAC_SHA512, "hmac_sha512"),
    (ALGORITHM_EC, "ec"),
];

/// The name kcm keeps a Cryptographic Algorithm under.
pub fn algorithm_name(algorithm: u32) -> Option<&'static str> {
    ALGORITHMS
        .iter()
        .find(|(a, _)| *a == algorithm)
        .map(|(_, n)| *n)
}

/// The Cryptographic Algorithm of a name kcm keeps (any case).
pub fn algorithm_of(name: &str) -> Option<u32> {
    ALGORITHMS
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|(a, _)| *a)
}
/// Name Type Uninterpreted Text String.
pub const NAME_TYPE_TEXT: u32 = 1;

/// The KMIP Object Type of a kcm object kind it serves.
pub fn object_type_of(kind: ObjectKind) -> Option<u32> {
    match kind {
        ObjectKind::SymmetricKey => Some(object_type::SYMMETRIC_KEY),
        ObjectKind::PrivateKey => Some(object_type::PRIVATE_KEY),
        ObjectKind::PublicKey => Some(object_type::PUBLIC_KEY),
        ObjectKind::Certificate => Some(object_type::CERTIFICATE),
        ObjectKind::Passphrase => Some(object_type::SECRET_DATA),
        ObjectKind::OpaqueData => Some(object_type::OPAQUE_OBJECT),
        ObjectKind::Container | ObjectKind::VersionedSecret => None,
    }
}

/// The kcm object kind of a KMIP Object Type kcm serves.
pub fn kind_of(object_type: u32) -> Result<ObjectKind, Failure> {
    match object_type {
        object_type::SYMMETRIC_KEY => Ok(ObjectKind::SymmetricKey),
        object_type::PRIVATE_KEY => Ok(ObjectKind::PrivateKey),
        object_type::PUBLIC_KEY => Ok(ObjectKind::PublicKey),
        object_type::CERTIFICATE => Ok(ObjectKind::Certificate),
        object_type::SECRET_DATA => Ok(ObjectKind::Passphrase),
        object_type::OPAQUE_OBJECT => Ok(ObjectKind::OpaqueData),
        other => Err(Failure::new(
            ResultReason::FeatureNotSupported,
            format!("Object Type {other} is not kept by this server (certificates, symmetric, public and private keys, secret data and opaque objects are)"),
        )),
    }
}

/// An enumeration child of `items`.
pub fn enumeration(items: &[Ttlv], tag: Tag) -> Option<u32> {
    match find(items, tag)?.value {
        Value::Enumeration(v) => Some(v),
        _ => None,
    }
}

/// A text child of `items`.
pub fn text(items: &[Ttlv], tag: Tag) -> Option<&str> {
    match &find(items, tag)?.value {
        Value::TextString(v) => Some(v),
        _ => None,
    }
}

/// What a request's attributes say of the object to make.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    /// Name (its Name Value).
    pub name: Option<String>,
    /// Cryptographic Algorithm.
    pub algorithm: Option<u32>,
    /// Cryptographic Length.
    pub length: Option<i32>,
    /// Object Type (as Locate filters by it).
    pub object_type: Option<u32>,
    /// Recommended Curve (of an EC key pair).
    pub curve: Option<u32>,
    /// Custom attributes (KMIP 1.x names starting `x-` or `y-`, text values),
    /// kept as the object's metadata.
    pub custom: Vec<(String, String)>,
}

/// One attribute, by its KMIP 1.x name or its tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttributeKey<'a> {
    /// By name (KMIP 1.x's Attribute Name).
    Named(&'a str),
    /// By tag (KMIP 2.0).
    Tagged(Tag),
}

/// Whether `name` is a custom attribute's (KMIP 1.x: `x-` client, `y-` server).
pub fn is_custom(name: &str) -> bool {
    name.starts_with("x-") || name.starts_with("y-")
}

impl Attributes {
    /// Takes one attribute; attributes kcm does not keep are ignored.
    pub fn set(&mut self, key: AttributeKey<'_>, value: &Value) -> Result<(), Failure> {
        use AttributeKey::{Named, Tagged};
        let wrong = |name: &str| {
            Failure::new(
                ResultReason::InvalidField,
                format!("attribute {name} has a value of the wrong type"),
            )
        };
        match (key, value) {
            (Named("Name") | Tagged(tag::NAME), Value::Structure(name)) => {
                let value = text(name, tag::NAME_VALUE).ok_or_else(|| {
                    Failure::new(ResultReason::InvalidField, "a Name has no Name Value")
                })?;
                self.name = Some(value.to_owned());
            }
            (
                Named("Cryptographic Algorithm") | Tagged(tag::CRYPTOGRAPHIC_ALGORITHM),
                Value::Enumeration(v),
            ) => self.algorithm = Some(*v),
            (
                Named("Cryptographic Length") | Tagged(tag::CRYPTOGRAPHIC_LENGTH),
                Value::Integer(v),
            ) => self.length = Some(*v),
            (Named("Object Type") | Tagged(tag::OBJECT_TYPE), Value::Enumeration(v)) => {
                self.object_type = Some(*v)
            }
            (Tagged(tag::RECOMMENDED_CURVE), Value::Enumeration(v)) => self.curve = Some(*v),
            (Named("Cryptographic Domain Parameters"), Value::Structure(parameters)) => {
                self.curve = enumeration(parameters, tag::RECOMMENDED_CURVE)
            }
            (Named(name), Value::TextString(v)) if is_custom(name) => {
                self.custom.push((name.to_owned(), v.clone()))
            }
            (Named(name), _) if is_custom(name) => {
                return Err(Failure::new(
                    ResultReason::FeatureNotSupported,
                    format!("custom attribute {name} must be a text string here"),
                ))
            }
            (
                Named(
                    name @ ("Name"
                    | "Cryptographic Algorithm"
                    | "Cryptographic Length"
                    | "Object Type"),
                ),
                _,
            ) => return Err(wrong(name)),
            (Tagged(tag::NAME), _) => return Err(wrong("Name")),
            (Tagged(tag::CRYPTOGRAPHIC_ALGORITHM), _) => {
                return Err(wrong("Cryptographic Algorithm"))
            }
            (Tagged(tag::CRYPTOGRAPHIC_LENGTH), _) => return Err(wrong("Cryptographic Length")),
            (Tagged(tag::OBJECT_TYPE), _) => return Err(wrong("Object Type")),
            _ => {}
        }
        Ok(())
    }

    /// Takes every attribute of `items` that are KMIP 2.0 attributes under their
    /// own tags.
    fn set_tagged(&mut self, items: &[Ttlv]) -> Result<(), Failure> {
        for attribute in items {
            self.set(AttributeKey::Tagged(attribute.tag), &attribute.value)?;
        }
        Ok(())
    }

    /// Takes every KMIP 1.x Attribute (name and value) of `items`.
    fn set_named<'a>(&mut self, items: impl Iterator<Item = &'a Ttlv>) -> Result<(), Failure> {
        for attribute in items.filter(|i| i.tag == tag::ATTRIBUTE) {
            let (name, value) = named_attribute(attribute)?;
            self.set(AttributeKey::Named(name), value)?;
        }
        Ok(())
    }
}

/// The name and value of a KMIP 1.x Attribute structure.
pub fn named_attribute(attribute: &Ttlv) -> Result<(&str, &Value), Failure> {
    let fields = attribute.items().unwrap_or(&[]);
    let name = text(fields, tag::ATTRIBUTE_NAME).ok_or_else(|| {
        Failure::new(
            ResultReason::InvalidField,
            "an Attribute has no Attribute Name",
        )
    })?;
    let value = find(fields, tag::ATTRIBUTE_VALUE).ok_or_else(|| {
        Failure::new(
            ResultReason::InvalidField,
            format!("attribute {name} has no value"),
        )
    })?;
    Ok((name, &value.value))
}

/// Reads the attributes of a request: KMIP 1.x's Template-Attribute or bare
/// Attribute items (as Locate has them), or KMIP 2.0's Attributes structure, whose
/// items are the attributes under their own tags. Attributes kcm does not keep are
/// ignored.
pub fn read_attributes(items: &[Ttlv]) -> Result<Attributes, Failure> {
    let mut out = Attributes::default();
    for attributes in items
        .iter()
        .filter(|i| i.tag == tag::ATTRIBUTES)
        .filter_map(Ttlv::items)
    {
        out.set_tagged(attributes)?;
    }
    let templates = items
        .iter()
        .filter(|i| i.tag == tag::TEMPLATE_ATTRIBUTE)
        .filter_map(Ttlv::items)
        .flat_map(|t| t.iter());
    out.set_named(templates.chain(items.iter()))?;
    Ok(out)
}

/// Reads one part of a Create Key Pair's attributes: KMIP 1.x's template of tag
/// `template` (Attribute items) or KMIP 2.0's structure of tag `attributes`
/// (attributes under their own tags); the default when neither is there.
pub fn read_key_pair_part(
    items: &[Ttlv],
    template: Tag,
    attributes: Tag,
) -> Result<Attributes, Failure> {
    let mut out = Attributes::default();
    if let Some(t) = find(items, template).and_then(Ttlv::items) {
        out.set_named(t.iter())?;
    }
    if let Some(a) = find(items, attributes).and_then(Ttlv::items) {
        out.set_tagged(a)?;
    }
    Ok(out)
}

/// `base` with what `over` says in its place.
pub fn merged(base: &Attributes, over: Attributes) -> Attributes {
    let mut custom = base.custom.clone();
    custom.extend(over.custom);
    Attributes {
        name: over.name.or_else(|| base.name.clone()),
        algorithm: over.algorithm.or(base.algorithm),
        length: over.length.or(base.length),
        object_type: over.object_type.or(base.object_type),
        curve: over.curve.or(base.curve),
        custom,
    }
}

/// One attribute, as Get Attributes answers it.
pub fn attribute(name: &str, value: Value) -> Ttlv {
    Ttlv::new(
        tag::ATTRIBUTE,
        Value::Structure(vec![
            Ttlv::new(tag::ATTRIBUTE_NAME, Value::TextString(name.to_owned())),
            Ttlv::new(tag::ATTRIBUTE_VALUE, value),
        ]),
    )
}

/// A Name attribute's value.
pub fn name_value(name: &str) -> Value {
    Value::Structure(vec![
        Ttlv::new(tag::NAME_VALUE, Value::TextString(name.to_owned())),
        Ttlv::new(tag::NAME_TYPE, Value::Enumeration(NAME_TYPE_TEXT)),
    ])
}

/// The Key Format Type kcm serves and takes an object kind's key in.
pub fn key_format_of(kind: ObjectKind) -> Option<u32> {
    match kind {
        ObjectKind::SymmetricKey => Some(KEY_FORMAT_RAW),
        ObjectKind::PrivateKey => Some(KEY_FORMAT_PKCS8),
        ObjectKind::PublicKey => Some(KEY_FORMAT_X509),
        ObjectKind::Passphrase => Some(KEY_FORMAT_OPAQUE),
        _ => None,
    }
}

/// What a Get answers an object with, besides its payload.
#[derive(Clone, Copy, Debug)]
pub struct Described {
    /// What it is.
    pub kind: ObjectKind,
    /// Its Cryptographic Algorithm, if known.
    pub algorithm: Option<u32>,
    /// Its Cryptographic Length, if known.
    pub bits: Option<u32>,
}

/// The object a Get returns: the payload in the structure of its Object Type (a
/// symmetric key's Key Block in the Raw format, a private key's in PKCS#8, a
/// public key's in X.509, each DER; a certificate's X.509 DER).
pub fn object_ttlv(object: Described, payload: &SecretBytes) -> Result<Ttlv, Failure> {
    let der = || {
        kcm_core::object_crypto::der(payload.expose_secret()).map_err(|e| {
            Failure::new(
                ResultReason::GeneralFailure,
                format!("the object's PEM: {e}"),
            )
        })
    };
    let bytes = |b: &SecretBytes| Value::ByteString(Zeroizing::new(b.expose_secret().to_vec()));
    let key_block = |format: u32, material: Value| {
        let mut block = vec![
            Ttlv::new(tag::KEY_FORMAT_TYPE, Value::Enumeration(format)),
            Ttlv::new(
                tag::KEY_VALUE,
                Value::Structure(vec![Ttlv::new(tag::KEY_MATERIAL, material)]),
            ),
        ];
        if let Some(algorithm) = object.algorithm {
            block.push(Ttlv::new(
                tag::CRYPTOGRAPHIC_ALGORITHM,
                Value::Enumeration(algorithm),
            ));
        }
        if let Some(bits) = object.bits {
            block.push(Ttlv::new(
                tag::CRYPTOGRAPHIC_LENGTH,
                Value::Integer(bits as i32),
            ));
        }
        Ttlv::new(tag::KEY_BLOCK, Value::Structure(block))
    };
    Ok(match object.kind {
        ObjectKind::SymmetricKey => Ttlv::new(
            tag::SYMMETRIC_KEY,
            Value::Structure(vec![key_block(KEY_FORMAT_RAW, bytes(payload))]),
        ),
        ObjectKind::PrivateKey => Ttlv::new(
            tag::PRIVATE_KEY,
            Value::Structure(vec![key_block(KEY_FORMAT_PKCS8, bytes(&der()?))]),
        ),
        ObjectKind::PublicKey => Ttlv::new(
            tag::PUBLIC_KEY,
            Value::Structure(vec![key_block(KEY_FORMAT_X509, bytes(&der()?))]),
        ),
        ObjectKind::Certificate => Ttlv::new(
            tag::CERTIFICATE,
            Value::Structure(vec![
                Ttlv::new(tag::CERTIFICATE_TYPE, Value::Enumeration(CERTIFICATE_X509)),
                Ttlv::new(tag::CERTIFICATE_VALUE, bytes(&der()?)),
            ]),
        ),
        ObjectKind::Passphrase => Ttlv::new(
            tag::SECRET_DATA,
            Value::Structure(vec![
                // Secret Data Type Password.
                Ttlv::new(tag::SECRET_DATA_TYPE, Value::Enumeration(1)),
                Ttlv::new(
                    tag::KEY_BLOCK,
                    Value::Structure(vec![
                        Ttlv::new(tag::KEY_FORMAT_TYPE, Value::Enumeration(KEY_FORMAT_OPAQUE)),
                        Ttlv::new(
                            tag::KEY_VALUE,
                            Value::Structure(vec![Ttlv::new(tag::KEY_MATERIAL, bytes(payload))]),
                        ),
                    ]),
                ),
            ]),
        ),
        ObjectKind::OpaqueData => Ttlv::new(
            tag::OPAQUE_OBJECT,
            Value::Structure(vec![
                // Opaque Data Type: the one value KMIP 1.x defines is vendor-specific.
                Ttlv::new(tag::OPAQUE_DATA_TYPE, Value::Enumeration(0x8000_0000)),
                Ttlv::new(tag::OPAQUE_DATA_VALUE, bytes(payload)),
            ]),
        ),
        ObjectKind::Container | ObjectKind::VersionedSecret => {
            return Err(Failure::new(
                ResultReason::FeatureNotSupported,
                format!("a {} is no KMIP object", object.kind),
            ))
        }
    })
}

/// A Register's object: its payload, and the Cryptographic Algorithm and Length
/// its Key Block names.
#[derive(Debug)]
pub struct Registered {
    /// The payload as kcm keeps it (DER for keys and certificates).
    pub payload: SecretBytes,
    /// The Key Block's Cryptographic Algorithm.
    pub algorithm: Option<u32>,
    /// The Key Block's Cryptographic Length.
    pub length: Option<i32>,
}

/// The payload of an object a Register carries, in the structure of its type.
pub fn payload_of(kind: ObjectKind, items: &[Ttlv]) -> Result<Registered, Failure> {
    let missing =
        |what: &str| Failure::new(ResultReason::InvalidField, format!("{what} is missing"));
    let object_tag = match kind {
        ObjectKind::SymmetricKey => tag::SYMMETRIC_KEY,
        ObjectKind::PrivateKey => tag::PRIVATE_KEY,
        ObjectKind::PublicKey => tag::PUBLIC_KEY,
        ObjectKind::Certificate => tag::CERTIFICATE,
        ObjectKind::Passphrase => tag::SECRET_DATA,
        ObjectKind::OpaqueData => tag::OPAQUE_OBJECT,
        ObjectKind::Container | ObjectKind::VersionedSecret => {
            return Err(missing("a kept object type"))
        }
    };
    let object = find(items, object_tag)
        .and_then(Ttlv::items)
        .ok_or_else(|| missing("the object"))?;
    let byte_string = |item: Option<&Ttlv>, what: &str| match item.map(|v| &v.value) {
        Some(Value::ByteString(b)) => Ok(SecretBytes::copy_from(b)),
        _ => Err(missing(what)),
    };
    let Some(format) = key_format_of(kind) else {
        let payload = match kind {
            ObjectKind::Certificate => {
                match enumeration(object, tag::CERTIFICATE_TYPE) {
                    Some(CERTIFICATE_X509) => {}
                    _ => {
                        return Err(Failure::new(
                            ResultReason::FeatureNotSupported,
                            "a certificate is kept as X.509 (Certificate Type 1)",
                        ))
                    }
                }
                byte_string(
                    find(object, tag::CERTIFICATE_VALUE),
                    "the Certificate Value",
                )?
            }
            _ => byte_string(
                find(object, tag::OPAQUE_DATA_VALUE),
                "the Opaque Data Value",
            )?,
        };
        return Ok(Registered {
            payload,
            algorithm: None,
            length: None,
        });
    };
    let block = find(object, tag::KEY_BLOCK)
        .and_then(Ttlv::items)
        .ok_or_else(|| missing("the Key Block"))?;
    let given =
        enumeration(block, tag::KEY_FORMAT_TYPE).ok_or_else(|| missing("the Key Format Type"))?;
    // A secret's Raw and Opaque are both its bytes.
    let same = given == format || (kind == ObjectKind::Passphrase && given == KEY_FORMAT_RAW);
    if !same {
        return Err(Failure::new(
            ResultReason::KeyFormatTypeNotSupported,
            format!(
                "Key Format Type {given} is not taken for a {}: it is kept in format {format} (symmetric keys Raw, private keys PKCS#8, public keys X.509, secret data Opaque)",
                kind.as_str()
            ),
        ));
    }
    let value = find(block, tag::KEY_VALUE).ok_or_else(|| missing("the Key Value"))?;
    let payload = match &value.value {
        Value::Structure(v) => byte_string(find(v, tag::KEY_MATERIAL), "the Key Material")?,
        Value::ByteString(b) => SecretBytes::copy_from(b),
        _ => return Err(missing("the Key Material")),
    };
    let length = match find(block, tag::CRYPTOGRAPHIC_LENGTH).map(|l| &l.value) {
        Some(Value::Integer(n)) => Some(*n),
        _ => None,
    };
    Ok(Registered {
        payload,
        algorithm: enumeration(block, tag::CRYPTOGRAPHIC_ALGORITHM),
        length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(kind: ObjectKind) -> Described {
        Described {
            kind,
            algorithm: Some(ALGORITHM_AES),
            bits: Some(256),
        }
    }

    #[test]
    fn each_object_goes_out_and_comes_back_in_its_format() {
        let key = SecretBytes::new(vec![7; 32]);
        let object = object_ttlv(described(ObjectKind::SymmetricKey), &key).unwrap();
        let back = payload_of(ObjectKind::SymmetricKey, &[object]).unwrap();
        assert_eq!(back.payload.expose_secret(), key.expose_secret());
        assert_eq!(
            (back.algorithm, back.length),
            (Some(ALGORITHM_AES), Some(256))
        );
        for kind in [
            ObjectKind::Passphrase,
            ObjectKind::OpaqueData,
            ObjectKind::Certificate,
            ObjectKind::PrivateKey,
            ObjectKind::PublicKey,
        ] {
            let object = object_ttlv(described(kind), &key).unwrap();
            assert_eq!(
                payload_of(kind, &[object]).unwrap().payload.expose_secret(),
                &[7; 32],
                "{kind:?}"
            );
        }
        assert!(object_ttlv(described(ObjectKind::Container), &key).is_err());
        // A private key offered as Raw is refused with the format it is kept in.
        let raw = object_ttlv(described(ObjectKind::SymmetricKey), &key).unwrap();
        let mut private = raw.clone();
        private.tag = tag::PRIVATE_KEY;
        assert_eq!(
            payload_of(ObjectKind::PrivateKey, &[private])
                .unwrap_err()
                .reason,
            ResultReason::KeyFormatTypeNotSupported
        );
    }

    #[test]
    fn template_attributes_are_read() {
        let items = vec![Ttlv::new(
            tag::TEMPLATE_ATTRIBUTE,
            Value::Structure(vec![
                attribute("Name", name_value("rgw-key")),
                attribute("Cryptographic Algorithm", Value::Enumeration(ALGORITHM_AES)),
                attribute("Cryptographic Length", Value::Integer(256)),
                attribute("Cryptographic Usage Mask", Value::Integer(12)),
            ]),
        )];
        let a = read_attributes(&items).unwrap();
        assert_eq!(
            a,
            Attributes {
                name: Some("rgw-key".into()),
                algorithm: Some(ALGORITHM_AES),
                length: Some(256),
                ..Attributes::default()
            }
        );
        // KMIP 2.0: the same, as items of their own tags in Attributes.
        let items = vec![Ttlv::new(
            tag::ATTRIBUTES,
            Value::Structure(vec![
                Ttlv::new(tag::NAME, name_value("rgw-key")),
                Ttlv::new(
                    tag::CRYPTOGRAPHIC_ALGORITHM,
                    Value::Enumeration(ALGORITHM_AES),
                ),
                Ttlv::new(tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
                Ttlv::new(tag::OBJECT_TYPE, Value::Enumeration(2)),
            ]),
        )];
        let two = read_attributes(&items).unwrap();
        assert_eq!(
            two,
            Attributes {
                object_type: Some(2),
                ..a
            }
        );
        let bad = vec![attribute(
            "Cryptographic Length",
            Value::TextString("x".into()),
        )];
        assert_eq!(
            read_attributes(&bad).unwrap_err().reason,
            ResultReason::InvalidField
        );
        assert_eq!(
            kind_of(5).unwrap_err().reason,
            ResultReason::FeatureNotSupported
        );
    }
}
