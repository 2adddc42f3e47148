//! Reading the session indexes: pages of sessions, newest first, and the
//! batched existence check behind the sockets' re-validation sweep.

use uuid::Uuid;

use super::{with_deadline, RedisBackend, READ_BATCH};
use crate::sessions::backend::{SessionPage, StoreError, StoredSession};

/// A page of the global index (or of `user_id`'s), latest deadline first.
///
/// `total` counts the index after pruning members past their deadline, so a
/// session deleted behind the store's back (raw `DEL`) still counts until a
/// listing reaches it; the page itself only ever holds live sessions, and is
/// refilled from further down the index when it meets such leftovers.
pub(super) async fn list_sessions(
    backend: &RedisBackend,
    user_id: Option<Uuid>,
    offset: usize,
    limit: usize,
    now_ms: i64,
) -> Result<SessionPage, StoreError> {
    let global = backend.sessions_index_key();
    let index = match user_id {
        Some(user_id) => backend.user_index_key(user_id),
        None => global.clone(),
    };
    // A leftover in a user's index is a leftover in the global one too.
    let indexes = match user_id {
        Some(_) => vec![index.clone(), global],
        None => vec![index.clone()],
    };
    let mut total = count_live_entries(backend, &index, now_ms).await?;
    let mut sessions: Vec<(String, StoredSession)> = Vec::with_capacity(limit.min(READ_BATCH));
    while sessions.len() < limit {
        // Leftovers dropped below shift later entries up into this range.
        let start = offset.saturating_add(sessions.len());
        let want = (limit - sessions.len()).min(READ_BATCH);
        let sids = newest_first(backend, &index, start, want).await?;
        if sids.is_empty() {
            break;
        }
        let exhausted = sids.len() < want;
        let fetched = backend.fetch(&sids, now_ms).await?;
        let mut stale = Vec::new();
        for (sid, session) in sids.into_iter().zip(fetched) {
            match session {
                Some(session) if user_id.is_none_or(|u| session.user_id == Some(u)) => {
                    sessions.push((sid, session));
                }
                _ => stale.push(sid),
            }
        }
        if !stale.is_empty() {
            total = total.saturating_sub(stale.len());
            unindex(backend, &indexes, &stale).await?;
        } else if exhausted {
            break;
        }
    }
    Ok(SessionPage { total, sessions })
}

/// Every live session of a user, oldest deadline first; entries whose
/// session is gone leave the user's index and the global one.
pub(super) async fn list_user_sessions(
    backend: &RedisBackend,
    user_id: Uuid,
    now_ms: i64,
) -> Result<Vec<(String, StoredSession)>, StoreError> {
    let index = backend.user_index_key(user_id);
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("ZREMRANGEBYSCORE")
        .arg(&index)
        .arg("-inf")
        .arg(now_ms)
        .ignore()
        .cmd("ZRANGE")
        .arg(&index)
        .arg(0)
        .arg(-1);
    let mut connection = backend.conn();
    let (sids,): (Vec<String>,) =
        with_deadline("read user index", pipe.query_async(&mut connection)).await?;

    let sessions = backend.fetch(&sids, now_ms).await?;
    let mut live = Vec::with_capacity(sids.len());
    let mut stale = Vec::new();
    for (sid, session) in sids.into_iter().zip(sessions) {
        match session {
            Some(session) if session.user_id == Some(user_id) => live.push((sid, session)),
            _ => stale.push(sid),
        }
    }
    let indexes = [index, backend.sessions_index_key()];
    unindex(backend, &indexes, &stale).await?;
    Ok(live)
}

/// Removes `sids` (entries whose session is gone) from each of `indexes`
/// (in one round trip; on a Cluster, one command per index's slot).
pub(super) async fn unindex(
    backend: &RedisBackend,
    indexes: &[String],
    sids: &[String],
) -> Result<(), StoreError> {
    if sids.is_empty() {
        return Ok(());
    }
    let connection = backend.conn();
    with_deadline(
        "prune session index",
        connection.per_key(indexes, |pipe, index| {
            pipe.cmd("ZREM").arg(index).arg(sids);
        }),
    )
    .await?;
    Ok(())
}

/// Drops members past their deadline, then counts the rest.
async fn count_live_entries(
    backend: &RedisBackend,
    index: &str,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("ZREMRANGEBYSCORE")
        .arg(index)
        .arg("-inf")
        .arg(now_ms)
        .ignore()
        .cmd("ZCARD")
        .arg(index);
    let mut connection = backend.conn();
    let (count,): (usize,) =
        with_deadline("count session index", pipe.query_async(&mut connection)).await?;
    Ok(count)
}

/// Up to `count` sids from position `start`, latest deadline first.
async fn newest_first(
    backend: &RedisBackend,
    index: &str,
    start: usize,
    count: usize,
) -> Result<Vec<String>, StoreError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let mut zrevrange = redis::cmd("ZREVRANGE");
    zrevrange
        .arg(index)
        .arg(start)
        .arg(start.saturating_add(count - 1));
    let mut connection = backend.conn();
    with_deadline("read session index", zrevrange.query_async(&mut connection)).await
}

/// For each sid, whether its session exists and is before its deadline.
///
/// Reads each hash's `abs` field (as cheap as `EXISTS`) rather than asking
/// `EXISTS`, so the absolute deadline is judged by `now_ms` like everywhere
/// else, not by Redis's clock. Pipelined in batches of [`READ_BATCH`] (on a
/// Cluster, grouped by hash slot within a batch).
pub(super) async fn existing(
    backend: &RedisBackend,
    sids: &[String],
    now_ms: i64,
) -> Result<Vec<bool>, StoreError> {
    let mut alive = Vec::with_capacity(sids.len());
    let connection = backend.conn();
    for batch in sids.chunks(READ_BATCH) {
        let keys: Vec<String> = batch.iter().map(|sid| backend.session_key(sid)).collect();
        let replies = with_deadline(
            "check sessions exist",
            connection.per_key(&keys, |pipe, key| {
                pipe.cmd("HGET").arg(key).arg("abs");
            }),
        )
        .await?;
        let deadlines: Vec<Option<String>> = redis::from_redis_value(redis::Value::Array(replies))
            .map_err(|_| StoreError::Corrupt("session deadlines are not strings".into()))?;
        // An unreadable deadline cannot be loaded either: treat it as gone.
        alive.extend(deadlines.into_iter().map(|abs| {
            abs.and_then(|abs| abs.parse::<i64>().ok())
                .is_some_and(|abs| abs > now_ms)
        }));
    }
    Ok(alive)
}
