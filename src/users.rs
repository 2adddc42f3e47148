//! User management: the service functions the CLI and the admin API call.
//! Every change is announced on the event bus and waits until every instance
//! has applied it; changes that take rights away also end sessions.

use uuid::Uuid;

use crate::auth::{CurrentSession, Hasher};
use crate::{
    db::{Db, DbError, UserRecord},
    domain::{EndReason, Password, RoleName, Username},
    error::ApiError,
    events::Event,
    sessions::Sessions,
};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("no such user: {0}")]
    NoSuchUser(String),
    /// Self-service password change with the wrong current password.
    #[error("current password is incorrect")]
    WrongPassword,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Store(#[from] crate::sessions::backend::StoreError),
    #[error(transparent)]
    Hash(#[from] crate::auth::HashError),
    /// The change was made but could not be announced to other instances.
    #[error(transparent)]
    Bus(#[from] crate::events::BusError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The one HTTP mapping of user-management failures. A wrong current password
/// is 400, not 401: the caller is still signed in.
impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::NoSuchUser(_) => ApiError::NotFound,
            UserError::WrongPassword => ApiError::BadRequest(e.to_string()),
            UserError::Db(e) => e.into(),
            UserError::Store(e) => e.into(),
            UserError::Bus(e) => ApiError::Unavailable(e.into()),
            UserError::Hash(e) => e.into(),
            UserError::Other(e) => ApiError::Internal(e),
        }
    }
}

/// Creates a user; the password is hashed with argon2id (CLI, bootstrap).
pub async fn add_user(
    db: &Db,
    username: &Username,
    password: Password,
    roles: &[RoleName],
) -> Result<UserRecord, UserError> {
    let hash = tokio::task::spawn_blocking(move || crate::auth::password::hash_blocking(&password))
        .await
        .map_err(anyhow::Error::from)??;
    Ok(db.create_user(username, &hash, roles).await?)
}

async fn find(db: &Db, username: &Username) -> Result<UserRecord, UserError> {
    db.find_user_by_username(username)
        .await?
        .ok_or_else(|| UserError::NoSuchUser(username.to_string()))
}

/// As [`add_user`], hashing on the server's bounded hasher (admin API).
pub async fn create_user(
    db: &Db,
    hasher: &Hasher,
    username: &Username,
    password: Password,
    roles: &[RoleName],
) -> Result<UserRecord, UserError> {
    let hash = hasher.hash(password).await?;
    let user = db.create_user(username, &hash, roles).await?;
    log::info!("event=user_created user_id={} username={username}", user.id);
    Ok(user)
}

/// Replaces a user's roles. Returns once every instance uses the new set.
pub async fn set_roles(
    db: &Db,
    sessions: &Sessions,
    username: &Username,
    roles: &[RoleName],
) -> Result<UserRecord, UserError> {
    let user = find(db, username).await?;
    set_roles_by_id(db, sessions, user.id, roles).await
}

/// As [`set_roles`], for a user named by id.
pub async fn set_roles_by_id(
    db: &Db,
    sessions: &Sessions,
    id: Uuid,
    roles: &[RoleName],
) -> Result<UserRecord, UserError> {
    let updated = db.set_roles(id, roles).await.map_err(not_found(id))?;
    announce_change(sessions, updated.id).await?;
    log::info!(
        "event=user_roles_set user_id={id} roles={}",
        updated.roles.join(",")
    );
    Ok(updated)
}

/// Disables a user and ends every session they have, everywhere.
pub async fn disable(
    db: &Db,
    sessions: &Sessions,
    username: &Username,
) -> Result<UserRecord, UserError> {
    let user = find(db, username).await?;
    set_disabled(db, sessions, user.id, true).await
}

/// Sets a user's disabled flag. Disabling also ends every session of theirs,
/// everywhere (reason `disabled`); enabling only clears the flag.
pub async fn set_disabled(
    db: &Db,
    sessions: &Sessions,
    id: Uuid,
    disabled: bool,
) -> Result<UserRecord, UserError> {
    let updated = db.set_disabled(id, disabled).await.map_err(not_found(id))?;
    announce_change(sessions, id).await?;
    if disabled {
        sessions.revoke_user(id, EndReason::Disabled).await?;
    }
    log::info!("event=user_disabled_set user_id={id} disabled={disabled}");
    Ok(updated)
}

/// Sets a new password and ends every session of the user (reason
/// `password_changed`) except `keep`, the caller's own when they change
/// their own password.
pub async fn set_password(
    db: &Db,
    sessions: &Sessions,
    hasher: &Hasher,
    id: Uuid,
    password: Password,
    keep: Option<&str>,
) -> Result<(), UserError> {
    let hash = hasher.hash(password).await?;
    db.set_password_hash(id, &hash)
        .await
        .map_err(not_found(id))?;
    let reason = EndReason::PasswordChanged;
    let ended = match keep {
        Some(sid) => sessions.revoke_user_except(id, Some(sid), reason).await?,
        None => sessions.revoke_user(id, reason).await?,
    };
    log::info!("event=password_changed user_id={id} sessions_ended={ended}");
    Ok(())
}

/// A signed-in user changes their own password: `current` must match. Every
/// other session of theirs ends; `session` stays signed in.
pub async fn change_own_password(
    db: &Db,
    sessions: &Sessions,
    hasher: &Hasher,
    session: &CurrentSession,
    current: Password,
    new: Password,
) -> Result<(), UserError> {
    let id = session.user_id;
    let user = db
        .find_user(id)
        .await?
        .ok_or(UserError::NoSuchUser(id.to_string()))?;
    let username = Username::parse(&user.username).map_err(|e| anyhow::anyhow!(e))?;
    let hash = db
        .find_credentials(&username)
        .await?
        .map(|c| c.password_hash)
        // A user created through a provider has no password to check.
        .filter(|h| !h.is_empty());
    if hash.is_none() || !hasher.verify(current, hash).await? {
        log::info!("event=password_change_refused user_id={id}");
        return Err(UserError::WrongPassword);
    }
    set_password(db, sessions, hasher, id, new, Some(&session.sid)).await
}

/// `DbError::NotFound` for a user id becomes `NoSuchUser`.
fn not_found(id: Uuid) -> impl FnOnce(DbError) -> UserError {
    move |e| match e {
        DbError::NotFound => UserError::NoSuchUser(id.to_string()),
        other => UserError::Db(other),
    }
}

async fn announce_change(sessions: &Sessions, user_id: Uuid) -> Result<(), UserError> {
    sessions
        .bus
        .publish_and_wait(Event::UserChanged { user_id })
        .await?;
    Ok(())
}

/// Creates the first admin when the user store is empty, with
/// `TETHER_ADMIN_PASSWORD` or a random password printed once to the log.
/// Under the start-up lock: of instances starting together, one creates it.
/// Returns the admin if this call created it.
pub async fn bootstrap_admin(
    db: &Db,
    config: &crate::config::Config,
) -> Result<Option<UserRecord>, UserError> {
    use rand::distr::{Alphanumeric, SampleString};

    let lock = db.startup_lock().await?;
    let db: &Db = &lock;
    if db.count_users().await? > 0 {
        lock.release().await?;
        return Ok(None);
    }
    let username = &config.admin_username;
    let (password, generated) = match &config.admin_password {
        Some(p) => (p.clone(), false),
        None => {
            let raw = Alphanumeric.sample_string(&mut rand::rng(), 24);
            (
                Password::parse_new(raw).map_err(|e| anyhow::anyhow!(e))?,
                true,
            )
        }
    };
    let admin = RoleName::parse("admin").map_err(|e| anyhow::anyhow!(e))?;
    let created = match add_user(db, username, password.clone(), &[admin]).await {
        Ok(user) => {
            if generated {
                log::warn!(
                    "event=admin_created username={username} password={} note=\"generated; shown only this once; set TETHER_ADMIN_PASSWORD or change it\"",
                    password.expose()
                );
            } else {
                log::info!("event=admin_created username={username}");
            }
            Some(user)
        }
        // Created meanwhile by a process that takes no start-up lock
        // (`tether users add`, or an older tether during an upgrade).
        Err(UserError::Db(DbError::UsernameTaken)) => None,
        Err(e) => return Err(e),
    };
    lock.release().await?;
    Ok(created)
}
