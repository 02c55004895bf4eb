//! A request body as Vault's clients send it: a JSON object (or nothing), with or
//! without a Content-Type (Ceph's RADOS Gateway sends none), read field by field
//! with Vault's leniency (numbers and booleans as strings too).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::error::VaultError;

/// Most items in one batch.
const MAX_BATCH: usize = 1000;

/// What an encrypt, decrypt or rewrap request holds: one item, or a batch.
#[derive(Debug)]
pub enum Batch {
    /// The request is the item.
    One(Request),
    /// `batch_input`'s items, each answered on its own.
    Many(Vec<Request>),
}

/// A request body: a JSON object (or nothing). Vault's clients send JSON with or
/// without a Content-Type (Ceph's RADOS Gateway sends none).
#[derive(Debug)]
pub struct Request(Map<String, Value>);

impl Request {
    /// Reads a body.
    pub fn parse(body: &[u8]) -> Result<Self, VaultError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Map::new()));
        }
        match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(VaultError::invalid(
                "the request body must be a JSON object",
            )),
            Err(e) => Err(VaultError::invalid(format!(
                "the request body is not JSON: {e}"
            ))),
        }
    }

    pub(crate) fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field).filter(|v| !v.is_null())
    }

    /// A string field.
    pub fn text(&self, field: &str) -> Result<Option<&str>, VaultError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(VaultError::invalid(format!("{field} must be a string"))),
        }
    }

    /// An object field, as a request of its own.
    pub fn object(&self, field: &str) -> Result<Option<Request>, VaultError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Request(map.clone()))),
            Some(_) => Err(VaultError::invalid(format!("{field} must be an object"))),
        }
    }

    /// A boolean field (Vault takes `"true"` and `"false"` too).
    pub fn flag(&self, field: &str) -> Result<Option<bool>, VaultError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            // Vault's HTTP API takes "true"/"false" as strings too.
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(_) => Err(VaultError::invalid(format!("{field} must be a boolean"))),
        }
    }

    /// A whole-number field (or its decimal string).
    pub fn number(&self, field: &str) -> Result<Option<u64>, VaultError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| VaultError::invalid(format!("{field} must be a whole number"))),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| VaultError::invalid(format!("{field} must be a whole number"))),
            Some(_) => Err(VaultError::invalid(format!("{field} must be a number"))),
        }
    }

    /// The items of a batch (`batch_input`, 1 to 1000), or the request itself as
    /// its one item; moved out, not copied.
    pub fn into_items(mut self) -> Result<Batch, VaultError> {
        match self.0.remove("batch_input") {
            None | Some(Value::Null) => Ok(Batch::One(self)),
            Some(Value::Array(items)) => {
                if items.is_empty() || items.len() > MAX_BATCH {
                    return Err(VaultError::invalid(format!(
                        "batch_input holds 1 to {MAX_BATCH} items"
                    )));
                }
                items
                    .into_iter()
                    .map(|item| match item {
                        Value::Object(map) => Ok(Request(map)),
                        _ => Err(VaultError::invalid(
                            "each batch_input item must be an object",
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Batch::Many)
            }
            Some(_) => Err(VaultError::invalid("batch_input must be a list")),
        }
    }

    /// A base64 field, decoded.
    pub fn base64(&self, field: &str) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        match self.text(field)? {
            None => Ok(None),
            Some(text) => STANDARD
                .decode(text)
                .map(|b| Some(Zeroizing::new(b)))
                .map_err(|_| VaultError::invalid(format!("{field} must be base64"))),
        }
    }
}
