//! The NIST SP 800-57 key lifecycle, shared by every key level (root, system, service).
//!
//! Two tables live here as data, so that they are read (and tested) in one place:
//! which [`KeyUse`]s each [`KeyState`] allows, and which [`Transition`]s lead from
//! each state to which. Everything in the core that asks "may this key do X" asks
//! [`KeyState::allows`]; a stored key's state is a [`Lifecycle`], which changes only
//! through [`Lifecycle::apply`], so no state is ever written that the transition
//! table does not lead to.

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
    /// Marked compromised by an operator: decrypt, verify and unwrap only, so data
    /// can be recovered; flagged in every audit record. Never usable again.
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

/// What a key itself is used for by a request (or by a child key): the column of
/// the allowed-uses table. A request's [`crate::authz::Op`] names its use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyUse {
    /// Protect new data: Encrypt, GenerateDataKey, the destination side of ReEncrypt.
    Encrypt,
    /// Read protected data: Decrypt, the source side of ReEncrypt, key agreement.
    Decrypt,
    /// As a parent key: wrap a new or rotated child key.
    Wrap,
    /// As a parent key: unwrap a child key so it can be used.
    Unwrap,
    /// Produce a signature or MAC.
    Sign,
    /// Check a signature or MAC; read a public key.
    Verify,
    /// Create a new key version.
    Rotate,
    /// Change description, tags, aliases, grants, policy or the rotation schedule.
    UpdateMetadata,
    /// Read metadata.
    Describe,
}

/// Every use (used by exhaustive tests).
pub const ALL_USES: [KeyUse; 9] = [
    KeyUse::Encrypt,
    KeyUse::Decrypt,
    KeyUse::Wrap,
    KeyUse::Unwrap,
    KeyUse::Sign,
    KeyUse::Verify,
    KeyUse::Rotate,
    KeyUse::UpdateMetadata,
    KeyUse::Describe,
];

use KeyState as S;
use KeyUse as U;

/// The allowed-uses table: the single source of truth.
const ALLOWED: [(KeyState, &[KeyUse]); 8] = [
    (S::PreActive, &[U::UpdateMetadata, U::Describe]),
    (
        S::Active,
        &[
            U::Encrypt,
            U::Decrypt,
            U::Wrap,
            U::Unwrap,
            U::Sign,
            U::Verify,
            U::Rotate,
            U::UpdateMetadata,
            U::Describe,
        ],
    ),
    (
        S::Suspended,
        &[
            U::Decrypt,
            U::Unwrap,
            U::Verify,
            U::UpdateMetadata,
            U::Describe,
        ],
    ),
    (S::Disabled, &[U::UpdateMetadata, U::Describe]),
    (
        S::Compromised,
        &[
            U::Decrypt,
            U::Unwrap,
            U::Verify,
            U::UpdateMetadata,
            U::Describe,
        ],
    ),
    (S::PendingDeletion, &[U::Describe]),
    (S::Destroyed, &[U::Describe]),
    (S::DestroyedCompromised, &[U::Describe]),
];

/// A change of lifecycle state requested by an operator, a request or the scheduler.
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
    /// Any state a key can be found in → compromised (NIST SP 800-57 §5.3.7); a
    /// destroyed key found compromised afterwards becomes destroyed-compromised.
    MarkCompromised,
    /// A live, uncompromised key → pending deletion. A compromised key is not
    /// scheduled: that would drop its mark, and cancelling would make it usable.
    ScheduleDeletion,
    /// Pending deletion → disabled (as AWS KMS does).
    CancelDeletion,
    /// Pending deletion → destroyed, when the waiting period ends; compromised →
    /// destroyed-compromised, when an operator destroys a compromised key.
    Destroy,
    /// A key holding imported material goes back to waiting for it (AWS
    /// DeleteImportedKeyMaterial). Not from compromised: re-importing would revive it.
    EraseImportedMaterial,
    /// A system key version that nothing is wrapped under any more (superseded by a
    /// rotation, or its system unlinked) is erased at once.
    Retire,
}

/// Every transition (used by exhaustive tests).
pub const ALL_TRANSITIONS: [Transition; 10] = [
    Transition::Activate,
    Transition::Enable,
    Transition::Disable,
    Transition::Suspend,
    Transition::MarkCompromised,
    Transition::ScheduleDeletion,
    Transition::CancelDeletion,
    Transition::Destroy,
    Transition::EraseImportedMaterial,
    Transition::Retire,
];

use Transition as T;

/// The transition table: `(from, transition, to)`. Anything absent is refused.
#[rustfmt::skip]
const TRANSITIONS: &[(KeyState, Transition, KeyState)] = &[
    (S::PreActive,       T::Activate,              S::Active),
    (S::Active,          T::Enable,                S::Active),
    (S::Disabled,        T::Enable,                S::Active),
    (S::Suspended,       T::Enable,                S::Active),
    (S::Active,          T::Disable,               S::Disabled),
    (S::Disabled,        T::Disable,               S::Disabled),
    (S::Suspended,       T::Disable,               S::Disabled),
    (S::Active,          T::Suspend,               S::Suspended),
    (S::Suspended,       T::Suspend,               S::Suspended),
    (S::PreActive,       T::MarkCompromised,       S::Compromised),
    (S::Active,          T::MarkCompromised,       S::Compromised),
    (S::Suspended,       T::MarkCompromised,       S::Compromised),
    (S::Disabled,        T::MarkCompromised,       S::Compromised),
    (S::Compromised,     T::MarkCompromised,       S::Compromised),
    (S::PendingDeletion, T::MarkCompromised,       S::Compromised),
    (S::Destroyed,       T::MarkCompromised,       S::DestroyedCompromised),
    (S::DestroyedCompromised, T::MarkCompromised,  S::DestroyedCompromised),
    (S::PreActive,       T::ScheduleDeletion,      S::PendingDeletion),
    (S::Active,          T::ScheduleDeletion,      S::PendingDeletion),
    (S::Suspended,       T::ScheduleDeletion,      S::PendingDeletion),
    (S::Disabled,        T::ScheduleDeletion,      S::PendingDeletion),
    (S::PendingDeletion, T::CancelDeletion,        S::Disabled),
    (S::PendingDeletion, T::Destroy,               S::Destroyed),
    (S::Compromised,     T::Destroy,               S::DestroyedCompromised),
    (S::PreActive,       T::EraseImportedMaterial, S::PreActive),
    (S::Active,          T::EraseImportedMaterial, S::PreActive),
    (S::Suspended,       T::EraseImportedMaterial, S::PreActive),
    (S::Disabled,        T::EraseImportedMaterial, S::PreActive),
    (S::PreActive,       T::Retire,                S::Destroyed),
    (S::Active,          T::Retire,                S::Destroyed),
    (S::Suspended,       T::Retire,                S::Destroyed),
    (S::Disabled,        T::Retire,                S::Destroyed),
    (S::Compromised,     T::Retire,                S::DestroyedCompromised),
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
    /// Whether a key in this state may itself be used for `use_`.
    pub fn allows(self, use_: KeyUse) -> bool {
        ALLOWED
            .iter()
            .find(|(state, _)| *state == self)
            .is_some_and(|(_, uses)| uses.contains(&use_))
    }

    /// The state after `transition`; refused if the table has no such edge.
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

/// The lifecycle state a stored key record holds. It is born [`Lifecycle::active`]
/// or [`Lifecycle::pending_material`] and changes only through [`Lifecycle::apply`],
/// which follows the transition table; the one other way in,
/// [`Lifecycle::stored`], is for reading back what a store holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lifecycle(KeyState);

impl Lifecycle {
    /// A key whose material exists from the start.
    pub const fn active() -> Self {
        Self(S::Active)
    }

    /// A key that waits for material to be imported (AWS: PendingImport).
    pub const fn pending_material() -> Self {
        Self(S::PreActive)
    }

    /// The lifecycle a store holds for a record: for store backends decoding a row
    /// (and tests setting up one), never for changing a state.
    pub const fn stored(state: KeyState) -> Self {
        Self(state)
    }

    /// The current state.
    pub const fn state(self) -> KeyState {
        self.0
    }

    /// Applies `transition` if the table allows it from the current state, and
    /// returns the new state; otherwise changes nothing.
    pub fn apply(&mut self, transition: Transition) -> Result<KeyState, IllegalTransition> {
        self.0 = self.0.transition(transition)?;
        Ok(self.0)
    }
}

impl KeyUse {
    /// What an ancestor key (system key, root key) must allow for a descendant to do `self`.
    ///
    /// This is what makes the kill switch work: a suspended root allows `Unwrap` but
    /// not `Wrap`, so every key below it becomes decrypt-only.
    pub fn required_of_ancestors(self) -> KeyUse {
        match self {
            U::Decrypt | U::Verify | U::Unwrap | U::Describe => U::Unwrap,
            U::Encrypt | U::Sign | U::Wrap | U::Rotate => U::Wrap,
            U::UpdateMetadata => U::Describe,
        }
    }
}

/// Whether `use_` of a key is allowed given its own state and its ancestors' states
/// (nearest first). A key is usable only if every key above it is usable.
pub fn chain_allows(own: KeyState, ancestors: &[KeyState], use_: KeyUse) -> bool {
    let needed = use_.required_of_ancestors();
    own.allows(use_) && ancestors.iter().all(|state| state.allows(needed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expected table, written out cell by cell independently of `ALLOWED`:
    /// rows are states, columns follow `ALL_USES`.
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
    fn every_state_times_every_use() {
        for (state, row) in EXPECTED {
            for (use_, expected) in ALL_USES.iter().zip(row) {
                assert_eq!(state.allows(*use_), expected, "{state} × {use_:?}");
            }
        }
    }

    /// The transition table written out as a match, independently of `TRANSITIONS`.
    fn expected_transition(from: KeyState, t: Transition) -> Option<KeyState> {
        use Transition as T;
        match (from, t) {
            (S::PreActive, T::Activate) => Some(S::Active),
            (S::Active | S::Disabled | S::Suspended, T::Enable) => Some(S::Active),
            (S::Active | S::Disabled | S::Suspended, T::Disable) => Some(S::Disabled),
            (S::Active | S::Suspended, T::Suspend) => Some(S::Suspended),
            (
                S::PreActive
                | S::Active
                | S::Suspended
                | S::Disabled
                | S::Compromised
                | S::PendingDeletion,
                T::MarkCompromised,
            ) => Some(S::Compromised),
            (S::Destroyed | S::DestroyedCompromised, T::MarkCompromised) => {
                Some(S::DestroyedCompromised)
            }
            (S::PreActive | S::Active | S::Suspended | S::Disabled, T::ScheduleDeletion) => {
                Some(S::PendingDeletion)
            }
            (S::PendingDeletion, T::CancelDeletion) => Some(S::Disabled),
            (S::PendingDeletion, T::Destroy) => Some(S::Destroyed),
            (S::Compromised, T::Destroy) => Some(S::DestroyedCompromised),
            (S::PreActive | S::Active | S::Suspended | S::Disabled, T::EraseImportedMaterial) => {
                Some(S::PreActive)
            }
            (S::PreActive | S::Active | S::Suspended | S::Disabled, T::Retire) => {
                Some(S::Destroyed)
            }
            (S::Compromised, T::Retire) => Some(S::DestroyedCompromised),
            _ => None,
        }
    }

    #[test]
    fn every_state_times_every_transition() {
        for from in ALL_STATES {
            for t in ALL_TRANSITIONS {
                let expected = expected_transition(from, t);
                assert_eq!(from.transition(t).ok(), expected, "{from} -{t:?}->");
                // `apply` follows the table, and a refused transition changes nothing.
                let mut lifecycle = Lifecycle::stored(from);
                match (lifecycle.apply(t), expected) {
                    (Ok(to), Some(want)) => assert_eq!((to, lifecycle.state()), (want, want)),
                    (Err(e), None) => {
                        assert_eq!((e.from, e.transition), (from, t));
                        assert_eq!(lifecycle.state(), from, "{from} -{t:?}-> changed the state");
                    }
                    (got, want) => panic!("{from} -{t:?}->: got {got:?}, expected {want:?}"),
                }
            }
        }
    }

    #[test]
    fn a_compromised_key_never_becomes_usable_or_loses_its_mark() {
        // From compromised, every reachable state is compromised or destroyed-compromised:
        // nothing leads back to protecting data, and nothing erases the flag.
        let mut seen = vec![S::Compromised];
        let mut i = 0;
        while i < seen.len() {
            for t in ALL_TRANSITIONS {
                if let Ok(to) = seen[i].transition(t) {
                    if !seen.contains(&to) {
                        seen.push(to);
                    }
                }
            }
            i += 1;
        }
        assert_eq!(seen, vec![S::Compromised, S::DestroyedCompromised]);
        for state in seen {
            assert!(state.is_compromised());
            assert!(!state.allows(KeyUse::Encrypt) && !state.allows(KeyUse::Sign));
        }
    }

    #[test]
    fn new_keys_start_active_or_waiting_for_material() {
        assert_eq!(Lifecycle::active().state(), S::Active);
        assert_eq!(Lifecycle::pending_material().state(), S::PreActive);
    }

    #[test]
    fn chain_is_only_as_usable_as_its_weakest_ancestor() {
        for own in ALL_STATES {
            for parent in ALL_STATES {
                for root in ALL_STATES {
                    for use_ in ALL_USES {
                        let needed = use_.required_of_ancestors();
                        let expected =
                            own.allows(use_) && parent.allows(needed) && root.allows(needed);
                        assert_eq!(chain_allows(own, &[parent, root], use_), expected);
                    }
                }
            }
        }
        // The kill switch in words: a disabled root stops everything, a suspended root
        // leaves decrypt only.
        assert!(!chain_allows(
            S::Active,
            &[S::Active, S::Disabled],
            U::Decrypt
        ));
        assert!(!chain_allows(
            S::Active,
            &[S::Active, S::Suspended],
            U::Encrypt
        ));
        assert!(chain_allows(
            S::Active,
            &[S::Active, S::Suspended],
            U::Decrypt
        ));
        assert!(chain_allows(S::Active, &[S::Active, S::Active], U::Encrypt));
    }

    #[test]
    fn names_round_trip() {
        for s in ALL_STATES {
            assert_eq!(KeyState::parse(s.as_str()), Some(s));
        }
    }
}
