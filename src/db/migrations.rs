//! The embedded migration sets, one per backend, and the code that applies them.

use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::pool::DbConnection;
use super::DbError;

/// Compiled into the binary so a deployment needs no migration files on disk.
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Applies every pending migration for the connection's backend and returns
/// the versions applied (empty when the schema was already current).
pub(super) fn run_pending(conn: &mut DbConnection) -> Result<Vec<String>, DbError> {
    // The harness is implemented per concrete connection, not for the
    // MultiConnection enum, so dispatch on the variant.
    let applied = match conn {
        DbConnection::Postgres(c) => c
            .run_pending_migrations(POSTGRES)
            .map(|vs| vs.iter().map(ToString::to_string).collect()),
        DbConnection::Sqlite(c) => c
            .run_pending_migrations(SQLITE)
            .map(|vs| vs.iter().map(ToString::to_string).collect()),
    };
    applied.map_err(|e| DbError::Other(anyhow::anyhow!(e).context("running migrations")))
}
