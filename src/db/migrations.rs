//! The embedded migration sets, one per backend, and the code that applies them.

use diesel::migration::Migration;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::pool::DbConnection;
use super::{users, DbError};

/// Compiled into the binary so a deployment needs no migration files on disk.
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// The migration that makes usernames unique regardless of case.
const CASE_INSENSITIVE_USERNAMES: &str = "_case_insensitive_usernames";

/// Applies every pending migration for the connection's backend and returns
/// the versions applied (empty when the schema was already current).
pub(super) fn run_pending(conn: &mut DbConnection) -> Result<Vec<String>, DbError> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| {
        DbError::Other(anyhow::anyhow!(e).context("running migrations"))
    };
    // The harness is implemented per concrete connection, not for the
    // MultiConnection enum, so dispatch on the variant.
    let (pending, applied) = match conn {
        DbConnection::Postgres(c) => (
            names(c.pending_migrations(POSTGRES)),
            c.applied_migrations().map(|v| v.len()),
        ),
        DbConnection::Sqlite(c) => (
            names(c.pending_migrations(SQLITE)),
            c.applied_migrations().map(|v| v.len()),
        ),
    };
    let (pending, applied) = (pending.map_err(failed)?, applied.map_err(failed)?);
    // With nothing applied yet there is no user table, and no user.
    if applied > 0
        && pending
            .iter()
            .any(|n| n.ends_with(CASE_INSENSITIVE_USERNAMES))
    {
        refuse_names_differing_only_by_case(conn)?;
    }
    let applied = match conn {
        DbConnection::Postgres(c) => c
            .run_pending_migrations(POSTGRES)
            .map(|vs| vs.iter().map(ToString::to_string).collect()),
        DbConnection::Sqlite(c) => c
            .run_pending_migrations(SQLITE)
            .map(|vs| vs.iter().map(ToString::to_string).collect()),
    };
    applied.map_err(failed)
}

fn names<DB: diesel::backend::Backend>(
    pending: diesel::migration::Result<Vec<Box<dyn Migration<DB>>>>,
) -> diesel::migration::Result<Vec<String>> {
    Ok(pending?.iter().map(|m| m.name().to_string()).collect())
}

/// The unique index would fail on names that differ only by case, with a
/// message naming neither; stop first, naming every such group, and say how
/// to go on. Nothing is changed: the operator picks who keeps the name.
fn refuse_names_differing_only_by_case(conn: &mut DbConnection) -> Result<(), DbError> {
    let groups = users::names_differing_only_by_case(conn)?;
    if groups.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = groups
        .iter()
        .map(|names| {
            let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
            quoted.join(" and ")
        })
        .collect();
    Err(DbError::Other(anyhow::anyhow!(
        "usernames are becoming case-insensitive, but these users' names differ only by case: \
         {}. Rename all but one of each group in the user store (e.g. UPDATE users SET \
         username = 'alice-2' WHERE username = 'Alice'), then start tether again",
        listed.join("; ")
    )))
}
