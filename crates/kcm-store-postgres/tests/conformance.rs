//! The shared store conformance suite, run against a fresh PostgreSQL database per
//! check (see `support` for where the server comes from).

mod support;

use support::make_store;

kcm_test_support::store_conformance_tests!(make_store);
