//! The shared keystore conformance suite, run against a software keystore in a
//! fresh data directory per check.

use std::sync::Arc;

use kcm_core::keystore::Capabilities;
use kcm_keystore_software::{MasterKeySource, SoftwareKeystore};
use kcm_test_support::keystore_conformance::{Destroy, Disable, Expected, Subject};

async fn subject() -> Subject {
    let dir = tempfile::tempdir().expect("temporary directory");
    let keystore = SoftwareKeystore::open(dir.path(), MasterKeySource::default_file(dir.path()))
        .expect("open the software keystore");
    let expected = Expected {
        kind: "software",
        capabilities: Capabilities {
            generate: true,
            import: true,
            reference: false,
        },
        // The sealed root key is the handle itself; destroy only empties the cache.
        destroy: Destroy::HandleCarriesKey,
        disable: Disable::KcmOnly,
    };
    Subject::new(Arc::new(keystore), expected, dir)
}

kcm_test_support::keystore_conformance_tests!(subject);
