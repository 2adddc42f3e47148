//! The audit trail's table: appending a batch, one filtered page newest
//! first, and pruning what is past retention.

use chrono::{DateTime, NaiveDateTime, SubsecRound as _, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::pool::DbConnection;
use super::schema::audit_events;
use super::{AuditEntry, AuditFilter, DbError, StoredAuditEntry};

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct NewRow {
    at: NaiveDateTime,
    action: String,
    actor: String,
    actor_user_id: Option<String>,
    actor_session_id: Option<String>,
    target_user_id: Option<String>,
    target_session_id: Option<String>,
    client_ip: Option<String>,
    user_agent: Option<String>,
    details: String,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_events)]
struct Row {
    id: i64,
    at: NaiveDateTime,
    action: String,
    actor: String,
    actor_user_id: Option<String>,
    actor_session_id: Option<String>,
    target_user_id: Option<String>,
    target_session_id: Option<String>,
    client_ip: Option<String>,
    user_agent: Option<String>,
    details: String,
}

impl From<&AuditEntry> for NewRow {
    fn from(e: &AuditEntry) -> Self {
        NewRow {
            // Microseconds, so a value reads back alike from both backends.
            at: e.at.naive_utc().trunc_subsecs(6),
            action: e.action.clone(),
            actor: e.actor.clone(),
            actor_user_id: e.actor_user_id.map(|id| id.to_string()),
            actor_session_id: e.actor_session_id.clone(),
            target_user_id: e.target_user_id.map(|id| id.to_string()),
            target_session_id: e.target_session_id.clone(),
            client_ip: e.client_ip.clone(),
            user_agent: e.user_agent.clone(),
            details: e.details.to_string(),
        }
    }
}

impl Row {
    /// A stored id that is not a UUID (a manual edit) reads as no id rather
    /// than hiding the whole page; details that are not JSON read as a string.
    fn into_entry(self) -> StoredAuditEntry {
        let id = |raw: Option<String>| raw.and_then(|r| Uuid::parse_str(&r).ok());
        StoredAuditEntry {
            id: self.id,
            entry: AuditEntry {
                at: self.at.and_utc(),
                action: self.action,
                actor: self.actor,
                actor_user_id: id(self.actor_user_id),
                actor_session_id: self.actor_session_id,
                target_user_id: id(self.target_user_id),
                target_session_id: self.target_session_id,
                client_ip: self.client_ip,
                user_agent: self.user_agent,
                details: serde_json::from_str(&self.details)
                    .unwrap_or(serde_json::Value::String(self.details)),
            },
        }
    }
}

/// Appends `entries` in one transaction: all or none. One `INSERT` per row,
/// since multi-row `VALUES` is not available through `MultiConnection`; in
/// one transaction that is still one commit (one fsync on SQLite).
pub(super) fn append(conn: &mut DbConnection, entries: &[AuditEntry]) -> Result<(), DbError> {
    conn.transaction(|conn| {
        for entry in entries {
            diesel::insert_into(audit_events::table)
                .values(NewRow::from(entry))
                .execute(conn)?;
        }
        Ok(())
    })
}

type Boxed<'a> = audit_events::BoxedQuery<'a, <DbConnection as diesel::Connection>::Backend>;

fn filtered(filter: &AuditFilter) -> Boxed<'static> {
    let mut query = audit_events::table.into_boxed();
    if let Some(user) = filter.user_id {
        let user = user.to_string();
        query = query.filter(
            audit_events::target_user_id
                .eq(user.clone())
                .or(audit_events::actor_user_id.eq(user)),
        );
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_events::action.eq(action.clone()));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_events::at.ge(since.naive_utc()));
    }
    query
}

/// How many entries match, and those at `offset..offset+limit`, newest first.
pub(super) fn page(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    offset: usize,
    limit: usize,
) -> Result<(i64, Vec<StoredAuditEntry>), DbError> {
    let total: i64 = filtered(filter).count().get_result(conn)?;
    let rows: Vec<Row> = filtered(filter)
        .order((audit_events::at.desc(), audit_events::id.desc()))
        .offset(offset as i64)
        .limit(limit as i64)
        .select(Row::as_select())
        .load(conn)?;
    Ok((total, rows.into_iter().map(Row::into_entry).collect()))
}

/// Deletes entries older than `before`; returns how many.
pub(super) fn prune(conn: &mut DbConnection, before: DateTime<Utc>) -> Result<usize, DbError> {
    Ok(
        diesel::delete(audit_events::table.filter(audit_events::at.lt(before.naive_utc())))
            .execute(conn)?,
    )
}
