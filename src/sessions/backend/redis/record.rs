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
/// client parses on every authenticated request (issue 5, callgrind).
pub(super) const FIELDS: [&str; 7] = ["state", "uid", "created", "abs", "seen", "ip", "ua"];

/// Builds a session from its `HMGET` (of [`FIELDS`]) and `PTTL` replies.
///
/// `seen`, `ip` and `ua` are optional: sessions stored by an older version
/// lack them, and must keep working across an upgrade.
pub(super) fn parse_session(
    values: &Value,
    pttl: &Value,
    now_ms: i64,
) -> Result<Option<StoredSession>, StoreError> {
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
    let pttl_ms: i64 = redis::from_redis_value_ref(pttl)
        .map_err(|_| StoreError::Corrupt("PTTL reply is not an integer".into()))?;
    if fields.is_empty() || pttl_ms == -2 {
        return Ok(None);
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
        return Ok(None);
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
    // No TTL (-1) cannot come from this store; the deadline still bounds it.
    let expires_at_ms = if pttl_ms >= 0 {
        now_ms.saturating_add(pttl_ms).min(absolute_deadline_ms)
    } else {
        absolute_deadline_ms
    };
    let created_at_ms = millis("created")?;
    let last_seen_ms = match fields.get("seen") {
        Some(_) => millis("seen")?,
        None => created_at_ms,
    };
    let text = |name: &str| fields.get(name).filter(|v| !v.is_empty()).cloned();
    Ok(Some(StoredSession {
        state,
        user_id,
        created_at_ms,
        absolute_deadline_ms,
        expires_at_ms,
        last_seen_ms,
        client_ip: text("ip"),
        user_agent: text("ua"),
    }))
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
        ])
    }

    /// The hash and the TTL are read in one pipeline but not atomically, so
    /// every pair of replies a concurrent delete, expiry or refresh can leave
    /// must read sensibly, and a session that is gone must read as gone.
    #[test]
    fn replies_read_between_a_change_read_safely() {
        let now = 5000;
        let live = parse_session(&session_hash(), &Value::Int(30_000), now).unwrap();
        assert_eq!(live.unwrap().expires_at_ms, 35_000);
        // Deleted or expired after HMGET: PTTL says the key is gone.
        assert!(parse_session(&session_hash(), &Value::Int(-2), now)
            .unwrap()
            .is_none());
        // Gone before HMGET.
        assert!(parse_session(&hash(&[]), &Value::Int(-2), now)
            .unwrap()
            .is_none());
        assert!(parse_session(&hash(&[]), &Value::Int(30_000), now)
            .unwrap()
            .is_none());
        // A session of an older version, without `seen`, `ip` and `ua`.
        let old = hash(&[
            ("state", "{}"),
            ("uid", ""),
            ("created", "1000"),
            ("abs", "100000"),
        ]);
        let old = parse_session(&old, &Value::Int(30_000), now)
            .unwrap()
            .unwrap();
        assert_eq!((old.last_seen_ms, old.client_ip), (1000, None));
        // Past its absolute deadline: gone whatever the TTL.
        assert!(parse_session(&session_hash(), &Value::Int(30_000), 100_000)
            .unwrap()
            .is_none());
    }
}
