//! Version discovery: `GET /` (300 Multiple Choices, every version) and `GET /v1`
//! (the one version), in the two shapes Barbican answers with — the stable shape for
//! clients that name no microversion (or 1.0), and the microversion shape (status
//! `CURRENT`, `min_version`, `max_version`) for clients that ask for one, which is
//! how python-barbicanclient finds out that 1.1 is served.
//!
//! These are public documents: not authenticated, not audited.

use serde_json::{json, Value};

use crate::microversion::Microversion;
use crate::refs::Refs;

/// The version's entry for a client asking for `asked` (`None`: no header).
fn version_entry(refs: &Refs, asked: Option<Microversion>) -> Value {
    let links = json!([
        {"rel": "self", "href": format!("{}/v1/", refs.base())},
        {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
    ]);
    match asked {
        None | Some(Microversion::V1_0) => json!({
            "id": "v1",
            "status": "stable",
            "links": links,
            "media-types": [{
                "base": "application/json",
                "type": "application/vnd.openstack.key-manager-v1+json",
            }],
        }),
        Some(_) => json!({
            "id": "v1",
            "status": "CURRENT",
            "min_version": Microversion::V1_0.as_str(),
            "max_version": Microversion::LATEST.as_str(),
            "links": links,
        }),
    }
}

/// The body of `GET /` (sent with 300).
pub fn versions(refs: &Refs, asked: Option<Microversion>) -> Value {
    let entry = version_entry(refs, asked);
    match asked {
        None | Some(Microversion::V1_0) => json!({"versions": {"values": [entry]}}),
        Some(_) => json!({"versions": [entry]}),
    }
}

/// The body of `GET /v1`.
pub fn version(refs: &Refs, asked: Option<Microversion>) -> Value {
    json!({"version": version_entry(refs, asked)})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stable_shape_for_clients_without_microversions() {
        let refs = Refs::at("http://h:9311");
        let doc = versions(&refs, None);
        let v = &doc["versions"]["values"][0];
        assert_eq!(v["id"], "v1");
        assert_eq!(v["status"], "stable");
        assert_eq!(v["links"][0]["href"], "http://h:9311/v1/");
        assert_eq!(version(&refs, None)["version"]["status"], "stable");
    }

    #[test]
    fn the_microversion_shape_when_asked() {
        let refs = Refs::at("http://h:9311");
        let doc = versions(&refs, Some(Microversion::V1_1));
        let v = &doc["versions"][0];
        assert_eq!(
            (&v["status"], &v["min_version"], &v["max_version"]),
            (&json!("CURRENT"), &json!("1.0"), &json!("1.2"))
        );
    }
}
