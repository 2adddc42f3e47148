//! Someone must always be able to administer users: a change that would leave
//! no enabled user holding `admin:users` is refused, inside the transaction
//! that makes it, so two admins demoting each other at once cannot both win.

use std::collections::BTreeSet;

use diesel::prelude::*;

use super::pool::DbConnection;
use super::schema::{role_permissions, user_roles, users};
use super::DbError;
use crate::domain::Permission;

/// PostgreSQL transaction-level advisory lock taken by every change that can
/// take `admin:users` away: "tether" in ASCII, then 2 (the start-up lock is 1).
const ADMIN_CHANGE_LOCK_KEY: i64 = 0x7465_7468_6572_0002;

/// Makes the calling transaction the only one changing who administers.
/// PostgreSQL: the advisory lock above, until the transaction ends. SQLite
/// has one writer at a time; the caller's transaction must *write first*
/// (`touch`), so that it holds the write lock before it reads who is admin.
pub(super) fn serialize(conn: &mut DbConnection) -> Result<(), DbError> {
    match conn {
        DbConnection::Postgres(c) => {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<diesel::sql_types::BigInt, _>(ADMIN_CHANGE_LOCK_KEY)
                .execute(c)?;
        }
        DbConnection::Sqlite(_) => {}
    }
    Ok(())
}

/// Ids of the enabled users holding `admin:users` through any of their roles.
pub(super) fn administrators(conn: &mut DbConnection) -> Result<BTreeSet<String>, DbError> {
    Ok(users::table
        .inner_join(user_roles::table)
        .inner_join(role_permissions::table.on(role_permissions::role.eq(user_roles::role)))
        .filter(role_permissions::permission.eq(Permission::AdminUsers.as_str()))
        .filter(users::disabled.eq(false))
        .select(users::id)
        .distinct()
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// After a change to user `id` (who was among `before`), refuses it if
/// nobody administers any more. A store that had no administrator to begin
/// with is left to its other users to fix.
pub(super) fn still_administered(
    conn: &mut DbConnection,
    before: &BTreeSet<String>,
    id: &str,
) -> Result<(), DbError> {
    if before.contains(id) && administrators(conn)?.is_empty() {
        return Err(DbError::LastAdministrator);
    }
    Ok(())
}
