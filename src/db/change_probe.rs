//! Notices commits made to a SQLite user store by *other* processes, such as
//! `tether users set-roles` run while a server without Redis is up. (With
//! Redis, such changes are announced on the event bus instead, and this probe
//! is not used.)
//!
//! `PRAGMA data_version` changes whenever another connection has committed
//! since this connection last asked. Asking costs a read transaction (~7 µs
//! measured here; ~12 µs through diesel's `sql_query`, which re-prepares it),
//! too much before every WebSocket message, so the fast path first compares
//! the `-wal` file's length and modification time (one `fstat`, ~1 µs):
//! every commit in WAL mode writes that file. Only when they changed is the
//! PRAGMA run. File times are coarse (a clock tick), so a commit landing in
//! the same tick as the last observed write, after the WAL wrapped to the same
//! length, could slip past the fast path; the server's once-a-second watch
//! calls [`ChangeProbe::changed_exact`], which always asks SQLite.

use std::{fs::File, path::PathBuf, sync::Mutex, time::SystemTime};

struct State {
    conn: rusqlite::Connection,
    version: i64,
    /// Kept open: `fstat` on a handle skips the path lookup of `stat`. While
    /// this probe's own connection is open SQLite never deletes the WAL file,
    /// so the handle stays the file SQLite writes.
    wal_file: Option<File>,
    wal: Option<(u64, SystemTime)>,
}

pub struct ChangeProbe {
    wal_path: PathBuf,
    state: Mutex<State>,
}

impl ChangeProbe {
    pub fn open(path: &str) -> anyhow::Result<Self> {
        let conn = rusqlite::Connection::open(path)?;
        let version = read(&conn)?;
        let wal_path = PathBuf::from(format!("{path}-wal"));
        let mut state = State {
            conn,
            version,
            wal_file: None,
            wal: None,
        };
        state.wal = wal_stamp(&wal_path, &mut state.wal_file);
        Ok(Self {
            wal_path,
            state: Mutex::new(state),
        })
    }

    /// `true` if another connection committed since the previous call. On an
    /// error it answers `true`, so callers re-read (and then fail closed).
    pub fn changed(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let stamp = wal_stamp(&self.wal_path, &mut state.wal_file);
        if stamp.is_some() && stamp == state.wal {
            return false;
        }
        state.wal = stamp;
        Self::ask(&mut state)
    }

    /// As `changed`, always asking SQLite (no file-time shortcut).
    pub fn changed_exact(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.wal = wal_stamp(&self.wal_path, &mut state.wal_file);
        Self::ask(&mut state)
    }

    fn ask(state: &mut State) -> bool {
        match read(&state.conn) {
            Ok(version) if version == state.version => false,
            Ok(version) => {
                state.version = version;
                true
            }
            Err(e) => {
                log::warn!("event=change_probe_failed error={e}");
                true
            }
        }
    }
}

/// Length and modification time of the WAL file; `None` (so: ask SQLite) if
/// it cannot be read, e.g. before the first write created it.
fn wal_stamp(path: &std::path::Path, handle: &mut Option<File>) -> Option<(u64, SystemTime)> {
    if handle.is_none() {
        *handle = File::open(path).ok();
    }
    let meta = handle.as_ref()?.metadata().ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

fn read(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("PRAGMA data_version")?
        .query_row([], |row| row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_db() -> (String, rusqlite::Connection) {
        let path = std::env::temp_dir().join(format!("probe-{}.db", uuid::Uuid::new_v4().simple()));
        let path = path.to_str().unwrap().to_owned();
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x INTEGER);")
            .unwrap();
        (path, conn)
    }

    #[test]
    fn a_commit_by_another_connection_is_noticed_once() {
        let (path, other) = wal_db();
        let probe = ChangeProbe::open(&path).unwrap();
        assert!(!probe.changed());
        for _ in 0..3 {
            other.execute("INSERT INTO t VALUES (1)", []).unwrap();
            assert!(probe.changed());
            assert!(!probe.changed(), "reported once");
            assert!(!probe.changed_exact());
        }
        other.execute("INSERT INTO t VALUES (2)", []).unwrap();
        assert!(probe.changed_exact());
        assert!(!probe.changed());
        drop(other);
        let _ = std::fs::remove_file(&path);
    }
}
