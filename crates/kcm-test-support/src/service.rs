//! The one way tests build a [`Service`]: over a real SQLite store and the real
//! software keystore in a data directory of their own, bootstrapped like a first
//! start, with the default tenant's tenant-admin and the operator ready to call.
//!
//! [`ServiceFixture::new`] is the common case. Tests that need more build a
//! [`DataDir`] first: a given directory and master key file (a backup kept apart
//! from its data), a keystore wrapped in a test double
//! ([`DataDir::service_with`]), or a service left un-bootstrapped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kcm_core::authz::Caller;
use kcm_core::config::ServiceConfig;
use kcm_core::keystore::KeystoreProvider;
use kcm_core::service::Service;
use kcm_keystore_software::{MasterKeySource, SoftwareKeystore};
use kcm_store_sqlite::SqliteStore;
use tempfile::TempDir;

/// The keystores a [`Service`] is given, by name.
pub type Keystores = HashMap<String, Arc<dyn KeystoreProvider>>;

/// The name the software keystore has in every fixture (the default keystore).
pub const KEYSTORE_NAME: &str = "software";

/// The keystore map of one keystore, `keystore`, named [`KEYSTORE_NAME`].
pub fn keystores(keystore: Arc<dyn KeystoreProvider>) -> Keystores {
    HashMap::from([(KEYSTORE_NAME.to_owned(), keystore)])
}

/// A data directory: the SQLite store `kcm.db` and a software keystore whose master
/// key file is `master.key` inside it (or wherever the test keeps it).
pub struct DataDir {
    /// The temporary directory this was made in, removed when dropped (`None` for
    /// a directory the test gave).
    _temp: Option<TempDir>,
    /// The directory.
    pub path: PathBuf,
    /// The store.
    pub store: Arc<SqliteStore>,
    /// The software keystore.
    pub keystore: Arc<SoftwareKeystore>,
}

impl DataDir {
    /// A fresh data directory in a new temporary directory.
    pub fn new() -> Self {
        let temp = tempfile::tempdir().expect("temporary directory");
        let path = temp.path().to_owned();
        Self {
            _temp: Some(temp),
            ..Self::open(&path, &path.join("master.key"))
        }
    }

    /// The data directory `path` (which must exist), with the master key file
    /// `master_key` (created if missing). The test owns the directory.
    pub fn open(path: &Path, master_key: &Path) -> Self {
        let store = SqliteStore::open(&path.join("kcm.db")).expect("open the SQLite store");
        let keystore = SoftwareKeystore::open(path, MasterKeySource::File(master_key.to_owned()))
            .expect("open the software keystore");
        Self {
            _temp: None,
            path: path.to_owned(),
            store: Arc::new(store),
            keystore: Arc::new(keystore),
        }
    }

    /// The keystore map of this directory's software keystore.
    pub fn keystores(&self) -> Keystores {
        keystores(self.keystore.clone())
    }

    /// A service over this directory's store and software keystore.
    pub fn service(&self, config: ServiceConfig) -> Service {
        self.service_with(self.keystore.clone(), config)
    }

    /// A service over this directory's store with `keystore` (e.g. a test double
    /// around [`DataDir::keystore`]) as its one keystore.
    pub fn service_with(
        &self,
        keystore: Arc<dyn KeystoreProvider>,
        config: ServiceConfig,
    ) -> Service {
        Service::new(self.store.clone(), keystores(keystore), config).expect("Service::new")
    }
}

impl Default for DataDir {
    fn default() -> Self {
        Self::new()
    }
}

/// An access key's id and secret, as the bootstrap handed them out.
#[derive(Clone, Debug)]
pub struct AccessKey {
    /// The access key id.
    pub id: String,
    /// The secret (test credentials only).
    pub secret: String,
}

impl AccessKey {
    /// `<id>:<secret>`, the bearer token of the native API.
    pub fn bearer(&self) -> String {
        format!("{}:{}", self.id, self.secret)
    }
}

/// A bootstrapped [`Service`] and what a test needs to call it.
pub struct ServiceFixture {
    /// Where its store and keystore live.
    pub data: DataDir,
    /// The store (the data directory's).
    pub store: Arc<SqliteStore>,
    /// The software keystore (the data directory's).
    pub keystore: Arc<SoftwareKeystore>,
    /// The service.
    pub service: Arc<Service>,
    /// The default tenant's tenant-admin.
    pub admin: Caller,
    /// The operator (system-admin).
    pub operator: Caller,
    /// The tenant-admin's access key.
    pub admin_key: AccessKey,
    /// The operator's access key.
    pub operator_key: AccessKey,
}

impl ServiceFixture {
    /// A service with the default configuration in a fresh data directory.
    pub async fn new() -> Self {
        Self::with_config(ServiceConfig::default()).await
    }

    /// A service whose caches live at most `bound` (so kill-switch tests wait
    /// little), otherwise configured by default.
    pub async fn with_revocation_bound(bound: std::time::Duration) -> Self {
        Self::with_config(ServiceConfig {
            revocation_bound: bound,
            ..ServiceConfig::default()
        })
        .await
    }

    /// A service with `config` in a fresh data directory.
    pub async fn with_config(config: ServiceConfig) -> Self {
        let data = DataDir::new();
        let service = data.service(config);
        Self::bootstrap(data, service).await
    }

    /// Bootstraps `service` (built over `data`, which must be fresh) and looks up the
    /// two principals the bootstrap created.
    pub async fn bootstrap(data: DataDir, service: Service) -> Self {
        let mut handed_out = None;
        let fresh = service
            .bootstrap_if_fresh(|c| {
                let key = |(id, secret): &(String, kcm_core::secret::SecretString)| AccessKey {
                    id: id.clone(),
                    secret: secret.expose_secret().to_owned(),
                };
                handed_out = Some((key(&c.tenant_admin), key(&c.system_admin)));
                Ok(())
            })
            .await
            .expect("bootstrap");
        assert!(fresh, "the fixture's store was already bootstrapped");
        let (admin_key, operator_key) = handed_out.expect("the bootstrap handed out credentials");
        let caller = |id: &str| {
            let service = &service;
            let id = id.to_owned();
            async move {
                let credential = service.credential(&id).await.expect("bootstrap credential");
                Caller::new(credential.principal.clone())
            }
        };
        let admin = caller(&admin_key.id).await;
        let operator = caller(&operator_key.id).await;
        Self {
            store: data.store.clone(),
            keystore: data.keystore.clone(),
            data,
            service: Arc::new(service),
            admin,
            operator,
            admin_key,
            operator_key,
        }
    }

    /// A second node: another service on the same store and keystore, with
    /// `config`.
    pub fn another_node(&self, config: ServiceConfig) -> Service {
        self.data.service(config)
    }

    /// A new caller for the tenant-admin (a [`Caller`] collects one request's notes).
    pub fn admin(&self) -> Caller {
        Caller::new(self.admin.principal.clone())
    }

    /// The id of the tenant's default root key (the one the kill-switch tests throw).
    pub async fn default_root_id(&self) -> String {
        let roots = self.service.list_root_keys(&self.admin).await.unwrap();
        roots
            .iter()
            .find(|r| r.is_default)
            .expect("a bootstrapped tenant has a default root key")
            .id
            .to_string()
    }

    /// A new caller for the operator.
    pub fn operator(&self) -> Caller {
        Caller::new(self.operator.principal.clone())
    }
}
