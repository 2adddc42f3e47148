//! The user store: the only place diesel appears. Picks PostgreSQL or SQLite
//! from the URL, runs the embedded migrations, and answers typed queries.
//!
//! Layout: `pool` (backend choice, connections), `migrations`,
//! `startup_lock` (one process at a time migrates or bootstraps), `schema`,
//! `users` (row models beside their queries), `last_admin` (nobody may
//! take `admin:users` from the last enabled user holding it) and `audit_log`
//! (the audit trail's table). This file is the async
//! façade the rest of the crate calls.

mod audit_log;
mod change_probe;
mod identities;
mod last_admin;
mod migrations;
mod pool;
mod schema;
mod startup_lock;
mod users;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{PermissionSet, RoleName, Username};

use self::pool::{DbConnection, Pool, Target};
pub use self::startup_lock::{StartupLock, STARTUP_LOCK_KEY, STARTUP_LOCK_WAIT};

/// Which database the URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// `postgres://`/`postgresql://` → PostgreSQL; `sqlite://PATH`, `sqlite:PATH`,
    /// `file:PATH` or a bare path → SQLite; anything else (e.g. `mysql://`) is refused.
    pub fn from_url(url: &str) -> Result<Backend, String> {
        Target::parse(url).map(|t| t.backend())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database could not be reached (pool timeout, connection refused).
    #[error("user store unavailable: {0}")]
    Unavailable(#[source] anyhow::Error),
    #[error("not found")]
    NotFound,
    /// Also when the name differs from a taken one only by case.
    #[error("username already taken")]
    UsernameTaken,
    /// The change would leave no enabled user holding `admin:users`.
    #[error("the last administrator cannot lose admin:users")]
    LastAdministrator,
    #[error("unknown role {0:?}")]
    UnknownRole(String),
    /// (issuer, subject) is linked to a user already.
    #[error("identity already linked")]
    IdentityTaken,
    #[error(transparent)]
    Other(anyhow::Error),
}

/// A user as the rest of the crate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    pub disabled: bool,
    /// Role names, sorted.
    pub roles: Vec<String>,
    /// Union of the permissions of `roles`.
    pub permissions: PermissionSet,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One audit trail entry as stored (see `crate::audit` for what the fields
/// hold). Plain data: the audit module builds it from typed values.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub action: String,
    pub actor: String,
    pub actor_user_id: Option<Uuid>,
    pub actor_session_id: Option<String>,
    pub target_user_id: Option<Uuid>,
    pub target_session_id: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// A JSON object.
    pub details: serde_json::Value,
}

/// An entry read back, with its id (ids only grow).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAuditEntry {
    pub id: i64,
    pub entry: AuditEntry,
}

/// Which audit entries a listing wants; every field set narrows it.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Entries where this user is the actor or the target.
    pub user_id: Option<Uuid>,
    pub action: Option<String>,
    /// At or after this time.
    pub since: Option<DateTime<Utc>>,
}

/// An account at an OpenID Connect provider, linked to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedIdentity {
    /// The configured provider id it was linked through.
    pub provider: String,
    pub issuer: String,
    /// The provider's `sub`.
    pub subject: String,
}

/// What sign-in needs to check a password.
#[derive(Clone)]
pub struct Credentials {
    pub user_id: Uuid,
    pub password_hash: String,
    pub disabled: bool,
}

/// Leaves the hash out, so a stray `{:?}` cannot log it.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user_id", &self.user_id)
            .field("password_hash", &"[REDACTED]")
            .field("disabled", &self.disabled)
            .finish()
    }
}

/// Query failures are unexpected by the time they reach here (expected
/// outcomes such as a taken username are mapped where they happen), except a
/// dropped connection, which means the database went away.
impl From<diesel::result::Error> for DbError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => {
                DbError::Unavailable(anyhow::Error::new(e))
            }
            other => DbError::Other(anyhow::Error::new(other)),
        }
    }
}

/// Handle to the user store; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// Where the pool connects, for the start-up lock's own connection.
    target: Target,
    backend: Backend,
    /// SQLite file, for the change probe.
    sqlite_path: Option<String>,
    /// Notices other processes' commits, once `watch_other_processes` is on.
    probe: Option<std::sync::Arc<change_probe::ChangeProbe>>,
    /// Set on the handle a `StartupLock` lends out: queries run on the
    /// lock's connection instead of the pool.
    lock_connection: Option<startup_lock::LockConnection>,
}

impl Db {
    /// Opens the pool and waits (a few seconds at most) for its first
    /// connections: an unreachable database is `Unavailable` here, at start.
    pub fn connect(url: &str) -> Result<Db, DbError> {
        let target =
            Target::parse(url).map_err(|reason| DbError::Other(anyhow::anyhow!(reason)))?;
        let backend = target.backend();
        let sqlite_path = match &target {
            Target::Sqlite(path) => Some(path.clone()),
            Target::Postgres(_) => None,
        };
        let pool = pool::build(target.clone()).map_err(|e| {
            DbError::Unavailable(anyhow::Error::new(e).context("connecting to the database"))
        })?;
        Ok(Db {
            pool,
            target,
            backend,
            sqlite_path,
            probe: None,
            lock_connection: None,
        })
    }

    /// SQLite only: from now on, `changed_elsewhere` notices commits made by
    /// other processes. For a server without Redis, where nothing else would
    /// tell it about `tether users …` run beside it.
    pub fn watch_other_processes(&mut self) -> Result<(), DbError> {
        if let Some(path) = &self.sqlite_path {
            let probe = change_probe::ChangeProbe::open(path).map_err(DbError::Unavailable)?;
            self.probe = Some(std::sync::Arc::new(probe));
        }
        Ok(())
    }

    /// `true` if another process committed since the last call (always
    /// `false` unless `watch_other_processes` is on). Cheap: usually one `statx`.
    pub fn changed_elsewhere(&self) -> bool {
        self.probe.as_ref().is_some_and(|p| p.changed())
    }

    /// As `changed_elsewhere`, always asking SQLite itself (for a periodic check).
    pub fn changed_elsewhere_exact(&self) -> bool {
        self.probe.as_ref().is_some_and(|p| p.changed_exact())
    }

    /// Whether `watch_other_processes` is on.
    pub fn watches_other_processes(&self) -> bool {
        self.probe.is_some()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies pending migrations under the start-up lock, so processes
    /// starting together do not race; returns the versions applied.
    pub async fn run_migrations(&self) -> Result<Vec<String>, DbError> {
        let lock = self.startup_lock().await?;
        // On an error the lock is dropped: its connection closes.
        let applied = lock.run(migrations::run_pending).await?;
        lock.release().await?;
        Ok(applied)
    }

    /// Waits (at most `STARTUP_LOCK_WAIT`) until no other process holds the
    /// start-up lock, then holds it: for work that must not run in two
    /// starting processes at once (migrations, creating the first admin).
    /// Query through the returned lock, then `release` it. Through a handle
    /// that already holds the lock, returns at once.
    pub async fn startup_lock(&self) -> Result<StartupLock, DbError> {
        self.startup_lock_within(STARTUP_LOCK_WAIT).await
    }

    /// As `startup_lock`, giving up after `max_wait`.
    pub async fn startup_lock_within(
        &self,
        max_wait: std::time::Duration,
    ) -> Result<StartupLock, DbError> {
        StartupLock::acquire(self, max_wait).await
    }

    /// Checks a connection can be had and answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.run(|conn| {
            use diesel::r2d2::R2D2Connection;
            conn.ping()
                .map_err(|e| DbError::Unavailable(anyhow::Error::new(e)))
        })
        .await
    }

    pub async fn count_users(&self) -> Result<i64, DbError> {
        self.run(users::count).await
    }

    pub async fn find_credentials(
        &self,
        username: &Username,
    ) -> Result<Option<Credentials>, DbError> {
        let username = username.as_str().to_owned();
        self.run(move |conn| users::find_credentials(conn, &username))
            .await
    }

    pub async fn find_user(&self, id: Uuid) -> Result<Option<UserRecord>, DbError> {
        self.run(move |conn| users::find_by_id(conn, id)).await
    }

    pub async fn find_user_by_username(
        &self,
        username: &Username,
    ) -> Result<Option<UserRecord>, DbError> {
        let username = username.as_str().to_owned();
        self.run(move |conn| users::find_by_username(conn, &username))
            .await
    }

    /// The users among `ids` that exist, ordered by username; unknown ids are
    /// left out. A fixed number of queries however many ids.
    pub async fn find_users(&self, ids: &[Uuid]) -> Result<Vec<UserRecord>, DbError> {
        let ids = ids.to_vec();
        self.run(move |conn| users::find_many(conn, &ids)).await
    }

    /// Every user, ordered by username.
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, DbError> {
        self.run(users::list).await
    }

    /// Creates a user; `UsernameTaken` or `UnknownRole` write nothing.
    pub async fn create_user(
        &self,
        username: &Username,
        password_hash: &str,
        roles: &[RoleName],
    ) -> Result<UserRecord, DbError> {
        let username = username.as_str().to_owned();
        let password_hash = password_hash.to_owned();
        let roles = role_names(roles);
        self.run(move |conn| users::create(conn, &username, &password_hash, &roles))
            .await
    }

    /// Replaces the user's roles; `NotFound`, `UnknownRole` or
    /// `LastAdministrator` change nothing.
    pub async fn set_roles(&self, id: Uuid, roles: &[RoleName]) -> Result<UserRecord, DbError> {
        let roles = role_names(roles);
        self.run(move |conn| users::set_roles(conn, id, &roles))
            .await
    }

    /// `NotFound` or `LastAdministrator` change nothing.
    pub async fn set_disabled(&self, id: Uuid, disabled: bool) -> Result<UserRecord, DbError> {
        self.run(move |conn| users::set_disabled(conn, id, disabled))
            .await
    }

    pub async fn set_password_hash(&self, id: Uuid, password_hash: &str) -> Result<(), DbError> {
        let password_hash = password_hash.to_owned();
        self.run(move |conn| users::set_password_hash(conn, id, &password_hash))
            .await
    }

    /// Appends audit entries in one transaction (all or none).
    pub async fn append_audit(&self, entries: Vec<AuditEntry>) -> Result<(), DbError> {
        self.run(move |conn| audit_log::append(conn, &entries))
            .await
    }

    /// How many audit entries match `filter`, and one page of them, newest first.
    pub async fn audit_page(
        &self,
        filter: AuditFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(i64, Vec<StoredAuditEntry>), DbError> {
        self.run(move |conn| audit_log::page(conn, &filter, offset, limit))
            .await
    }

    /// Deletes audit entries older than `before`; returns how many.
    pub async fn prune_audit(&self, before: DateTime<Utc>) -> Result<usize, DbError> {
        self.run(move |conn| audit_log::prune(conn, before)).await
    }

    /// Every role name the store knows, sorted.
    pub async fn role_names(&self) -> Result<Vec<String>, DbError> {
        self.run(users::role_names).await
    }

    /// The user linked to (issuer, subject), if any.
    pub async fn find_linked_user(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<Uuid>, DbError> {
        let (issuer, subject) = (issuer.to_owned(), subject.to_owned());
        self.run(move |conn| identities::find_user_id(conn, &issuer, &subject))
            .await
    }

    /// Creates a user without a password, linked to `identity`;
    /// `UsernameTaken`, `IdentityTaken` or `UnknownRole` write nothing.
    pub async fn create_linked_user(
        &self,
        username: &Username,
        roles: &[RoleName],
        identity: LinkedIdentity,
    ) -> Result<UserRecord, DbError> {
        let username = username.as_str().to_owned();
        let roles = role_names(roles);
        self.run(move |conn| identities::create_linked(conn, &username, &roles, &identity))
            .await
    }

    /// The identities linked to each of `ids`.
    pub async fn linked_identities(
        &self,
        ids: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, Vec<LinkedIdentity>>, DbError> {
        let ids = ids.to_vec();
        self.run(move |conn| identities::of_users(conn, &ids)).await
    }

    /// Runs blocking diesel work on tokio's blocking pool with a pooled
    /// connection (or the start-up lock's), so queries never stall the async
    /// workers.
    async fn run<T, F>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let lock_connection = self.lock_connection.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(conn) = &lock_connection {
                return startup_lock::with_connection(conn, work);
            }
            let mut conn = pool
                .get()
                .map_err(|e| DbError::Unavailable(anyhow::Error::new(e)))?;
            work(&mut conn)
        })
        .await
        .map_err(|e| DbError::Other(anyhow::Error::new(e).context("user store task failed")))?
    }
}

/// Role names as the queries want them: sorted and distinct, so a repeated
/// role cannot trip the `user_roles` primary key.
fn role_names(roles: &[RoleName]) -> Vec<String> {
    let mut names: Vec<String> = roles.iter().map(|r| r.as_str().to_owned()).collect();
    names.sort();
    names.dedup();
    names
}
