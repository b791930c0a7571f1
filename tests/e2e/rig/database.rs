//! The test set-up's PostgreSQL server (`STOWAGE_TEST_POSTGRES`): a fresh database per test, dropped after it.

use std::sync::atomic::{AtomicU32, Ordering};

use super::environment::skip_or_fail;

/// A database of its own in the rig's PostgreSQL cluster, dropped when this is.
pub struct TestDatabase {
    /// `postgresql://stowage:PASSWORD@127.0.0.1:PORT/NAME`.
    pub url: String,
    /// The password in the URL, for the tests that look for it in stowage's output.
    pub password: String,
    admin: String,
    name: String,
}

impl TestDatabase {
    /// A new empty database; None (after a loud SKIPPED, or a panic under CI) without the rig's server.
    pub fn new() -> Option<TestDatabase> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let Ok(admin) = std::env::var("STOWAGE_TEST_POSTGRES") else {
            skip_or_fail(
                "STOWAGE_TEST_POSTGRES is not set (scripts/test-env.sh starts PostgreSQL)",
            );
            return None;
        };
        let name = format!(
            "stowage_e2e_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut client = connect(&admin);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create the test database");
        let (base, _) = admin.rsplit_once('/').expect("the URL names a database");
        let password = admin
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .map(|(_, password)| password.to_string())
            .expect("the rig's URL has a password");
        Some(TestDatabase {
            url: format!("{base}/{name}"),
            password,
            admin,
            name,
        })
    }

    /// A client of this database, to read what stowage stored.
    pub fn client(&self) -> postgres::Client {
        connect(&self.url)
    }

    /// This database's URL without its password (for the tests of PGPASSWORD and ~/.pgpass).
    pub fn url_without_password(&self) -> String {
        self.url.replace(&format!(":{}@", self.password), "@")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let mut client = connect(&self.admin);
        let _ = client.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("connect to the rig's PostgreSQL: {e}"))
}
