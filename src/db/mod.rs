//! The user store: the only place diesel appears. Picks PostgreSQL or SQLite
//! from the URL, runs the embedded migrations, and answers typed queries.
//!
//! INTERFACE STUB — being implemented; signatures are the contract.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{PermissionSet, RoleName, Username};

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
        let _ = url;
        todo!()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database could not be reached (pool timeout, connection refused).
    #[error("user store unavailable: {0}")]
    Unavailable(#[source] anyhow::Error),
    #[error("not found")]
    NotFound,
    #[error("username already taken")]
    UsernameTaken,
    #[error("unknown role {0:?}")]
    UnknownRole(String),
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

/// What sign-in needs to check a password.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user_id: Uuid,
    pub password_hash: String,
    pub disabled: bool,
}

/// Handle to the user store; cheap to clone.
#[derive(Clone)]
pub struct Db {}

impl Db {
    pub fn connect(url: &str) -> Result<Db, DbError> {
        let _ = url;
        todo!()
    }
    pub fn backend(&self) -> Backend {
        todo!()
    }
    pub async fn run_migrations(&self) -> Result<Vec<String>, DbError> {
        todo!()
    }
    pub async fn ping(&self) -> Result<(), DbError> {
        todo!()
    }
    pub async fn count_users(&self) -> Result<i64, DbError> {
        todo!()
    }
    pub async fn find_credentials(
        &self,
        username: &Username,
    ) -> Result<Option<Credentials>, DbError> {
        let _ = username;
        todo!()
    }
    pub async fn find_user(&self, id: Uuid) -> Result<Option<UserRecord>, DbError> {
        let _ = id;
        todo!()
    }
    pub async fn find_user_by_username(
        &self,
        username: &Username,
    ) -> Result<Option<UserRecord>, DbError> {
        let _ = username;
        todo!()
    }
    pub async fn find_users(&self, ids: &[Uuid]) -> Result<Vec<UserRecord>, DbError> {
        let _ = ids;
        todo!()
    }
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, DbError> {
        todo!()
    }
    pub async fn create_user(
        &self,
        username: &Username,
        password_hash: &str,
        roles: &[RoleName],
    ) -> Result<UserRecord, DbError> {
        let _ = (username, password_hash, roles);
        todo!()
    }
    pub async fn set_roles(&self, id: Uuid, roles: &[RoleName]) -> Result<UserRecord, DbError> {
        let _ = (id, roles);
        todo!()
    }
    pub async fn set_disabled(&self, id: Uuid, disabled: bool) -> Result<UserRecord, DbError> {
        let _ = (id, disabled);
        todo!()
    }
    pub async fn set_password_hash(&self, id: Uuid, password_hash: &str) -> Result<(), DbError> {
        let _ = (id, password_hash);
        todo!()
    }
}
