//! Barbican's microversions: a client names the version it speaks in
//! `OpenStack-API-Version: key-manager 1.2`. Version 1.0 is the API as first
//! released; 1.1 adds secret consumers (and the `consumers` list of a secret); 1.2
//! refuses to delete a secret that has consumers (kcm's core refuses that at every
//! version, and knows no `force`). A version outside 1.0–1.2 is refused with 406.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::BarbicanError;

/// The header that carries the microversion.
pub const HEADER: &str = "openstack-api-version";

/// The service type named in the header.
const SERVICE: &str = "key-manager";

/// A microversion of the v1 API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Microversion {
    /// 1.0.
    V1_0,
    /// 1.1: secret consumers.
    V1_1,
    /// 1.2: a secret in use is not deleted.
    V1_2,
}

impl Microversion {
    /// The newest one served.
    pub const LATEST: Microversion = Microversion::V1_2;

    /// `1.0` or `1.1`.
    pub fn as_str(self) -> &'static str {
        match self {
            Microversion::V1_0 => "1.0",
            Microversion::V1_1 => "1.1",
            Microversion::V1_2 => "1.2",
        }
    }

    /// The version a request asks for: 1.0 when it names none (as Barbican).
    pub fn of_request(headers: &HeaderMap) -> Result<Option<Self>, BarbicanError> {
        for value in headers.get_all(HEADER) {
            let Ok(text) = value.to_str() else { continue };
            for item in text.split(',') {
                let mut words = item.split_whitespace();
                if words
                    .next()
                    .is_some_and(|s| s.eq_ignore_ascii_case(SERVICE))
                {
                    let version = words.next().unwrap_or("");
                    return Self::parse(version).map(Some);
                }
            }
        }
        Ok(None)
    }

    fn parse(text: &str) -> Result<Self, BarbicanError> {
        match text {
            "latest" => Ok(Self::LATEST),
            "1.0" => Ok(Microversion::V1_0),
            "1.1" => Ok(Microversion::V1_1),
            "1.2" => Ok(Microversion::V1_2),
            other => Err(BarbicanError::not_acceptable(format!(
                "Version {other} is not supported by the API. Minimum is 1.0 and Maximum is 1.2."
            ))),
        }
    }

    /// Puts the version on an answer, as Barbican does on every answer (1.0 when
    /// the client named none).
    pub fn stamp(self, headers: &mut HeaderMap) {
        let value = format!("{SERVICE} {}", self.as_str());
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(HEADER), value);
        }
        headers.insert(
            axum::http::header::VARY,
            HeaderValue::from_static("openstack-api-version"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(value: &str) -> Result<Option<Microversion>, BarbicanError> {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_str(value).unwrap());
        Microversion::of_request(&headers)
    }

    #[test]
    fn versions_are_read_from_the_header() {
        assert_eq!(Microversion::of_request(&HeaderMap::new()).unwrap(), None);
        assert_eq!(ask("key-manager 1.1").unwrap(), Some(Microversion::V1_1));
        assert_eq!(ask("key-manager 1.0").unwrap(), Some(Microversion::V1_0));
        assert_eq!(
            ask("compute 2.1, key-manager latest").unwrap(),
            Some(Microversion::V1_2)
        );
        assert_eq!(ask("compute 2.1").unwrap(), None);
        assert_eq!(ask("key-manager 1.7").unwrap_err().status().as_u16(), 406);
    }
}
