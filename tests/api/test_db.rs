//! A fresh, private database per test: a temporary SQLite file or a new
//! PostgreSQL database, removed when the `TestDb` is dropped.
//!
//! `url` is a `DATABASE_URL` for `Db::connect`. Nothing here needs an async
//! runtime, so a `TestDb` works (and drops) from plain and async tests alike.

use std::path::PathBuf;

use diesel::{Connection, PgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::services;

pub struct TestDb {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The SQLite file; WAL mode adds `-wal` and `-shm` beside it.
    SqliteFile(PathBuf),
    /// The database to drop, and the admin URL to drop it through.
    PostgresDatabase { name: String, admin_url: String },
}

impl TestDb {
    /// A new SQLite database in the system temp directory. SQLite creates the
    /// file on first connection.
    pub fn sqlite() -> TestDb {
        let path = std::env::temp_dir().join(format!("tether-test-{}.db", Uuid::new_v4().simple()));
        TestDb {
            url: format!("sqlite://{}", path.display()),
            cleanup: Cleanup::SqliteFile(path),
        }
    }

    /// A new, empty PostgreSQL database on the test server, or `None` (after
    /// reporting the skip, which fails the test in CI) if it is unreachable.
    pub fn postgres(test_name: &str) -> Option<TestDb> {
        let admin_url = services::postgres_admin_url();
        let mut admin = match PgConnection::establish(&admin_url) {
            Ok(conn) => conn,
            Err(e) => {
                services::service_missing(test_name, "PostgreSQL", &e.to_string());
                return None;
            }
        };
        let name = format!("tether_test_{}", Uuid::new_v4().simple());
        // The name is generated above, so quoting it into the SQL is safe.
        if let Err(e) = diesel::sql_query(format!("CREATE DATABASE \"{name}\"")).execute(&mut admin)
        {
            services::service_missing(
                test_name,
                "PostgreSQL",
                &format!("CREATE DATABASE failed: {e}"),
            );
            return None;
        }
        Some(TestDb {
            url: with_database(&admin_url, &name),
            cleanup: Cleanup::PostgresDatabase { name, admin_url },
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    // Missing side files are normal (never opened, or checkpointed).
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::PostgresDatabase { name, admin_url } => {
                // FORCE ends the connections a still-open pool holds.
                let dropped = PgConnection::establish(admin_url)
                    .map_err(|e| e.to_string())
                    .and_then(|mut admin| {
                        diesel::sql_query(format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .execute(&mut admin)
                        .map_err(|e| e.to_string())
                    });
                if let Err(e) = dropped {
                    eprintln!("could not drop test database {name}: {e}");
                }
            }
        }
    }
}

/// `admin_url` with its database name replaced by `name`, keeping any
/// `?parameters`.
fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}
