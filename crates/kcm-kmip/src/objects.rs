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
}

/// Object Type values kcm keeps.
pub mod object_type {
    /// Symmetric Key.
    pub const SYMMETRIC_KEY: u32 = 2;
    /// Secret Data.
    pub const SECRET_DATA: u32 = 7;
    /// Opaque Object.
    pub const OPAQUE_OBJECT: u32 = 8;
}

/// Key Format Type Raw.
pub const KEY_FORMAT_RAW: u32 = 1;
/// Key Format Type Opaque.
pub const KEY_FORMAT_OPAQUE: u32 = 2;
/// Cryptographic Algorithm AES.
pub const ALGORITHM_AES: u32 = 3;
/// Name Type Uninterpreted Text String.
pub const NAME_TYPE_TEXT: u32 = 1;

/// The KMIP Object Type of a kcm object kind it serves.
pub fn object_type_of(kind: ObjectKind) -> Option<u32> {
    match kind {
        ObjectKind::SymmetricKey => Some(object_type::SYMMETRIC_KEY),
        ObjectKind::Passphrase => Some(object_type::SECRET_DATA),
        ObjectKind::OpaqueData => Some(object_type::OPAQUE_OBJECT),
        _ => None,
    }
}

/// The kcm object kind of a KMIP Object Type kcm serves.
pub fn kind_of(object_type: u32) -> Result<ObjectKind, Failure> {
    match object_type {
        object_type::SYMMETRIC_KEY => Ok(ObjectKind::SymmetricKey),
        object_type::SECRET_DATA => Ok(ObjectKind::Passphrase),
        object_type::OPAQUE_OBJECT => Ok(ObjectKind::OpaqueData),
        other => Err(Failure::new(
            ResultReason::FeatureNotSupported,
            format!("Object Type {other} is not kept by this server (symmetric keys, secret data and opaque objects are)"),
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
}

/// Reads the attributes of a request: KMIP 1.x's Template-Attribute or bare
/// Attribute items (as Locate has them), or KMIP 2.0's Attributes structure, whose
/// items are the attributes under their own tags. Attributes kcm does not keep are
/// ignored.
pub fn read_attributes(items: &[Ttlv]) -> Result<Attributes, Failure> {
    let mut out = Attributes::default();
    let wrong = |name: &str| {
        Failure::new(
            ResultReason::InvalidField,
            format!("attribute {name} has a value of the wrong type"),
        )
    };
    for attribute in items
        .iter()
        .filter(|i| i.tag == tag::ATTRIBUTES)
        .filter_map(Ttlv::items)
        .flatten()
    {
        match (attribute.tag, &attribute.value) {
            (tag::NAME, Value::Structure(name)) => {
                let value = text(name, tag::NAME_VALUE).ok_or_else(|| {
                    Failure::new(ResultReason::InvalidField, "a Name has no Name Value")
                })?;
                out.name = Some(value.to_owned());
            }
            (tag::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(v)) => out.algorithm = Some(*v),
            (tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(v)) => out.length = Some(*v),
            (tag::OBJECT_TYPE, Value::Enumeration(v)) => out.object_type = Some(*v),
            (tag::NAME, _) => return Err(wrong("Name")),
            (tag::CRYPTOGRAPHIC_ALGORITHM, _) => return Err(wrong("Cryptographic Algorithm")),
            (tag::CRYPTOGRAPHIC_LENGTH, _) => return Err(wrong("Cryptographic Length")),
            (tag::OBJECT_TYPE, _) => return Err(wrong("Object Type")),
            _ => {}
        }
    }
    let nested: Vec<&Ttlv> = items
        .iter()
        .filter(|i| i.tag == tag::TEMPLATE_ATTRIBUTE)
        .filter_map(Ttlv::items)
        .flat_map(|t| t.iter())
        .chain(items.iter())
        .filter(|i| i.tag == tag::ATTRIBUTE)
        .collect();
    for attribute in nested {
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
        match (name, &value.value) {
            ("Name", Value::Structure(name)) => {
                let value = text(name, tag::NAME_VALUE).ok_or_else(|| {
                    Failure::new(ResultReason::InvalidField, "a Name has no Name Value")
                })?;
                out.name = Some(value.to_owned());
            }
            ("Cryptographic Algorithm", Value::Enumeration(v)) => out.algorithm = Some(*v),
            ("Cryptographic Length", Value::Integer(v)) => out.length = Some(*v),
            ("Object Type", Value::Enumeration(v)) => out.object_type = Some(*v),
            ("Name" | "Cryptographic Algorithm" | "Cryptographic Length" | "Object Type", _) => {
                return Err(wrong(name))
            }
            _ => {}
        }
    }
    Ok(out)
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

/// The object a Get returns: the payload in the structure of its Object Type
/// (a symmetric key's Key Block in the Raw format).
pub fn object_ttlv(kind: ObjectKind, payload: &SecretBytes, bits: Option<u32>) -> Option<Ttlv> {
    let material = || Value::ByteString(Zeroizing::new(payload.expose_secret().to_vec()));
    let key_block = |format: u32, extra: Vec<Ttlv>| {
        let mut block = vec![
            Ttlv::new(tag::KEY_FORMAT_TYPE, Value::Enumeration(format)),
            Ttlv::new(
                tag::KEY_VALUE,
                Value::Structure(vec![Ttlv::new(tag::KEY_MATERIAL, material())]),
            ),
        ];
        block.extend(extra);
        Ttlv::new(tag::KEY_BLOCK, Value::Structure(block))
    };
    Some(match kind {
        ObjectKind::SymmetricKey => {
            let length = bits.unwrap_or(payload.expose_secret().len() as u32 * 8);
            Ttlv::new(
                tag::SYMMETRIC_KEY,
                Value::Structure(vec![key_block(
                    KEY_FORMAT_RAW,
                    vec![
                        Ttlv::new(
                            tag::CRYPTOGRAPHIC_ALGORITHM,
                            Value::Enumeration(ALGORITHM_AES),
                        ),
                        Ttlv::new(tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(length as i32)),
                    ],
                )]),
            )
        }
        ObjectKind::Passphrase => Ttlv::new(
            tag::SECRET_DATA,
            Value::Structure(vec![
                // Secret Data Type Password.
                Ttlv::new(tag::SECRET_DATA_TYPE, Value::Enumeration(1)),
                key_block(KEY_FORMAT_OPAQUE, vec![]),
            ]),
        ),
        ObjectKind::OpaqueData => Ttlv::new(
            tag::OPAQUE_OBJECT,
            Value::Structure(vec![
                // Opaque Data Type: the one value KMIP 1.x defines is vendor-specific.
                Ttlv::new(tag::OPAQUE_DATA_TYPE, Value::Enumeration(0x8000_0000)),
                Ttlv::new(tag::OPAQUE_DATA_VALUE, material()),
            ]),
        ),
        _ => return None,
    })
}

/// The payload of an object a Register carries, in the structure of its type.
pub fn payload_of(kind: ObjectKind, items: &[Ttlv]) -> Result<SecretBytes, Failure> {
    let missing =
        |what: &str| Failure::new(ResultReason::InvalidField, format!("{what} is missing"));
    let (object_tag, in_key_block) = match kind {
        ObjectKind::SymmetricKey => (tag::SYMMETRIC_KEY, true),
        ObjectKind::Passphrase => (tag::SECRET_DATA, true),
        ObjectKind::OpaqueData => (tag::OPAQUE_OBJECT, false),
        _ => return Err(missing("a kept object type")),
    };
    let object = find(items, object_tag)
        .and_then(Ttlv::items)
        .ok_or_else(|| missing("the object"))?;
    let bytes = if in_key_block {
        let block = find(object, tag::KEY_BLOCK)
            .and_then(Ttlv::items)
            .ok_or_else(|| missing("the Key Block"))?;
        match enumeration(block, tag::KEY_FORMAT_TYPE) {
            Some(KEY_FORMAT_RAW | KEY_FORMAT_OPAQUE) => {}
            Some(other) => {
                return Err(Failure::new(
                    ResultReason::KeyFormatTypeNotSupported,
                    format!("Key Format Type {other} is not supported (Raw and Opaque are)"),
                ))
            }
            None => return Err(missing("the Key Format Type")),
        }
        let value = find(block, tag::KEY_VALUE).ok_or_else(|| missing("the Key Value"))?;
        match &value.value {
            Value::Structure(v) => match find(v, tag::KEY_MATERIAL).map(|m| &m.value) {
                Some(Value::ByteString(b)) => b.to_vec(),
                _ => return Err(missing("the Key Material")),
            },
            Value::ByteString(b) => b.to_vec(),
            _ => return Err(missing("the Key Material")),
        }
    } else {
        match find(object, tag::OPAQUE_DATA_VALUE).map(|v| &v.value) {
            Some(Value::ByteString(b)) => b.to_vec(),
            _ => return Err(missing("the Opaque Data Value")),
        }
    };
    Ok(SecretBytes::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symmetric_key_goes_out_and_comes_back_raw() {
        let key = SecretBytes::new(vec![7; 32]);
        let object = object_ttlv(ObjectKind::SymmetricKey, &key, Some(256)).unwrap();
        let back = payload_of(ObjectKind::SymmetricKey, &[object]).unwrap();
        assert_eq!(back.expose_secret(), key.expose_secret());
        for kind in [ObjectKind::Passphrase, ObjectKind::OpaqueData] {
            let object = object_ttlv(kind, &key, None).unwrap();
            assert_eq!(
                payload_of(kind, &[object]).unwrap().expose_secret(),
                &[7; 32]
            );
        }
        assert!(object_ttlv(ObjectKind::Certificate, &key, None).is_none());
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
                object_type: None,
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
            kind_of(1).unwrap_err().reason,
            ResultReason::FeatureNotSupported
        );
    }
}
