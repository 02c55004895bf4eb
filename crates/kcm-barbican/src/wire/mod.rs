//! Barbican's JSON: how requests become core values and core values become
//! answers, one module per resource. Field names and shapes follow Barbican v1;
//! times are written as Barbican writes them ([`crate::timefmt`]).

pub mod acl;
pub mod consumer;
pub mod container;
pub mod order;
pub mod secret;

pub use consumer::ConsumerView;

use kcm_core::lifecycle::KeyState;

/// Barbican's `status` of an object: `ACTIVE` for one that can be used or waits
/// for its payload (Barbican's secrets are `ACTIVE` from creation), `ERROR` for one
/// the lifecycle has taken out of use.
pub fn status_of(state: KeyState) -> &'static str {
    match state {
        KeyState::PreActive | KeyState::Active => "ACTIVE",
        KeyState::Suspended
        | KeyState::Disabled
        | KeyState::Compromised
        | KeyState::PendingDeletion
        | KeyState::Destroyed
        | KeyState::DestroyedCompromised => "ERROR",
    }
}
