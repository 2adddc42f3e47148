//! The session hash's fields, to and from Rust (see the key layout in the
//! parent module). Error messages name fields, never their contents: the
//! state may hold anything.

use std::collections::HashMap;

use redis::Value;
use uuid::Uuid;

use crate::sessions::backend::{SessionState, StoreError, StoredSession};

pub(super) fn encode_state(state: &SessionState) -> Result<String, StoreError> {
    // Serializing a map of strings cannot fail; stay total anyway.
    serde_json::to_string(state)
        .map_err(|e| StoreError::Corrupt(format!("session state not serializable: {e}")))
}

/// The session hash's fields, in the order `HMGET` asks for them. Reading
/// only the values (not `HGETALL`'s names and values) halves the reply the
/// client parses on every authenticated request (measured with callgrind).
pub(super) const FIELDS: [&str; 8] = ["state", "uid", "created", "abs", "seen", "exp", "ip", "ua"];

/// A session as its hash holds it.
pub(super) enum Record {
    /// Absent, or past its absolute deadline.
    Gone,
    Live(StoredSession),
    /// Stored by a version that kept no `exp`: `expires_at_ms` is still the
    /// absolute deadline, to be narrowed by the key's TTL ([`with_ttl`]).
    LacksExpiry(StoredSession),
}

/// Builds a session from its `HMGET` (of [`FIELDS`]) reply.
///
/// `seen`, `exp`, `ip` and `ua` are optional: sessions stored by an older
/// version lack them, and must keep working across an upgrade. One `HMGET`
/// is atomic, so a delete or refresh racing it is seen wholly or not at all.
pub(super) fn parse_session(values: &Value, now_ms: i64) -> Result<Record, StoreError> {
    let values: Vec<Option<String>> = redis::from_redis_value_ref(values)
        .map_err(|_| StoreError::Corrupt("session key is not a hash of strings".into()))?;
    if values.len() != FIELDS.len() {
        return Err(StoreError::Corrupt(format!(
            "expected {} session fields from Redis, got {}",
            FIELDS.len(),
            values.len()
        )));
    }
    let fields: HashMap<&str, String> = FIELDS
        .iter()
        .zip(values)
        .filter_map(|(name, value)| Some((*name, value?)))
        .collect();
    if fields.is_empty() {
        return Ok(Record::Gone);
    }
    let field = |name: &str| {
        fields
            .get(name)
            .ok_or_else(|| StoreError::Corrupt(format!("session hash lacks field `{name}`")))
    };
    let millis = |name: &str| {
        field(name)?.parse::<i64>().map_err(|_| {
            StoreError::Corrupt(format!("session hash field `{name}` is not an integer"))
        })
    };
    let absolute_deadline_ms = millis("abs")?;
    if absolute_deadline_ms <= now_ms {
        return Ok(Record::Gone);
    }
    let state: SessionState = serde_json::from_str(field("state")?).map_err(|_| {
        StoreError::Corrupt("session hash field `state` is not a JSON object of strings".into())
    })?;
    let user_id =
        match field("uid")?.as_str() {
            "" => None,
            uid => Some(Uuid::parse_str(uid).map_err(|_| {
                StoreError::Corrupt("session hash field `uid` is not a UUID".into())
            })?),
        };
    let created_at_ms = millis("created")?;
    let last_seen_ms = match fields.get("seen") {
        Some(_) => millis("seen")?,
        None => created_at_ms,
    };
    let expires_at_ms = match fields.get("exp") {
        Some(_) => Some(millis("exp")?.min(absolute_deadline_ms)),
        None => None,
    };
    let text = |name: &str| fields.get(name).filter(|v| !v.is_empty()).cloned();
    let session = StoredSession {
        state,
        user_id,
        created_at_ms,
        absolute_deadline_ms,
        expires_at_ms: expires_at_ms.unwrap_or(absolute_deadline_ms),
        last_seen_ms,
        client_ip: text("ip"),
        user_agent: text("ua"),
    };
    Ok(match expires_at_ms {
        Some(_) => Record::Live(session),
        None => Record::LacksExpiry(session),
    })
}

/// Completes a [`Record::LacksExpiry`] session with its key's `PTTL` reply,
/// read after the hash: `None` if the key is gone by then.
pub(super) fn with_ttl(
    mut session: StoredSession,
    pttl: &Value,
    now_ms: i64,
) -> Result<Option<StoredSession>, StoreError> {
    let pttl_ms: i64 = redis::from_redis_value_ref(pttl)
        .map_err(|_| StoreError::Corrupt("PTTL reply is not an integer".into()))?;
    match pttl_ms {
        -2 => Ok(None),
        // No TTL (-1) cannot come from this store; the deadline still bounds it.
        -1 => Ok(Some(session)),
        ttl => {
            session.expires_at_ms = now_ms.saturating_add(ttl).min(session.absolute_deadline_ms);
            Ok(Some(session))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `HMGET` reply for a hash holding `fields`.
    fn hash(fields: &[(&str, &str)]) -> Value {
        Value::Array(
            FIELDS
                .iter()
                .map(|name| match fields.iter().find(|(k, _)| k == name) {
                    Some((_, v)) => Value::BulkString(v.as_bytes().to_vec()),
                    None => Value::Nil,
                })
                .collect(),
        )
    }

    fn session_hash() -> Value {
        hash(&[
            ("state", "{}"),
            ("uid", ""),
            ("created", "1000"),
            ("abs", "100000"),
            ("seen", "2000"),
            ("exp", "62000"),
        ])
    }

    fn live(record: Record) -> StoredSession {
        match record {
            Record::Live(session) => session,
            _ => panic!("expected a live session"),
        }
    }

    #[test]
    fn a_hash_reads_as_a_session_expiring_at_exp() {
        let now = 5000;
        let session = live(parse_session(&session_hash(), now).unwrap());
        assert_eq!(
            (
                session.created_at_ms,
                session.last_seen_ms,
                session.expires_at_ms
            ),
            (1000, 2000, 62_000)
        );
        // Gone, or past its absolute deadline.
        assert!(matches!(parse_session(&hash(&[]), now), Ok(Record::Gone)));
        assert!(matches!(
            parse_session(&session_hash(), 100_000),
            Ok(Record::Gone)
        ));
        // An `exp` past `abs` (an operator's edit) is bounded by `abs`.
        let mut fields = vec![
            ("state", "{}"),
            ("uid", ""),
            ("created", "1000"),
            ("abs", "100000"),
        ];
        fields.push(("exp", "200000"));
        let session = live(parse_session(&hash(&fields), now).unwrap());
        assert_eq!(session.expires_at_ms, 100_000);
        // Unreadable fields are corrupt records, not absent ones.
        fields.push(("seen", "soon"));
        assert!(matches!(
            parse_session(&hash(&fields), now),
            Err(StoreError::Corrupt(_))
        ));
    }

    /// Sessions of an older version lack `seen`, `exp`, `ip` and `ua`: they
    /// take their expiry from the key's TTL, read after the hash, and a key
    /// gone by then reads as gone.
    #[test]
    fn a_session_of_an_older_version_takes_its_expiry_from_the_ttl() {
        let now = 5000;
        let old = hash(&[
            ("state", "{}"),
            ("uid", ""),
            ("created", "1000"),
            ("abs", "100000"),
        ]);
        let Ok(Record::LacksExpiry(session)) = parse_session(&old, now) else {
            panic!("expected a record without expiry");
        };
        assert_eq!(
            (session.last_seen_ms, session.client_ip.clone()),
            (1000, None)
        );
        let timed = with_ttl(session.clone(), &Value::Int(30_000), now).unwrap();
        assert_eq!(timed.unwrap().expires_at_ms, 35_000);
        let bounded = with_ttl(session.clone(), &Value::Int(500_000), now).unwrap();
        assert_eq!(bounded.unwrap().expires_at_ms, 100_000);
        assert!(with_ttl(session, &Value::Int(-2), now).unwrap().is_none());
    }
}
