//! Users linked to an OpenID Connect provider's account by (issuer, `sub`):
//! the row model and its queries.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use uuid::Uuid;

use super::pool::DbConnection;
use super::schema::user_identities;
use super::users::{self, now, parse_id};
use super::{DbError, LinkedIdentity, UserRecord};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = user_identities)]
struct IdentityRow {
    issuer: String,
    subject: String,
    user_id: String,
    provider: String,
    created_at: chrono::NaiveDateTime,
}

/// The user linked to (issuer, subject), if any.
pub(super) fn find_user_id(
    conn: &mut DbConnection,
    issuer: &str,
    subject: &str,
) -> Result<Option<Uuid>, DbError> {
    let id: Option<String> = user_identities::table
        .filter(user_identities::issuer.eq(issuer))
        .filter(user_identities::subject.eq(subject))
        .select(user_identities::user_id)
        .first(conn)
        .optional()?;
    id.as_deref().map(parse_id).transpose()
}

/// Creates a user without a password, holding `roles`, linked to `identity`;
/// all or nothing. `UsernameTaken` if the name is taken (regardless of
/// case), `IdentityTaken` if another sign-in linked the identity meanwhile.
pub(super) fn create_linked(
    conn: &mut DbConnection,
    username: &str,
    roles: &[String],
    identity: &LinkedIdentity,
) -> Result<UserRecord, DbError> {
    conn.transaction(|conn| {
        // An empty hash: no password verifies against it (auth::routes).
        let user = users::create(conn, username, "", roles)?;
        diesel::insert_into(user_identities::table)
            .values(IdentityRow {
                issuer: identity.issuer.clone(),
                subject: identity.subject.clone(),
                user_id: user.id.to_string(),
                provider: identity.provider.clone(),
                created_at: now(),
            })
            .execute(conn)
            .map_err(|e| match e {
                DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                    DbError::IdentityTaken
                }
                other => other.into(),
            })?;
        Ok(user)
    })
}

/// The identities linked to each of `ids` (for `tether users list`).
pub(super) fn of_users(
    conn: &mut DbConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<LinkedIdentity>>, DbError> {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let mut found: HashMap<Uuid, Vec<LinkedIdentity>> = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<IdentityRow> = user_identities::table
            .filter(user_identities::user_id.eq_any(chunk))
            .order((user_identities::provider, user_identities::subject))
            .select(IdentityRow::as_select())
            .load(conn)?;
        for row in rows {
            found
                .entry(parse_id(&row.user_id)?)
                .or_default()
                .push(LinkedIdentity {
                    provider: row.provider,
                    issuer: row.issuer,
                    subject: row.subject,
                });
        }
    }
    Ok(found)
}
