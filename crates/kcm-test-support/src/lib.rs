//! # kcm-test-support
//!
//! What kcm's tests share. A normal library crate, only ever a dev-dependency.

// The suite was moved here from kcm-core unchanged; these let its `crate::` paths
// resolve until they are rewritten to `kcm_core::`.
use kcm_core::{audit, auth, lifecycle, model, policy, store};

pub mod store_conformance;
