//! The NIST SP 800-57 key lifecycle, shared by every key level (root, system, service).
//!
//! Two tables live here as data, so that they are read (and tested) in one place:
//! which [`Operation`]s each [`KeyState`] allows, and which [`Transition`]s lead from
//! each state to which. Everything in the core that asks "may this key do X" asks
//! [`KeyState::allows`]; everything that changes a state goes through
//! [`KeyState::transition`].

use serde::{Deserialize, Serialize};

/// The lifecycle state of a key at any level of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyState {
    /// Created but not usable yet (for example waiting for imported material).
    PreActive,
    /// Usable for everything its kind allows.
    Active,
    /// Decrypt, verify and unwrap only: existing data stays readable, nothing new is protected.
    Suspended,
    /// Nothing; reversible with enable.
    Disabled,
    /// Decrypt and verify only; flagged in every response.
    Compromised,
    /// Nothing; cancellable until the waiting period ends.
    PendingDeletion,
    /// Material erased; metadata kept for audit.
    Destroyed,
    /// Material of a compromised key erased; metadata kept for audit.
    DestroyedCompromised,
}

/// Every state, in declaration order (used by exhaustive tests and docs).
pub const ALL_STATES: [KeyState; 8] = [
    KeyState::PreActive,
    KeyState::Active,
    KeyState::Suspended,
    KeyState::Disabled,
    KeyState::Compromised,
    KeyState::PendingDeletion,
    KeyState::Destroyed,
    KeyState::DestroyedCompromised,
];

/// What a caller (or a child key) wants to do with a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Protect new data: Encrypt, GenerateDataKey, the destination side of ReEncrypt.
    Encrypt,
    /// Read protected data: Decrypt, the source side of ReEncrypt.
    Decrypt,
    /// As a parent key: wrap a new or rotated child key.
    Wrap,
    /// As a parent key: unwrap a child key so it can be used.
    Unwrap,
    /// Produce a signature or MAC.
    Sign,
    /// Check a signature or MAC.
    Verify,
    /// Create a new key version.
    Rotate,
    /// Change description, tags, aliases or the rotation schedule.
    UpdateMetadata,
    /// Read metadata.
    Describe,
}

/// Every operation (used by exhaustive tests).
pub const ALL_OPERATIONS: [Operation; 9] = [
    Operation::Encrypt,
    Operation::Decrypt,
    Operation::Wrap,
    Operation::Unwrap,
    Operation::Sign,
    Operation::Verify,
    Operation::Rotate,
    Operation::UpdateMetadata,
    Operation::Describe,
];

use KeyState as S;
use Operation as O;

/// The allowed-operations table: the single source of truth.
const ALLOWED: [(KeyState, &[Operation]); 8] = [
    (S::PreActive, &[O::UpdateMetadata, O::Describe]),
    (
        S::Active,
        &[
            O::Encrypt,
            O::Decrypt,
            O::Wrap,
            O::Unwrap,
            O::Sign,
            O::Verify,
            O::Rotate,
            O::UpdateMetadata,
            O::Describe,
        ],
    ),
    (
        S::Suspended,
        &[
            O::Decrypt,
            O::Unwrap,
            O::Verify,
            O::UpdateMetadata,
            O::Describe,
        ],
    ),
    (S::Disabled, &[O::UpdateMetadata, O::Describe]),
    (
        S::Compromised,
        &[
            O::Decrypt,
            O::Unwrap,
            O::Verify,
            O::UpdateMetadata,
            O::Describe,
        ],
    ),
    (S::PendingDeletion, &[O::Describe]),
    (S::Destroyed, &[O::Describe]),
    (S::DestroyedCompromised, &[O::Describe]),
];

/// A change of lifecycle state requested by an operator or the scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transition {
    /// Pre-active → active (material present).
    Activate,
    /// Disabled or suspended → active.
    Enable,
    /// Active or suspended → disabled.
    Disable,
    /// Active → suspended (decrypt-only).
    Suspend,
    /// Any live state → compromised.
    MarkCompromised,
    /// Any live state → pending deletion.
    ScheduleDeletion,
    /// Pending deletion → disabled (as AWS KMS does).
    CancelDeletion,
    /// Pending deletion → destroyed (or destroyed-compromised).
    Destroy,
}

/// Every transition (used by exhaustive tests).
pub const ALL_TRANSITIONS: [Transition; 8] = [
    Transition::Activate,
    Transition::Enable,
    Transition::Disable,
    Transition::Suspend,
    Transition::MarkCompromised,
    Transition::ScheduleDeletion,
    Transition::CancelDeletion,
    Transition::Destroy,
];

/// The transition table: `(from, transition, to)`. Anything absent is refused.
const TRANSITIONS: &[(KeyState, Transition, KeyState)] = &[
    (S::PreActive, Transition::Activate, S::Active),
    (S::Active, Transition::Enable, S::Active),
    (S::Disabled, Transition::Enable, S::Active),
    (S::Suspended, Transition::Enable, S::Active),
    (S::Active, Transition::Disable, S::Disabled),
    (S::Disabled, Transition::Disable, S::Disabled),
    (S::Suspended, Transition::Disable, S::Disabled),
    (S::Active, Transition::Suspend, S::Suspended),
    (S::Suspended, Transition::Suspend, S::Suspended),
    (S::Active, Transition::MarkCompromised, S::Compromised),
    (S::Suspended, Transition::MarkCompromised, S::Compromised),
    (S::Disabled, Transition::MarkCompromised, S::Compromised),
    (S::Compromised, Transition::MarkCompromised, S::Compromised),
    (
        S::PreActive,
        Transition::ScheduleDeletion,
        S::PendingDeletion,
    ),
    (S::Active, Transition::ScheduleDeletion, S::PendingDeletion),
    (
        S::Suspended,
        Transition::ScheduleDeletion,
        S::PendingDeletion,
    ),
    (
        S::Disabled,
        Transition::ScheduleDeletion,
        S::PendingDeletion,
    ),
    (
        S::Compromised,
        Transition::ScheduleDeletion,
        S::PendingDeletion,
    ),
    (S::PendingDeletion, Transition::CancelDeletion, S::Disabled),
    (S::PendingDeletion, Transition::Destroy, S::Destroyed),
];

/// A transition the current state does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a key in state {from} cannot {transition:?}")]
pub struct IllegalTransition {
    /// The state the key was in.
    pub from: KeyState,
    /// What was asked.
    pub transition: Transition,
}

impl KeyState {
    /// Whether a key in this state may perform `op` itself.
    pub fn allows(self, op: Operation) -> bool {
        ALLOWED
            .iter()
            .find(|(state, _)| *state == self)
            .is_some_and(|(_, ops)| ops.contains(&op))
    }

    /// The state after `transition`, consuming the old one; refused if the table has no such edge.
    pub fn transition(self, transition: Transition) -> Result<KeyState, IllegalTransition> {
        TRANSITIONS
            .iter()
            .find(|(from, t, _)| *from == self && *t == transition)
            .map(|(_, _, to)| *to)
            .ok_or(IllegalTransition {
                from: self,
                transition,
            })
    }

    /// Stable lower-case name, as stored and shown (`pending-deletion`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            S::PreActive => "pre-active",
            S::Active => "active",
            S::Suspended => "suspended",
            S::Disabled => "disabled",
            S::Compromised => "compromised",
            S::PendingDeletion => "pending-deletion",
            S::Destroyed => "destroyed",
            S::DestroyedCompromised => "destroyed-compromised",
        }
    }

    /// Parses [`KeyState::as_str`].
    pub fn parse(s: &str) -> Option<KeyState> {
        ALL_STATES.into_iter().find(|state| state.as_str() == s)
    }

    /// True once the material has been erased.
    pub fn is_destroyed(self) -> bool {
        matches!(self, S::Destroyed | S::DestroyedCompromised)
    }

    /// True for keys flagged compromised (flagged in every audit record).
    pub fn is_compromised(self) -> bool {
        matches!(self, S::Compromised | S::DestroyedCompromised)
    }
}

impl std::fmt::Display for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Operation {
    /// What an ancestor key (system key, root key) must allow for a descendant to do `self`.
    ///
    /// This is what makes the kill switch work: a suspended root allows `Unwrap` but
    /// not `Wrap`, so every key below it becomes decrypt-only.
    pub fn required_of_ancestors(self) -> Operation {
        match self {
            O::Decrypt | O::Verify | O::Unwrap | O::Describe => O::Unwrap,
            O::Encrypt | O::Sign | O::Wrap | O::Rotate => O::Wrap,
            O::UpdateMetadata => O::Describe,
        }
    }
}

/// Whether `op` on a key is allowed given its own state and its ancestors' states
/// (nearest first). A key is usable only if every key above it is usable.
pub fn chain_allows(own: KeyState, ancestors: &[KeyState], op: Operation) -> bool {
    let needed = op.required_of_ancestors();
    own.allows(op) && ancestors.iter().all(|state| state.allows(needed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expected table, written out cell by cell independently of `ALLOWED`:
    /// rows are states, columns follow `ALL_OPERATIONS`.
    #[rustfmt::skip]
    const EXPECTED: [(KeyState, [bool; 9]); 8] = [
        //                         Enc    Dec    Wrap   Unwrap Sign   Verify Rotate Meta   Describe
        (S::PreActive,            [false, false, false, false, false, false, false, true,  true]),
        (S::Active,               [true,  true,  true,  true,  true,  true,  true,  true,  true]),
        (S::Suspended,            [false, true,  false, true,  false, true,  false, true,  true]),
        (S::Disabled,             [false, false, false, false, false, false, false, true,  true]),
        (S::Compromised,          [false, true,  false, true,  false, true,  false, true,  true]),
        (S::PendingDeletion,      [false, false, false, false, false, false, false, false, true]),
        (S::Destroyed,            [false, false, false, false, false, false, false, false, true]),
        (S::DestroyedCompromised, [false, false, false, false, false, false, false, false, true]),
    ];

    #[test]
    fn every_state_times_every_operation() {
        for (state, row) in EXPECTED {
            for (op, expected) in ALL_OPERATIONS.iter().zip(row) {
                assert_eq!(state.allows(*op), expected, "{state} × {op:?}");
            }
        }
    }

    #[test]
    fn every_state_times_every_transition() {
        use Transition as T;
        for from in ALL_STATES {
            for t in ALL_TRANSITIONS {
                let expected = match (from, t) {
                    (S::PreActive, T::Activate) => Some(S::Active),
                    (S::Active | S::Disabled | S::Suspended, T::Enable) => Some(S::Active),
                    (S::Active | S::Disabled | S::Suspended, T::Disable) => Some(S::Disabled),
                    (S::Active | S::Suspended, T::Suspend) => Some(S::Suspended),
                    (
                        S::Active | S::Suspended | S::Disabled | S::Compromised,
                        T::MarkCompromised,
                    ) => Some(S::Compromised),
                    (
                        S::PreActive | S::Active | S::Suspended | S::Disabled | S::Compromised,
                        T::ScheduleDeletion,
                    ) => Some(S::PendingDeletion),
                    (S::PendingDeletion, T::CancelDeletion) => Some(S::Disabled),
                    (S::PendingDeletion, T::Destroy) => Some(S::Destroyed),
                    _ => None,
                };
                assert_eq!(from.transition(t).ok(), expected, "{from} -{t:?}->");
            }
        }
    }

    #[test]
    fn chain_is_only_as_usable_as_its_weakest_ancestor() {
        for own in ALL_STATES {
            for parent in ALL_STATES {
                for root in ALL_STATES {
                    for op in ALL_OPERATIONS {
                        let needed = op.required_of_ancestors();
                        let expected =
                            own.allows(op) && parent.allows(needed) && root.allows(needed);
                        assert_eq!(chain_allows(own, &[parent, root], op), expected);
                    }
                }
            }
        }
        // The kill switch in words: a disabled root stops everything, a suspended root
        // leaves decrypt only.
        assert!(!chain_allows(
            S::Active,
            &[S::Active, S::Disabled],
            O::Decrypt
        ));
        assert!(!chain_allows(
            S::Active,
            &[S::Active, S::Suspended],
            O::Encrypt
        ));
        assert!(chain_allows(
            S::Active,
            &[S::Active, S::Suspended],
            O::Decrypt
        ));
        assert!(chain_allows(S::Active, &[S::Active, S::Active], O::Encrypt));
    }

    #[test]
    fn names_round_trip() {
        for s in ALL_STATES {
            assert_eq!(KeyState::parse(s.as_str()), Some(s));
        }
    }
}
