//! Backend choice and the connection pool: one binary, PostgreSQL or SQLite,
//! decided by the database URL alone.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, CustomizeConnection, ManageConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};

use super::Backend;

/// A connection to whichever database the URL named. Queries are written once
/// against this type; diesel dispatches them to the variant.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

pub type Pool = r2d2::Pool<DbConnectionManager>;

/// How long to wait for a connection before calling the store unavailable;
/// short so a dead database fails a request (or start-up) promptly.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// PostgreSQL serves many connections; a handful keeps the blocking pool busy.
const POSTGRES_POOL_SIZE: u32 = 8;
/// SQLite has one writer at a time; more connections only queue on the lock.
const SQLITE_POOL_SIZE: u32 = 4;
/// Milliseconds a SQLite connection waits on a locked database.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5000;

/// Where to connect: the backend and the string its driver expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Postgres(String),
    Sqlite(String),
}

impl Target {
    /// Parses a `DATABASE_URL`. Error messages name the scheme, never the URL,
    /// which may carry a password.
    pub fn parse(url: &str) -> Result<Target, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err(
                "database URL is empty: use postgres://… or a SQLite path such as sqlite://tether.db"
                    .into(),
            );
        }
        let Some(scheme) = scheme_of(url) else {
            return sqlite_path(url);
        };
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Ok(Target::Postgres(url.to_owned())),
            "sqlite" => {
                let rest = &url[scheme.len() + 1..];
                sqlite_path(rest.strip_prefix("//").unwrap_or(rest))
            }
            // SQLite itself understands `file:` URIs (diesel opens with
            // SQLITE_OPEN_URI), so pass them through with any `?mode=` intact.
            "file" => sqlite_path(url),
            other => Err(format!(
                "unsupported database URL scheme {other:?}: use postgres://, postgresql://, \
                 sqlite://PATH, file:PATH or a plain file path"
            )),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Target::Postgres(_) => Backend::Postgres,
            Target::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// The URL scheme, if the string has one. A single letter is a Windows drive
/// (`C:\data\tether.db`), not a scheme.
fn scheme_of(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = scheme.len() > 1
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

fn sqlite_path(path: &str) -> Result<Target, String> {
    if path.is_empty() || path == "file:" {
        return Err("SQLite database URL has no file path".into());
    }
    // Every pooled connection would open its own, empty in-memory database.
    if path == ":memory:" || path.contains("mode=memory") {
        return Err("in-memory SQLite is not supported: use a file path".into());
    }
    Ok(Target::Sqlite(path.to_owned()))
}

/// Opens connections of the variant the URL named. diesel's own
/// `ConnectionManager` would try each backend in turn, and SQLite accepts
/// almost any string as a file name.
#[derive(Debug)]
pub struct DbConnectionManager {
    target: Target,
}

impl ManageConnection for DbConnectionManager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match &self.target {
            Target::Postgres(url) => PgConnection::establish(url).map(DbConnection::Postgres),
            Target::Sqlite(path) => SqliteConnection::establish(path).map(DbConnection::Sqlite),
        }
        .map_err(r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

/// Per-connection SQLite settings, which SQLite does not persist (except WAL).
#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<DbConnection, r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        match conn {
            // busy_timeout first: switching to WAL takes a lock that the
            // pool's other new connections may be holding.
            DbConnection::Sqlite(c) => c
                .batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};\
                     PRAGMA journal_mode = WAL;\
                     PRAGMA foreign_keys = ON;"
                ))
                .map_err(r2d2::Error::QueryError),
            DbConnection::Postgres(_) => Ok(()),
        }
    }
}

/// Builds the pool and waits for its first connections, so an unreachable
/// database is reported at start rather than on the first request.
pub fn build(target: Target) -> Result<Pool, r2d2::PoolError> {
    let size = match target {
        Target::Postgres(_) => POSTGRES_POOL_SIZE,
        Target::Sqlite(_) => SQLITE_POOL_SIZE,
    };
    r2d2::Pool::builder()
        .max_size(size)
        .connection_timeout(CONNECTION_TIMEOUT)
        .connection_customizer(Box::new(SqlitePragmas))
        .build(DbConnectionManager::new(target))
}

/// A connection outside the pool, set up as pooled ones are: for the
/// start-up lock, whose connection must never go back to the pool still
/// holding it.
pub fn connect_alone(target: &Target) -> Result<DbConnection, r2d2::Error> {
    let mut conn = DbConnectionManager::new(target.clone()).connect()?;
    SqlitePragmas.on_acquire(&mut conn)?;
    Ok(conn)
}

impl DbConnectionManager {
    fn new(target: Target) -> Self {
        let target = match target {
            Target::Postgres(url) => Target::Postgres(with_connect_timeout(url)),
            sqlite => sqlite,
        };
        DbConnectionManager { target }
    }
}

/// libpq waits for the OS TCP timeout (minutes) on a silent host; bound each
/// attempt unless the URL already says otherwise.
fn with_connect_timeout(url: String) -> String {
    if url.contains("connect_timeout=") {
        return url;
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{separator}connect_timeout={}",
        CONNECTION_TIMEOUT.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_become_plain_paths() {
        let path = |url| match Target::parse(url) {
            Ok(Target::Sqlite(p)) => p,
            other => panic!("{url}: {other:?}"),
        };
        assert_eq!(path("sqlite://tether.db"), "tether.db");
        assert_eq!(path("sqlite:///var/lib/tether.db"), "/var/lib/tether.db");
        assert_eq!(path("sqlite:data/tether.db"), "data/tether.db");
        assert_eq!(path("file:tether.db?mode=rwc"), "file:tether.db?mode=rwc");
        assert_eq!(path("./tether.db"), "./tether.db");
        assert_eq!(path(r"C:\data\tether.db"), r"C:\data\tether.db");
    }

    #[test]
    fn in_memory_and_empty_sqlite_urls_are_refused() {
        for url in [
            "sqlite::memory:",
            ":memory:",
            "sqlite://",
            "file:x?mode=memory",
            "",
        ] {
            assert!(Target::parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn postgres_urls_get_a_connect_timeout() {
        assert_eq!(
            with_connect_timeout("postgres://h/db".into()),
            "postgres://h/db?connect_timeout=5"
        );
        assert_eq!(
            with_connect_timeout("postgres://h/db?sslmode=require".into()),
            "postgres://h/db?sslmode=require&connect_timeout=5"
        );
        assert_eq!(
            with_connect_timeout("postgres://h/db?connect_timeout=1".into()),
            "postgres://h/db?connect_timeout=1"
        );
    }

    #[test]
    fn sqlite_connections_use_wal_and_enforce_foreign_keys() {
        let path = std::env::temp_dir().join(format!("tether-pool-{}.db", uuid::Uuid::new_v4()));
        let pool = build(Target::Sqlite(path.display().to_string())).expect("pool");
        let mut conn = pool.get().expect("connection");
        let orphan = conn.batch_execute(
            "CREATE TABLE parent (id INTEGER PRIMARY KEY);\
             CREATE TABLE child (parent INTEGER REFERENCES parent (id));\
             INSERT INTO child VALUES (1);",
        );
        let wal = path.with_extension("db-wal").exists();
        drop(conn);
        drop(pool);
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
        assert!(orphan.is_err(), "foreign keys are enforced");
        assert!(wal, "journal is in WAL mode");
    }
}
