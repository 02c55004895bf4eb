//! Consumers: services that registered their use of a secret
//! (`{"service", "resource_type", "resource_id"}`, microversion 1.1) or of a
//! container (`{"name", "URL"}`, Barbican's older form). Both are the core's
//! [`ObjectConsumer`]; a container consumer is kept with the resource type
//! [`CONTAINER_CONSUMER`], its name as the service and its URL as the resource id.

use kcm_core::model::ObjectConsumer;
use kcm_core::service::ObjectInfo;
use serde::{Deserialize, Serialize};

use crate::error::BarbicanError;
use crate::timefmt;
use crate::wire::status_of;

/// The resource type a container consumer is kept under.
pub const CONTAINER_CONSUMER: &str = "container-consumer";

/// A secret consumer as a secret lists it, and as a request names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerView {
    /// The consuming service's type (`image`, `volume`, …).
    pub service: String,
    /// The kind of resource that uses the secret.
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: String,
}

impl ConsumerView {
    /// How a secret lists `c`.
    pub fn plain(c: &ObjectConsumer) -> Self {
        Self {
            service: c.service.clone(),
            resource_type: c.resource_type.clone(),
            resource_id: c.resource_id.clone(),
        }
    }

    /// The core's consumer, checked (every field present, and not a container
    /// consumer in disguise).
    pub fn into_consumer(self) -> Result<ObjectConsumer, BarbicanError> {
        if self.service.is_empty() || self.resource_type.is_empty() || self.resource_id.is_empty() {
            return Err(BarbicanError::bad_request(
                "A consumer needs a service, a resource_type and a resource_id",
            ));
        }
        if self.resource_type == CONTAINER_CONSUMER {
            return Err(BarbicanError::bad_request(format!(
                "resource_type {CONTAINER_CONSUMER:?} is reserved"
            )));
        }
        Ok(ObjectConsumer {
            service: self.service,
            resource_type: self.resource_type,
            resource_id: self.resource_id,
        })
    }
}

/// A container consumer as a request names it and a container lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerConsumerView {
    /// The consuming service's name.
    pub name: String,
    /// Where the consuming resource is.
    #[serde(rename = "URL")]
    pub url: String,
}

impl ContainerConsumerView {
    /// `c` if it is a container consumer.
    pub fn of(c: &ObjectConsumer) -> Option<Self> {
        (c.resource_type == CONTAINER_CONSUMER).then(|| Self {
            name: c.service.clone(),
            url: c.resource_id.clone(),
        })
    }

    /// The core's consumer, checked.
    pub fn into_consumer(self) -> Result<ObjectConsumer, BarbicanError> {
        if self.name.is_empty() || self.url.is_empty() {
            return Err(BarbicanError::bad_request(
                "A container consumer needs a name and a URL",
            ));
        }
        Ok(ObjectConsumer {
            service: self.name,
            resource_type: CONTAINER_CONSUMER.into(),
            resource_id: self.url,
        })
    }
}

/// A consumer in a consumers list: its fields with the times and status Barbican
/// lists (kcm keeps no times per consumer; the object's are shown).
#[derive(Debug, Serialize)]
pub struct ConsumerEntry<T> {
    created: String,
    updated: String,
    status: &'static str,
    #[serde(flatten)]
    consumer: T,
}

impl<T> ConsumerEntry<T> {
    /// `consumer` of `info`.
    pub fn new(info: &ObjectInfo, consumer: T) -> Self {
        Self {
            created: timefmt::write(info.created_at),
            updated: timefmt::write(info.updated_at),
            status: status_of(info.state),
            consumer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_consumers_round_trip_through_the_core() {
        let view = ContainerConsumerView {
            name: "lbaas".into(),
            url: "http://lb/listeners/1".into(),
        };
        let core = view.clone().into_consumer().unwrap();
        assert_eq!(core.resource_type, CONTAINER_CONSUMER);
        assert_eq!(ContainerConsumerView::of(&core), Some(view));
        let json = serde_json::to_value(ContainerConsumerView::of(&core).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "lbaas", "URL": "http://lb/listeners/1"})
        );
    }

    #[test]
    fn secret_consumers_are_checked() {
        let ok = ConsumerView {
            service: "image".into(),
            resource_type: "image".into(),
            resource_id: "i1".into(),
        };
        assert!(ok.clone().into_consumer().is_ok());
        let empty = ConsumerView {
            resource_id: String::new(),
            ..ok.clone()
        };
        assert_eq!(empty.into_consumer().unwrap_err().status().as_u16(), 400);
        let reserved = ConsumerView {
            resource_type: CONTAINER_CONSUMER.into(),
            ..ok
        };
        assert!(reserved.into_consumer().is_err());
    }
}
