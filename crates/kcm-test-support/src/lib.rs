//! # kcm-test-support
//!
//! What kcm's tests share, so each behaviour is tested once and every
//! implementation is held to it:
//!
//! - [`store_conformance`]: the suite every [`Store`](kcm_core::store::Store)
//!   backend runs (SQLite, PostgreSQL).
//! - [`keystore_conformance`]: the suite every
//!   [`KeystoreProvider`](kcm_core::keystore::KeystoreProvider) runs (software,
//!   PKCS#11, plugin, XKS).
//! - [`service`]: the one way a test builds a [`Service`](kcm_core::service::Service)
//!   over a temporary SQLite store and software keystore, bootstrapped.
//! - [`softhsm`], [`xks_proxy`], [`process`]: SoftHSM2 tokens, the project's test
//!   XKS proxy, and child processes that must not outlive a test binary.
//!
//! ## How it fits into the build
//!
//! This is a normal library crate that is only ever a **dev-dependency**. It depends
//! on kcm-core (and, for the Service fixture, on kcm-store-sqlite and
//! kcm-keystore-software), while those crates' own tests depend on it. Cargo allows
//! that cycle because it runs through dev-dependencies: a crate's integration tests
//! (`tests/*.rs`) are separate crates linked against the one build of the library
//! that this crate was built against too, so `kcm_core::store::Store` here and there
//! is the same trait. The rule that follows: use this crate from `tests/`, not from a
//! crate's own unit tests (`#[cfg(test)]` in `src/`). In a unit-test build the crate
//! under test is compiled a second time, with its test code, and its types differ
//! from the ones this crate sees. That is why the suites live here and not behind a
//! cargo feature of kcm-core: the test code is no longer compiled into kcm-core, and
//! no crate needs a feature of kcm-core to test itself.
//!
//! Nothing here may be used outside tests: it panics on failure, writes temporary
//! files and starts processes.

pub mod keystore_conformance;
pub mod process;
pub mod service;
pub mod softhsm;
pub mod store_conformance;
pub mod xks_proxy;
