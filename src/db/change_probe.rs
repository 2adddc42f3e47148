//! Notices commits made to a SQLite user store by *other* processes, such as
//! `tether users set-roles` run while the server is up without Redis.
//!
//! `PRAGMA data_version` changes whenever another connection has committed
//! since the last time this connection asked. Asking is a local call of a few
//! microseconds, so the access cache can ask before every permission check
//! and never serve permissions older than the last commit.

use std::sync::Mutex;

use diesel::{sql_types::BigInt, Connection as _, QueryableByName, RunQueryDsl, SqliteConnection};

#[derive(QueryableByName)]
struct DataVersion {
    #[diesel(sql_type = BigInt)]
    data_version: i64,
}

pub struct ChangeProbe {
    conn: Mutex<(SqliteConnection, i64)>,
}

impl ChangeProbe {
    pub fn open(path: &str) -> anyhow::Result<Self> {
        let mut conn = SqliteConnection::establish(path)?;
        let version = read(&mut conn)?;
        Ok(Self {
            conn: Mutex::new((conn, version)),
        })
    }

    /// `true` if another connection committed since the previous call. On an
    /// error it answers `true`, so callers re-read (and then fail closed).
    pub fn changed(&self) -> bool {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let (conn, last) = &mut *guard;
        match read(conn) {
            Ok(version) if version == *last => false,
            Ok(version) => {
                *last = version;
                true
            }
            Err(e) => {
                log::warn!("event=change_probe_failed error={e}");
                true
            }
        }
    }
}

fn read(conn: &mut SqliteConnection) -> anyhow::Result<i64> {
    let row: DataVersion = diesel::sql_query("PRAGMA data_version").get_result(conn)?;
    Ok(row.data_version)
}
