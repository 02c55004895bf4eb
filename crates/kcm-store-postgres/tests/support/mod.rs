//! A private PostgreSQL for the test binaries of this crate.
//!
//! If `KCM_TEST_DATABASE_URL` is set (a URL of a role that may `CREATE DATABASE`),
//! the tests use that server. Otherwise the first test that needs one starts a
//! private server: `initdb` into a temporary directory (found in
//! `/usr/lib/postgresql/*/bin`, then on `PATH`; as root, run as the `postgres` user
//! through `runuser`), `pg_ctl start` on a free port of 127.0.0.1 with password
//! (SCRAM) authentication over TCP and `fsync=on`. A watchdog process stops it
//! (`pg_ctl stop -m immediate`) and deletes its directory as soon as the test
//! process exits, however it exits, so no postgres outlives `cargo test`.
//!
//! Every store gets a fresh database (`CREATE DATABASE kcm_test_<pid>_<n>`), so
//! checks are independent.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use kcm_store_postgres::{PostgresOptions, PostgresStore};
use sqlx::{Connection, PgConnection};

/// The environment variable naming an existing server to test against.
pub const URL_VAR: &str = "KCM_TEST_DATABASE_URL";

/// A PostgreSQL server the tests may create databases in.
pub struct Server {
    /// A URL of the `postgres` database with a role that may create databases.
    pub admin_url: String,
    /// Whether this process started the server (and may stop it).
    private: Option<Private>,
}

/// What it takes to stop and start a server this process made.
struct Private {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

fn fail(message: impl std::fmt::Display) -> ! {
    panic!(
        "cannot provide a PostgreSQL for the tests: {message}\n\
         Fix: install the `postgresql` Debian package (apt-get install postgresql), \
         or set {URL_VAR} to the URL of a server where the role may CREATE DATABASE."
    )
}

/// The directory holding `initdb` and `pg_ctl`: the newest
/// `/usr/lib/postgresql/<version>/bin`, else the first on `PATH`.
fn find_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
            return dir;
        }
    }
    fail("initdb and pg_ctl were not found in /usr/lib/postgresql/*/bin nor on PATH")
}

/// True when running as root (initdb refuses root; the server must run as `postgres`).
fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output();
    matches!(out, Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| fail(format!("no free port: {e}")))
}

/// A command running `program` of `bin`, as `postgres` when root.
fn pg_command(bin: &Path, program: &str, as_postgres: bool) -> Command {
    let exe = bin.join(program);
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(exe);
        c
    } else {
        Command::new(exe)
    }
}

fn run(mut cmd: Command, what: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| fail(format!("cannot run {what}: {e}")));
    if !out.status.success() {
        fail(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
}

/// A random password (not secret: it keeps the tests honest about passwords in URLs).
fn random_password() -> String {
    let a = std::collections::hash_map::RandomState::new();
    use std::hash::{BuildHasher, Hasher};
    let mut h = a.build_hasher();
    h.write_u32(std::process::id());
    format!("pw-{:016x}-secret", h.finish())
}

impl Private {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn pg_ctl(&self) -> Command {
        pg_command(&self.bin, "pg_ctl", self.as_postgres)
    }

    fn start(&self) {
        let mut cmd = self.pg_ctl();
        cmd.arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("log"))
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=300",
                self.port,
                self.dir.join("sock").display()
            ))
            .args(["-w", "-t", "60", "start"]);
        run(cmd, "pg_ctl start");
    }

    fn stop(&self) {
        let mut cmd = self.pg_ctl();
        cmd.arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"]);
        run(cmd, "pg_ctl stop");
    }

    /// Starts a process that waits for this one to exit, then stops the server and
    /// deletes its directory.
    fn spawn_watchdog(&self) {
        let stop = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        kcm_test_support::process::after_exit(&format!(
            "{stop}'{pg_ctl}' -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.data().display(),
            dir = self.dir.display(),
        ));
    }
}

impl Server {
    /// Starts a private server in a new temporary directory.
    pub fn start_private() -> Server {
        let bin = find_bin();
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("kcm-pg-test-")
            .tempdir()
            .unwrap_or_else(|e| fail(format!("no temporary directory: {e}")))
            .keep();
        let password = random_password();
        std::fs::create_dir(dir.join("sock")).expect("socket directory");
        std::fs::write(dir.join("pwfile"), format!("{password}\n")).expect("password file");
        if as_postgres {
            let mut chown = Command::new("chown");
            chown.args(["-R", "postgres"]).arg(&dir);
            run(chown, "chown -R postgres (is there a `postgres` user?)");
        }
        let private = Private {
            bin,
            dir,
            port: free_port(),
            as_postgres,
        };
        // Stop and clean up even if initdb or the start fails half-way.
        private.spawn_watchdog();
        let mut initdb = pg_command(&private.bin, "initdb", as_postgres);
        initdb
            .arg("-D")
            .arg(private.data())
            .args(["-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", private.dir.join("pwfile").display()));
        run(initdb, "initdb");
        private.start();
        Server {
            admin_url: format!(
                "postgres://postgres:{password}@127.0.0.1:{}/postgres",
                private.port
            ),
            private: Some(private),
        }
    }

    /// The server of `KCM_TEST_DATABASE_URL`, or a private one.
    fn from_env_or_private() -> Server {
        match std::env::var(URL_VAR) {
            Ok(url) if !url.is_empty() => Server {
                admin_url: url,
                private: None,
            },
            _ => Server::start_private(),
        }
    }

    /// The URL of `database` on this server (same role and password).
    pub fn url(&self, database: &str) -> String {
        let mut url = url::Url::parse(&self.admin_url).expect("a valid URL");
        url.set_path(&format!("/{database}"));
        url.to_string()
    }

    /// The password in the URLs (empty if none).
    pub fn password(&self) -> String {
        let url = url::Url::parse(&self.admin_url).expect("a valid URL");
        url.password().unwrap_or_default().to_owned()
    }

    /// Creates a new empty database; returns its name.
    pub async fn create_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "kcm_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect(&self.admin_url)
            .await
            .unwrap_or_else(|e| fail(format!("cannot connect as admin: {e}")));
        sqlx::raw_sql(&format!(
            "CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0"
        ))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| fail(format!("CREATE DATABASE {name}: {e}")));
        let _ = admin.close().await;
        name
    }

    /// A fresh database and a store opened on it (default options), with a guard
    /// that drops the database afterwards on a server this process did not start.
    pub async fn fresh_store(&'static self) -> (PostgresStore, DatabaseGuard) {
        let name = self.create_database().await;
        let store = PostgresStore::open(&self.url(&name), PostgresOptions::default())
            .await
            .unwrap_or_else(|e| panic!("open the store on {name}: {e}"));
        (store, DatabaseGuard { server: self, name })
    }

    /// A fresh database with two stores open on it (default options): two nodes of
    /// one cluster, for what only a second node can see or race for.
    pub async fn two_nodes(&'static self) -> (PostgresStore, PostgresStore, DatabaseGuard) {
        let (a, db) = self.fresh_store().await;
        let b = PostgresStore::open(&self.url(&db.name), PostgresOptions::default())
            .await
            .unwrap_or_else(|e| panic!("open a second store on {}: {e}", db.name));
        (a, b, db)
    }

    /// Stops a private server (immediately, like a crash).
    pub fn stop(&self) {
        self.private.as_ref().expect("a private server").stop();
    }

    /// Starts a private server again, on the same port and data directory.
    pub fn start(&self) {
        self.private.as_ref().expect("a private server").start();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(private) = &self.private {
            let mut cmd = private.pg_ctl();
            cmd.arg("-D")
                .arg(private.data())
                .args(["-m", "immediate", "stop"]);
            let _ = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = std::fs::remove_dir_all(&private.dir);
        }
    }
}

/// The server shared by the tests of this binary (started once, on first use).
pub fn shared() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(Server::from_env_or_private)
}

/// Keeps a test database for as long as the check runs; on an external server,
/// drops it afterwards.
pub struct DatabaseGuard {
    server: &'static Server,
    /// The database name.
    pub name: String,
}

impl Drop for DatabaseGuard {
    fn drop(&mut self) {
        if self.server.private.is_some() {
            return; // deleted with the whole cluster
        }
        let admin = self.server.admin_url.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(&sql).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

/// A fresh store on the shared server: the conformance suite's constructor.
pub async fn make_store() -> (PostgresStore, DatabaseGuard) {
    shared().fresh_store().await
}
