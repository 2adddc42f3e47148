//! What a user may do *right now*, without a database query per request or
//! per WebSocket message.
//!
//! Users' roles and permissions are cached here. Every change to a user goes
//! through the event bus (`Event::UserChanged`), which calls `invalidate`
//! before the change is reported done (locally at once; on other instances
//! before they acknowledge). `generation` moves on every invalidation, so a
//! socket holding a snapshot notices with one atomic load per message.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    db::{Db, DbError, UserRecord},
    domain::{Permission, PermissionSet},
};

/// A user's identity and current permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAccess {
    pub id: Uuid,
    pub username: String,
    pub roles: Vec<String>,
    pub permissions: PermissionSet,
    pub disabled: bool,
}

impl UserAccess {
    pub fn can(&self, permission: Permission) -> bool {
        !self.disabled && self.permissions.contains(permission)
    }

    /// The `user` object of the API and of the socket's `hello`.
    pub fn to_json(&self) -> UserJson {
        UserJson {
            id: self.id,
            username: self.username.clone(),
            roles: self.roles.clone(),
            permissions: self
                .permissions
                .names()
                .into_iter()
                .map(Into::into)
                .collect(),
        }
    }
}

impl From<UserRecord> for UserAccess {
    fn from(r: UserRecord) -> Self {
        Self {
            id: r.id,
            username: r.username,
            roles: r.roles,
            permissions: r.permissions,
            disabled: r.disabled,
        }
    }
}

/// The `user` object: `{"id","username","roles","permissions"}`, the
/// permissions sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = User)]
pub struct UserJson {
    pub id: Uuid,
    /// As it was typed when the user was created; matched regardless of case.
    pub username: String,
    pub roles: Vec<String>,
    /// The union of the permissions of the user's current roles, sorted.
    #[schema(example = json!(["chat:read", "chat:write"]))]
    pub permissions: Vec<String>,
}

/// `{"user":USER,"session":SESSION}`: `GET /api/auth/me`, and on the socket
/// the `whoami` reply and the `hello` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    pub user: UserJson,
    pub session: crate::sessions::SessionJson,
}

/// How often cached access is compared with the user store; with the time
/// one comparison takes, the most a permission change can lag on an
/// instance that missed its announcement.
pub const RECHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// Users read per query by [`AccessCache::recheck`].
const RECHECK_BATCH: usize = 500;

pub struct AccessCache {
    db: Db,
    entries: RwLock<HashMap<Uuid, Arc<UserAccess>>>,
    generation: AtomicU64,
}

impl AccessCache {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            entries: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// Moves on every invalidation. When the user store is watched for other
    /// processes' commits (SQLite without Redis), this first asks whether one
    /// happened, and if so forgets everything.
    pub fn generation(&self) -> u64 {
        if self.db.changed_elsewhere() {
            self.invalidate_all();
        }
        self.generation.load(Ordering::Acquire)
    }

    /// The user's current access; `None` if the user no longer exists.
    pub async fn get(&self, id: Uuid) -> Result<Option<Arc<UserAccess>>, DbError> {
        if let Some(hit) = self.read().get(&id) {
            return Ok(Some(hit.clone()));
        }
        let before = self.generation();
        let Some(record) = self.db.find_user(id).await? else {
            return Ok(None);
        };
        let access = Arc::new(UserAccess::from(record));
        // If an invalidation raced with the query, the row read may predate it:
        // use it for this request, but do not cache it.
        if self.generation() == before {
            self.write().insert(id, access.clone());
        }
        Ok(Some(access))
    }

    /// Asks the user store directly (no shortcut) whether another process
    /// changed it, and if so forgets everything. For a periodic check.
    pub fn sync_exact(&self) {
        if self.db.changed_elsewhere_exact() {
            self.invalidate_all();
        }
    }

    /// Compares what is cached (and the users in `also`, e.g. those with open
    /// sockets) with the user store, and forgets every entry that differs.
    /// Returns the users whose access changed or who are gone, so their
    /// sockets can re-read. This bounds how stale a cached permission set can
    /// get when an announcement is lost ([`crate::ws::live`] runs it every
    /// [`RECHECK_EVERY`]). If the store does not answer, everything cached is
    /// forgotten: nothing is trusted past the bound.
    pub async fn recheck(&self, also: &[Uuid]) -> Result<Vec<Uuid>, DbError> {
        let cached: HashMap<Uuid, Arc<UserAccess>> = self.read().clone();
        let mut ids: Vec<Uuid> = cached.keys().chain(also).copied().collect();
        ids.sort_unstable();
        ids.dedup();
        let mut current = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(RECHECK_BATCH) {
            match self.db.find_users(chunk).await {
                Ok(records) => current.extend(records.into_iter().map(|r| (r.id, r))),
                Err(e) => {
                    self.invalidate_all();
                    return Err(e);
                }
            }
        }
        let mut changed = Vec::new();
        for id in ids {
            let now = current.remove(&id).map(UserAccess::from);
            match (cached.get(&id), now) {
                (Some(was), Some(now)) if **was == now => {}
                (Some(_), _) => {
                    self.invalidate(id);
                    changed.push(id);
                }
                // Not cached: whoever holds it re-reads (and caches) it.
                (None, _) => changed.push(id),
            }
        }
        Ok(changed)
    }

    pub fn invalidate(&self, id: Uuid) {
        self.write().remove(&id);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn invalidate_all(&self) {
        self.write().clear();
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Uuid, Arc<UserAccess>>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Uuid, Arc<UserAccess>>> {
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }
}
