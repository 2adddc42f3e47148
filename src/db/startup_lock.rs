//! The start-up lock: one process at a time migrates the user store or creates
//! the first admin, however many instances and CLI commands start together
//! (`docker compose --scale`, a Kubernetes rollout). Without it, processes
//! migrating a fresh database all create the same tables and all but one fail.
//!
//! - PostgreSQL: the session-level advisory lock [`STARTUP_LOCK_KEY`] on a
//!   connection of its own. Advisory locks are per database, so only
//!   processes sharing the `DATABASE_URL` database wait for each other.
//! - SQLite: an exclusive transaction (`BEGIN EXCLUSIVE`) on a connection of
//!   its own. Any other connection's write would wait for it, so the locked
//!   work runs on that same connection: diesel's own transactions inside it,
//!   the migrations' included, become savepoints. Released with `COMMIT`.
//!
//! Either way the wait is bounded ([`STARTUP_LOCK_WAIT`]), and the connection
//! is closed after the release, or instead of it when the holder fails or is
//! dropped: closing ends the advisory lock, and rolls the SQLite transaction
//! back. The lock cannot outlive its holder.

use std::{
    ops::Deref,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::sql_types::BigInt;
use diesel::RunQueryDsl;

use super::pool::DbConnection;
use super::{Db, DbError};

/// The PostgreSQL advisory lock key: "tether" in ASCII, then lock number 1
/// (decimal 8387237872774807553). Also in the README.
pub const STARTUP_LOCK_KEY: i64 = 0x7465_7468_6572_0001;

/// How long a process waits for another one's migrations or admin bootstrap
/// before it gives up with an error naming the lock.
pub const STARTUP_LOCK_WAIT: Duration = Duration::from_secs(60);

/// A wait from which on acquiring is logged at `info` rather than `debug`.
const NOTABLE_WAIT: Duration = Duration::from_secs(1);

/// The lock's connection, shared by the handles a [`StartupLock`] lends out;
/// `None` once released.
pub(super) type LockConnection = Arc<Mutex<Option<DbConnection>>>;

/// Held while this process migrates or creates the first admin. Derefs to a
/// [`Db`] whose queries run on the lock's own connection (the only one that
/// may write to SQLite meanwhile). End it with [`StartupLock::release`],
/// which keeps the work done under it; dropping it instead closes the
/// connection, which also releases the lock (and undoes uncommitted SQLite
/// work). Handles cloned from it fail once it has ended.
pub struct StartupLock {
    db: Db,
    /// `false` for a lock taken through a handle that already held it: only
    /// the outermost one releases.
    outermost: bool,
    acquired: Instant,
}

impl Deref for StartupLock {
    type Target = Db;

    fn deref(&self) -> &Db {
        &self.db
    }
}

impl StartupLock {
    /// Waits (at most `max_wait`) for the lock on a new connection of `db`'s
    /// database. Through a handle that holds the lock already, returns at once.
    pub(super) async fn acquire(db: &Db, max_wait: Duration) -> Result<StartupLock, DbError> {
        if db.lock_connection.is_some() {
            return Ok(StartupLock {
                db: db.clone(),
                outermost: false,
                acquired: Instant::now(),
            });
        }
        let target = db.target.clone();
        let conn = tokio::task::spawn_blocking(move || {
            let mut conn = super::pool::connect_alone(&target)
                .map_err(|e| DbError::Unavailable(anyhow::Error::new(e)))?;
            take(&mut conn, max_wait)?;
            Ok::<_, DbError>(conn)
        })
        .await
        .map_err(|e| {
            DbError::Other(anyhow::Error::new(e).context("start-up lock task failed"))
        })??;
        let mut locked = db.clone();
        locked.lock_connection = Some(Arc::new(Mutex::new(Some(conn))));
        Ok(StartupLock {
            db: locked,
            outermost: true,
            acquired: Instant::now(),
        })
    }

    /// Releases the lock, keeping what was done under it, and closes its
    /// connection. On an error the connection is closed all the same.
    pub async fn release(mut self) -> Result<(), DbError> {
        let Some(mut conn) = self.take_connection() else {
            return Ok(());
        };
        let held_ms = self.acquired.elapsed().as_millis();
        tokio::task::spawn_blocking(move || {
            let released = give_back(&mut conn);
            drop(conn);
            released
        })
        .await
        .map_err(|e| {
            DbError::Other(anyhow::Error::new(e).context("start-up lock task failed"))
        })??;
        log::debug!("event=startup_lock_released held_ms={held_ms}");
        Ok(())
    }

    /// The connection, if this is the outermost lock and it was not released.
    fn take_connection(&mut self) -> Option<DbConnection> {
        if !self.outermost {
            return None;
        }
        let slot = self.db.lock_connection.as_ref()?;
        lock_slot(slot).take()
    }
}

impl Drop for StartupLock {
    fn drop(&mut self) {
        if let Some(conn) = self.take_connection() {
            // Closing is what releases the lock here: no query to wait for.
            drop(conn);
            log::warn!(
                "event=startup_lock_released how=connection_closed note=\"its holder failed or was cancelled; uncommitted SQLite work is rolled back\""
            );
        }
    }
}

/// Runs `work` on the lock's connection (for `Db::run` on a locked handle).
pub(super) fn with_connection<T>(
    slot: &LockConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let mut conn = lock_slot(slot);
    let conn = conn.as_mut().ok_or_else(|| {
        DbError::Other(anyhow::anyhow!(
            "the start-up lock was released; this handle has no connection any more"
        ))
    })?;
    work(conn)
}

/// A panic while the connection was in use leaves it in an unknown state:
/// close it (releasing the lock) rather than carry on with it.
fn lock_slot(slot: &LockConnection) -> MutexGuard<'_, Option<DbConnection>> {
    slot.lock().unwrap_or_else(|poisoned| {
        let mut conn = poisoned.into_inner();
        *conn = None;
        conn
    })
}

/// Takes the lock on `conn`, waiting at most `max_wait`.
fn take(conn: &mut DbConnection, max_wait: Duration) -> Result<(), DbError> {
    let started = Instant::now();
    // 0 would mean "wait forever" to PostgreSQL and "not at all" to SQLite.
    let wait_ms = max_wait.as_millis().max(1);
    let (lock, taken) = match conn {
        DbConnection::Postgres(c) => (
            format!("PostgreSQL advisory lock {STARTUP_LOCK_KEY}"),
            take_advisory_lock(c, wait_ms),
        ),
        DbConnection::Sqlite(c) => (
            "exclusive transaction on the SQLite database".to_owned(),
            begin_exclusive(c, wait_ms),
        ),
    };
    let waited = started.elapsed();
    taken.map_err(|e| {
        DbError::Other(anyhow::Error::new(e).context(format!(
            "could not take the start-up lock ({lock}; waited for at most {} s, while another \
             tether process migrates the user store or creates the first admin)",
            max_wait.as_secs_f32()
        )))
    })?;
    let waited_ms = waited.as_millis();
    if waited >= NOTABLE_WAIT {
        log::info!("event=startup_lock_acquired waited_ms={waited_ms}");
    } else {
        log::debug!("event=startup_lock_acquired waited_ms={waited_ms}");
    }
    Ok(())
}

/// `lock_timeout` bounds the wait server-side; reset afterwards, so the work
/// done under the lock runs with the usual settings.
fn take_advisory_lock(
    conn: &mut diesel::PgConnection,
    wait_ms: u128,
) -> Result<(), diesel::result::Error> {
    conn.batch_execute(&format!("SET lock_timeout = '{wait_ms}ms'"))?;
    let taken = diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(STARTUP_LOCK_KEY)
        .execute(conn);
    let reset = conn.batch_execute("RESET lock_timeout");
    taken.and(reset)
}

/// The busy timeout bounds the wait: SQLite retries the lock until then.
/// Begun through diesel's transaction manager, so diesel knows a transaction
/// is open and nests its own as savepoints instead of a second `BEGIN`.
fn begin_exclusive(
    conn: &mut diesel::SqliteConnection,
    wait_ms: u128,
) -> Result<(), diesel::result::Error> {
    conn.batch_execute(&format!("PRAGMA busy_timeout = {wait_ms}"))?;
    AnsiTransactionManager::begin_transaction_sql(conn, "BEGIN EXCLUSIVE")
}

/// Releases the lock held on `conn`, keeping the work done under it.
fn give_back(conn: &mut DbConnection) -> Result<(), DbError> {
    match conn {
        DbConnection::Postgres(c) => {
            #[derive(diesel::QueryableByName)]
            struct Unlocked {
                #[diesel(sql_type = diesel::sql_types::Bool)]
                unlocked: bool,
            }
            let row: Unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1) AS unlocked")
                .bind::<BigInt, _>(STARTUP_LOCK_KEY)
                .get_result(c)?;
            if !row.unlocked {
                // Nothing to undo: the connection closes next either way.
                log::warn!("event=startup_lock_not_held key={STARTUP_LOCK_KEY}");
            }
            Ok(())
        }
        DbConnection::Sqlite(c) => Ok(AnsiTransactionManager::commit_transaction(c)?),
    }
}
