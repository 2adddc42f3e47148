//! User management: the service functions the CLI calls today and the admin
//! API will call. Every change is announced on the event bus and, where it
//! takes rights away, waits until every instance has applied it.

use uuid::Uuid;

use crate::{
    db::{Db, DbError, UserRecord},
    domain::{Password, RoleName, Username},
    sessions::{EndReason, Event, Sessions},
};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("no such user: {0}")]
    NoSuchUser(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Store(#[from] crate::sessions::backend::StoreError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Creates a user; the password is hashed with argon2id.
pub async fn add_user(
    db: &Db,
    username: &Username,
    password: Password,
    roles: &[RoleName],
) -> Result<UserRecord, UserError> {
    let hash = tokio::task::spawn_blocking(move || super::password::hash_blocking(&password))
        .await
        .map_err(anyhow::Error::from)??;
    Ok(db.create_user(username, &hash, roles).await?)
}

async fn find(db: &Db, username: &Username) -> Result<UserRecord, UserError> {
    db.find_user_by_username(username)
        .await?
        .ok_or_else(|| UserError::NoSuchUser(username.to_string()))
}

/// Replaces a user's roles. Returns once every instance uses the new set.
pub async fn set_roles(
    db: &Db,
    sessions: &Sessions,
    username: &Username,
    roles: &[RoleName],
) -> Result<UserRecord, UserError> {
    let user = find(db, username).await?;
    let updated = db.set_roles(user.id, roles).await?;
    announce_change(sessions, updated.id).await?;
    Ok(updated)
}

/// Disables a user and ends every session they have, everywhere.
pub async fn disable(
    db: &Db,
    sessions: &Sessions,
    username: &Username,
) -> Result<UserRecord, UserError> {
    let user = find(db, username).await?;
    let updated = db.set_disabled(user.id, true).await?;
    announce_change(sessions, updated.id).await?;
    sessions
        .revoke_user(updated.id, EndReason::Disabled)
        .await?;
    Ok(updated)
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
pub async fn bootstrap_admin(db: &Db, config: &crate::config::Config) -> Result<(), UserError> {
    use rand::distr::{Alphanumeric, SampleString};
    use secrecy::ExposeSecret as _;

    if db.count_users().await? > 0 {
        return Ok(());
    }
    let username = Username::parse(&config.admin_username).map_err(|e| anyhow::anyhow!(e))?;
    let (raw, generated) = match &config.admin_password {
        Some(p) => (p.expose_secret().to_owned(), false),
        None => (Alphanumeric.sample_string(&mut rand::rng(), 24), true),
    };
    let password = Password::parse_new(raw.clone()).map_err(|e| anyhow::anyhow!(e))?;
    let admin = RoleName::parse("admin").map_err(|e| anyhow::anyhow!(e))?;
    match add_user(db, &username, password, &[admin]).await {
        Ok(_) if generated => log::warn!(
            "event=admin_created username={username} password={raw} note=\"generated; shown only this once; set TETHER_ADMIN_PASSWORD or change it\""
        ),
        Ok(_) => log::info!("event=admin_created username={username}"),
        // Another instance starting at the same time created it first.
        Err(UserError::Db(DbError::UsernameTaken)) => {}
        Err(e) => return Err(e),
    }
    Ok(())
}
