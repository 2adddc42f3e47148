//! Users and their roles: the row models and the queries over them.
//!
//! Every function here is synchronous and takes a pooled connection; the async
//! wrappers in `db/mod.rs` run them on the blocking pool.

use std::collections::{BTreeSet, HashMap};

use chrono::{NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::Text;
use uuid::Uuid;

use super::last_admin;
use super::pool::DbConnection;
use super::schema::{role_permissions, roles, user_roles, users};
use super::{Credentials, DbError, UserRecord};
use crate::domain::{Permission, PermissionSet};

diesel::define_sql_function! {
    /// SQL `lower(text)`. Names are ASCII (`Username`), which both backends
    /// lower-case alike; the unique index `users_username_folded` is on it.
    fn lower(x: Text) -> Text;
}

/// `username` as the folded unique index holds it, so lookups use the index.
fn folded(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// Most ids bound into one `IN (…)`; SQLite and PostgreSQL both cap the
/// number of bind parameters per statement.
const IDS_PER_QUERY: usize = 500;

/// A `users` row without the password hash, which only sign-in reads.
#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
struct UserRow {
    id: String,
    username: String,
    disabled: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUser<'a> {
    id: &'a str,
    username: &'a str,
    password_hash: &'a str,
    disabled: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

/// The current time as stored: UTC, truncated to microseconds so a value
/// reads back identically from PostgreSQL and SQLite.
pub(super) fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// Every role name the store knows.
pub(super) fn role_names(conn: &mut DbConnection) -> Result<Vec<String>, DbError> {
    Ok(roles::table
        .select(roles::name)
        .order(roles::name)
        .load(conn)?)
}

pub(super) fn count(conn: &mut DbConnection) -> Result<i64, DbError> {
    Ok(users::table.count().get_result(conn)?)
}

pub(super) fn find_credentials(
    conn: &mut DbConnection,
    username: &str,
) -> Result<Option<Credentials>, DbError> {
    let row: Option<(String, String, bool)> = users::table
        .filter(lower(users::username).eq(folded(username)))
        .select((users::id, users::password_hash, users::disabled))
        .first(conn)
        .optional()?;
    row.map(|(id, password_hash, disabled)| {
        Ok(Credentials {
            user_id: parse_id(&id)?,
            password_hash,
            disabled,
        })
    })
    .transpose()
}

pub(super) fn find_by_id(conn: &mut DbConnection, id: Uuid) -> Result<Option<UserRecord>, DbError> {
    let row = users::table
        .filter(users::id.eq(id.to_string()))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?;
    Ok(with_roles(conn, row.into_iter().collect())?.pop())
}

pub(super) fn find_by_username(
    conn: &mut DbConnection,
    username: &str,
) -> Result<Option<UserRecord>, DbError> {
    let row = users::table
        .filter(lower(users::username).eq(folded(username)))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?;
    Ok(with_roles(conn, row.into_iter().collect())?.pop())
}

/// The users among `ids` that exist, ordered by username (ignoring case).
pub(super) fn find_many(conn: &mut DbConnection, ids: &[Uuid]) -> Result<Vec<UserRecord>, DbError> {
    let ids: BTreeSet<String> = ids.iter().map(Uuid::to_string).collect();
    let ids: Vec<String> = ids.into_iter().collect();
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_QUERY) {
        rows.extend(
            users::table
                .filter(users::id.eq_any(chunk))
                .select(UserRow::as_select())
                .load(conn)?,
        );
    }
    rows.sort_by_cached_key(|row| folded(&row.username));
    with_roles(conn, rows)
}

pub(super) fn list(conn: &mut DbConnection) -> Result<Vec<UserRecord>, DbError> {
    let rows = users::table
        .order(lower(users::username))
        .select(UserRow::as_select())
        .load(conn)?;
    with_roles(conn, rows)
}

/// Creates a user holding `roles` (sorted, distinct). All or nothing.
pub(super) fn create(
    conn: &mut DbConnection,
    username: &str,
    password_hash: &str,
    roles: &[String],
) -> Result<UserRecord, DbError> {
    let id = Uuid::new_v4();
    let id_text = id.to_string();
    let now = now();
    // Write first, then check the roles: on SQLite a transaction that reads
    // before its first write fails at once ("database is locked") if
    // another connection commits meanwhile (the audit writer, the CLI); one
    // that writes first waits its turn for the lock instead.
    conn.transaction(|conn| {
        diesel::insert_into(users::table)
            .values(NewUser {
                id: &id_text,
                username,
                password_hash,
                disabled: false,
                created_at: now,
                updated_at: now,
            })
            .execute(conn)
            .map_err(|e| match e {
                // The id is a fresh v4 UUID, so the only unique key that can
                // clash is the username, regardless of case (also under a
                // concurrent create).
                DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                    DbError::UsernameTaken
                }
                other => other.into(),
            })?;
        ensure_roles_exist(conn, roles)?;
        grant(conn, &id_text, roles)?;
        find_by_id(conn, id)?.ok_or(DbError::NotFound)
    })
}

/// Replaces the user's roles with `roles` (sorted, distinct). All or nothing;
/// `LastAdministrator` if nobody would hold `admin:users` any more.
pub(super) fn set_roles(
    conn: &mut DbConnection,
    id: Uuid,
    roles: &[String],
) -> Result<UserRecord, DbError> {
    let id_text = id.to_string();
    conn.transaction(|conn| {
        last_admin::serialize(conn)?;
        touch(conn, &id_text)?;
        let administrators = last_admin::administrators(conn)?;
        ensure_roles_exist(conn, roles)?;
        diesel::delete(user_roles::table.filter(user_roles::user_id.eq(&id_text))).execute(conn)?;
        grant(conn, &id_text, roles)?;
        last_admin::still_administered(conn, &administrators, &id_text)?;
        find_by_id(conn, id)?.ok_or(DbError::NotFound)
    })
}

/// Sets the disabled flag; `LastAdministrator` (and nothing changed) if
/// nobody would hold `admin:users` any more.
pub(super) fn set_disabled(
    conn: &mut DbConnection,
    id: Uuid,
    disabled: bool,
) -> Result<UserRecord, DbError> {
    let id_text = id.to_string();
    conn.transaction(|conn| {
        last_admin::serialize(conn)?;
        touch(conn, &id_text)?;
        let administrators = last_admin::administrators(conn)?;
        diesel::update(users::table.filter(users::id.eq(&id_text)))
            .set(users::disabled.eq(disabled))
            .execute(conn)?;
        last_admin::still_administered(conn, &administrators, &id_text)?;
        find_by_id(conn, id)?.ok_or(DbError::NotFound)
    })
}

pub(super) fn set_password_hash(
    conn: &mut DbConnection,
    id: Uuid,
    password_hash: &str,
) -> Result<(), DbError> {
    let updated = diesel::update(users::table.filter(users::id.eq(id.to_string())))
        .set((
            users::password_hash.eq(password_hash),
            users::updated_at.eq(now()),
        ))
        .execute(conn)?;
    if updated == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Bumps `updated_at`, and in doing so checks the user exists (and, on
/// SQLite, takes the database's write lock for the rest of the transaction).
fn touch(conn: &mut DbConnection, id: &str) -> Result<(), DbError> {
    let updated = diesel::update(users::table.filter(users::id.eq(id)))
        .set(users::updated_at.eq(now()))
        .execute(conn)?;
    if updated == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Checked up front, inside the caller's transaction, so the error can name
/// the missing role (a foreign-key violation would not say which).
fn ensure_roles_exist(conn: &mut DbConnection, wanted: &[String]) -> Result<(), DbError> {
    if wanted.is_empty() {
        return Ok(());
    }
    let known: BTreeSet<String> = roles::table
        .filter(roles::name.eq_any(wanted))
        .select(roles::name)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    match wanted.iter().find(|r| !known.contains(*r)) {
        Some(missing) => Err(DbError::UnknownRole(missing.clone())),
        None => Ok(()),
    }
}

/// One `INSERT … SELECT` however many roles: diesel's multi-row `VALUES`
/// is not available through `MultiConnection`.
fn grant(conn: &mut DbConnection, user_id: &str, roles: &[String]) -> Result<(), DbError> {
    if roles.is_empty() {
        return Ok(());
    }
    let rows = roles::table
        .filter(roles::name.eq_any(roles))
        .select((user_id.into_sql::<Text>(), roles::name));
    diesel::insert_into(user_roles::table)
        .values(rows)
        .into_columns((user_roles::user_id, user_roles::role))
        .execute(conn)?;
    Ok(())
}

/// Turns rows into records with their roles and permissions, in one query per
/// `IDS_PER_QUERY` users, keeping the order of `rows`.
fn with_roles(conn: &mut DbConnection, rows: Vec<UserRow>) -> Result<Vec<UserRecord>, DbError> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut grants: HashMap<String, (BTreeSet<String>, PermissionSet)> = HashMap::new();
    for chunk in ids.chunks(IDS_PER_QUERY) {
        // Left join: a role with no permissions still shows in `roles`.
        let found: Vec<(String, String, Option<String>)> = user_roles::table
            .left_join(role_permissions::table.on(role_permissions::role.eq(user_roles::role)))
            .filter(user_roles::user_id.eq_any(chunk))
            .select((
                user_roles::user_id,
                user_roles::role,
                role_permissions::permission.nullable(),
            ))
            .load(conn)?;
        for (user_id, role, permission) in found {
            let (roles, permissions) = grants.entry(user_id).or_default();
            if let Some(name) = permission {
                match Permission::parse(&name) {
                    Ok(p) => permissions.insert(p),
                    // A permission from a newer schema or a manual edit: the
                    // user simply does not get it from this binary.
                    Err(_) => log::warn!(
                        "unknown permission in user store permission={name:?} role={role:?}"
                    ),
                }
            }
            roles.insert(role);
        }
    }
    rows.into_iter()
        .map(|row| {
            let (roles, permissions) = grants.remove(&row.id).unwrap_or_default();
            Ok(UserRecord {
                id: parse_id(&row.id)?,
                username: row.username,
                disabled: row.disabled,
                roles: roles.into_iter().collect(),
                permissions,
                created_at: row.created_at.and_utc(),
                updated_at: row.updated_at.and_utc(),
            })
        })
        .collect()
}

pub(super) fn parse_id(text: &str) -> Result<Uuid, DbError> {
    Uuid::parse_str(text).map_err(|e| {
        DbError::Other(
            anyhow::Error::new(e)
                .context(format!("user id {text:?} in the database is not a UUID")),
        )
    })
}

/// Groups of stored names that are equal but for case, each sorted: what
/// stops the migration to case-insensitive names.
pub(super) fn names_differing_only_by_case(
    conn: &mut DbConnection,
) -> Result<Vec<Vec<String>>, DbError> {
    let mut groups: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for name in users::table.select(users::username).load::<String>(conn)? {
        groups.entry(folded(&name)).or_default().push(name);
    }
    Ok(groups
        .into_values()
        .filter(|names| names.len() > 1)
        .map(|mut names| {
            names.sort();
            names
        })
        .collect())
}
