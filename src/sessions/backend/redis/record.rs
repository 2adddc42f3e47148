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

/// Builds a session from its `HGETALL` and `PTTL` replies.
///
/// `seen`, `ip` and `ua` are optional: sessions stored by an older version
/// lack them, and must keep working across an upgrade.
pub(super) fn parse_session(
    hash: &Value,
    pttl: &Value,
    now_ms: i64,
) -> Result<Option<StoredSession>, StoreError> {
    let fields: HashMap<String, String> = redis::from_redis_value_ref(hash)
        .map_err(|_| StoreError::Corrupt("session key is not a hash of strings".into()))?;
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
