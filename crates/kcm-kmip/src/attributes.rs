//! KMIP's attribute operations on the core's managed objects: Get Attributes and
//! Get Attribute List (read), and Add, Modify, Delete and (2.x) Set Attribute.
//!
//! What an object's attributes are, in KMIP's words: Object Type, Name,
//! Cryptographic Algorithm, Cryptographic Length and State from the object's own
//! description, and (KMIP 1.x) custom attributes — names starting `x-` or `y-`
//! with text values — kept as the object's metadata. A client may change the Name
//! and custom attributes; the others are the object's nature or the server's
//! to keep (Invalid Field, naming the attribute). kcm keeps one value of each
//! attribute, so an index other than 0 is never found.

use kcm_core::authz::Caller;
use kcm_core::model::{ObjectId, ObjectKind};
use kcm_core::service::{ObjectChange, ObjectInfo, Service};

use crate::door::{id_ttlv, kmip_state, unique_identifier, KmipError};
use crate::message::{find, Operation, ProtocolVersion, ResultReason};
use crate::objects::{self, is_custom, named_attribute, tag, AttributeKey};
use crate::ttlv::{Tag, Ttlv, Value};

/// The KMIP 1.x name of each attribute kcm keeps, with its KMIP 2.0 tag.
const KEPT: [(&str, Tag); 5] = [
    ("Object Type", tag::OBJECT_TYPE),
    ("Name", tag::NAME),
    ("Cryptographic Algorithm", tag::CRYPTOGRAPHIC_ALGORITHM),
    ("Cryptographic Length", tag::CRYPTOGRAPHIC_LENGTH),
    ("State", tag::STATE),
];

/// The Cryptographic Algorithm of an object, as KMIP numbers it.
pub fn algorithm_of(info: &ObjectInfo) -> Option<u32> {
    let named = info
        .attributes
        .algorithm
        .as_deref()
        .and_then(objects::algorithm_of);
    match info.kind {
        ObjectKind::SymmetricKey => named.or(Some(objects::ALGORITHM_AES)),
        _ => named,
    }
}

/// Each attribute of `info` as (1.x name, 2.0 tag, value), in the order Get
/// Attributes answers them.
fn attributes_of(info: &ObjectInfo) -> Vec<(String, Option<Tag>, Value)> {
    let mut found = Vec::new();
    let mut push = |name: &str, value: Value| {
        let tag = KEPT.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
        found.push((name.to_owned(), tag, value));
    };
    if let Some(object_type) = objects::object_type_of(info.kind) {
        push("Object Type", Value::Enumeration(object_type));
    }
    if !info.attributes.name.is_empty() {
        push("Name", objects::name_value(&info.attributes.name));
    }
    if let Some(algorithm) = algorithm_of(info) {
        push("Cryptographic Algorithm", Value::Enumeration(algorithm));
    }
    if let Some(bits) = info.attributes.bit_length {
        push("Cryptographic Length", Value::Integer(bits as i32));
    }
    push("State", Value::Enumeration(kmip_state(info.state)));
    for (key, value) in &info.attributes.metadata {
        if is_custom(key) {
            push(key, Value::TextString(value.clone()));
        }
    }
    found
}

/// The tag a client's enumeration names, if it is one (3 bytes).
fn tag_of(value: u32) -> Option<Tag> {
    (value <= 0x00ff_ffff).then(|| Tag::new(value))
}

/// The attribute a KMIP 2.0 Attribute Reference names: a standard attribute's
/// tag as an enumeration, or a structure of Vendor Identification (empty for a
/// standard attribute) and Attribute Name.
fn referenced(reference: &Ttlv) -> Option<AttributeKey<'_>> {
    match &reference.value {
        Value::Enumeration(t) => tag_of(*t).map(AttributeKey::Tagged),
        Value::Structure(fields) => {
            objects::text(fields, tag::ATTRIBUTE_NAME).map(AttributeKey::Named)
        }
        _ => None,
    }
}

/// What a Get Attributes asks for: the 1.x Attribute Names or 2.0 Attribute
/// References of the request (all attributes when it names none).
fn asked_for(payload: &[Ttlv]) -> (Vec<&str>, Vec<Tag>) {
    let mut names: Vec<&str> = payload
        .iter()
        .filter(|i| i.tag == tag::ATTRIBUTE_NAME)
        .filter_map(|i| match &i.value {
            Value::TextString(n) => Some(n.as_str()),
            _ => None,
        })
        .collect();
    let mut tags = Vec::new();
    for reference in payload.iter().filter(|i| i.tag == tag::ATTRIBUTE_REFERENCE) {
        match referenced(reference) {
            Some(AttributeKey::Tagged(t)) => tags.push(t),
            Some(AttributeKey::Named(n)) => names.push(n),
            None => {}
        }
    }
    (names, tags)
}

/// Get Attributes: the attributes asked for (all, when none are), in the form
/// of the client's version — 1.x Attribute structures by name, 2.0 an
/// Attributes structure of attributes under their own tags (custom attributes,
/// which 2.0 does not name so, are left out).
pub async fn get_attributes(
    service: &Service,
    caller: &Caller,
    version: ProtocolVersion,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    let id = unique_identifier(payload)?;
    let info = service.get_object(caller, id).await?;
    let (names, tags) = asked_for(payload);
    let every = names.is_empty() && tags.is_empty();
    let found = attributes_of(&info).into_iter().filter(|(name, tag, _)| {
        every || names.contains(&name.as_str()) || tag.is_some_and(|t| tags.contains(&t))
    });
    let attributes = if version.major >= 2 {
        let items = found.filter_map(|(_, t, value)| Some(Ttlv::new(t?, value)));
        vec![Ttlv::new(
            tag::ATTRIBUTES,
            Value::Structure(items.collect()),
        )]
    } else {
        found
            .map(|(name, _, value)| objects::attribute(&name, value))
            .collect()
    };
    Ok([vec![id_ttlv(id)], attributes].concat())
}

/// Get Attribute List (KMIP 1.x): the names of the attributes Get Attributes
/// answers with.
pub async fn get_attribute_list(
    service: &Service,
    caller: &Caller,
    version: ProtocolVersion,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    if version.major >= 2 {
        return Err(KmipError::refused(
            ResultReason::OperationNotSupported,
            "Get Attribute List is answered in KMIP 1.x; ask for Get Attributes in 2.0",
        ));
    }
    let id = unique_identifier(payload)?;
    let info = service.get_object(caller, id).await?;
    let mut out = vec![id_ttlv(id)];
    out.extend(
        attributes_of(&info)
            .into_iter()
            .map(|(name, _, _)| Ttlv::new(tag::ATTRIBUTE_NAME, Value::TextString(name))),
    );
    Ok(out)
}

/// One attribute a client changes: the Name, or a custom attribute.
enum Changeable {
    Name,
    Custom(String),
}

fn changeable(key: AttributeKey<'_>) -> Result<Changeable, KmipError> {
    match key {
        AttributeKey::Named("Name") | AttributeKey::Tagged(tag::NAME) => Ok(Changeable::Name),
        AttributeKey::Named(name) if is_custom(name) => Ok(Changeable::Custom(name.to_owned())),
        AttributeKey::Named(name) => Err(if KEPT.iter().any(|(n, _)| *n == name) {
            read_only(name)
        } else {
            not_kept(name)
        }),
        AttributeKey::Tagged(t) => Err(match KEPT.iter().find(|(_, kt)| *kt == t) {
            Some((name, _)) => read_only(name),
            None => not_kept(&format!("of tag {t}")),
        }),
    }
}

fn read_only(name: &str) -> KmipError {
    KmipError::refused(
        ResultReason::InvalidField,
        format!(
            "attribute {name} is the object's own or the server's: a client does not change it"
        ),
    )
}

fn not_kept(name: &str) -> KmipError {
    KmipError::refused(
        ResultReason::FeatureNotSupported,
        format!("attribute {name} is not kept by this server (Name and custom x- attributes can be changed)"),
    )
}

/// The (key, value) of an attribute a request carries: 1.x an Attribute, 2.0 the
/// one item of a New Attribute or Current Attribute structure.
fn carried(
    payload: &[Ttlv],
    version: ProtocolVersion,
    two: Tag,
) -> Option<(AttributeKey<'_>, &Value)> {
    if version.major >= 2 {
        let item = find(payload, two)?.items()?.first()?;
        Some((AttributeKey::Tagged(item.tag), &item.value))
    } else {
        let (name, value) = named_attribute(find(payload, tag::ATTRIBUTE)?).ok()?;
        Some((AttributeKey::Named(name), value))
    }
}

fn index_is_zero(payload: &[Ttlv]) -> Result<(), KmipError> {
    let attribute = find(payload, tag::ATTRIBUTE).and_then(Ttlv::items);
    let index = attribute
        .and_then(|a| find(a, tag::ATTRIBUTE_INDEX))
        .or_else(|| find(payload, tag::ATTRIBUTE_INDEX));
    match index.map(|i| &i.value) {
        None | Some(Value::Integer(0)) => Ok(()),
        Some(_) => Err(KmipError::refused(
            ResultReason::ItemNotFound,
            "kcm keeps one value of each attribute: only index 0 exists",
        )),
    }
}

fn text_value(value: &Value, what: &str) -> Result<String, KmipError> {
    match value {
        Value::TextString(t) => Ok(t.clone()),
        Value::Structure(name) => objects::text(name, tag::NAME_VALUE)
            .map(str::to_owned)
            .ok_or_else(|| {
                KmipError::refused(ResultReason::InvalidField, format!("{what} has no value"))
            }),
        _ => Err(KmipError::refused(
            ResultReason::InvalidField,
            format!("{what} must be a text string"),
        )),
    }
}

/// Add, Modify, Delete or Set Attribute.
pub async fn change(
    service: &Service,
    caller: &Caller,
    version: ProtocolVersion,
    operation: Operation,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    let id = unique_identifier(payload)?;
    index_is_zero(payload)?;
    if operation == Operation::DELETE_ATTRIBUTE {
        return delete(service, caller, version, id, payload).await;
    }
    let (key, value) = carried(payload, version, tag::NEW_ATTRIBUTE).ok_or_else(|| {
        KmipError::refused(
            ResultReason::InvalidField,
            "the request carries no attribute (KMIP 1.x: an Attribute; 2.x: a New Attribute)",
        )
    })?;
    let which = changeable(key)?;
    let info = service.get_object(caller, id).await?;
    let (exists, what) = match &which {
        Changeable::Name => (!info.attributes.name.is_empty(), "Name".to_owned()),
        Changeable::Custom(k) => (info.attributes.metadata.contains_key(k), k.clone()),
    };
    // Add makes a value that must not be there yet; Modify changes one that is;
    // Set (2.x) either.
    match operation {
        Operation::ADD_ATTRIBUTE if exists => {
            return Err(KmipError::refused(
                ResultReason::IllegalOperation,
                format!("object {id} already has {what}, and kcm keeps one value of it: modify it"),
            ))
        }
        Operation::MODIFY_ATTRIBUTE if !exists => {
            return Err(KmipError::refused(
                ResultReason::ItemNotFound,
                format!("object {id} has no {what} to modify"),
            ))
        }
        _ => {}
    }
    let text = text_value(value, &what)?;
    let change = match which {
        Changeable::Name => ObjectChange::Rename(text),
        Changeable::Custom(key) => ObjectChange::PutMetadataItem { key, value: text },
    };
    service.update_object(caller, id, change).await?;
    let mut out = vec![id_ttlv(id)];
    if version.major < 2 && operation != Operation::SET_ATTRIBUTE {
        // KMIP 1.x answers Add and Modify with the attribute as it now is.
        if let Some(attribute) = find(payload, tag::ATTRIBUTE) {
            out.push(attribute.clone());
        }
    }
    Ok(out)
}

async fn delete(
    service: &Service,
    caller: &Caller,
    version: ProtocolVersion,
    id: ObjectId,
    payload: &[Ttlv],
) -> Result<Vec<Ttlv>, KmipError> {
    let key = if version.major >= 2 {
        carried(payload, version, tag::CURRENT_ATTRIBUTE)
            .map(|(k, _)| k)
            .or_else(|| find(payload, tag::ATTRIBUTE_REFERENCE).and_then(referenced))
    } else {
        objects::text(payload, tag::ATTRIBUTE_NAME).map(AttributeKey::Named)
    }
    .ok_or_else(|| {
        KmipError::refused(
            ResultReason::InvalidField,
            "the request names no attribute to delete",
        )
    })?;
    let which = changeable(key)?;
    let info = service.get_object(caller, id).await?;
    let (deleted, change) = match which {
        Changeable::Name => {
            if info.attributes.name.is_empty() {
                return Err(KmipError::refused(
                    ResultReason::ItemNotFound,
                    format!("object {id} has no Name"),
                ));
            }
            (
                objects::attribute("Name", objects::name_value(&info.attributes.name)),
                ObjectChange::Rename(String::new()),
            )
        }
        Changeable::Custom(key) => {
            let value = info.attributes.metadata.get(&key).cloned().ok_or_else(|| {
                KmipError::refused(
                    ResultReason::ItemNotFound,
                    format!("object {id} has no attribute {key}"),
                )
            })?;
            (
                objects::attribute(&key, Value::TextString(value)),
                ObjectChange::DeleteMetadataItem(key),
            )
        }
    };
    service.update_object(caller, id, change).await?;
    let mut out = vec![id_ttlv(id)];
    if version.major < 2 {
        out.push(deleted);
    }
    Ok(out)
}
