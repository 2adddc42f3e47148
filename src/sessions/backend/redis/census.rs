//! The socket census: each instance's count of open sockets per session,
//! under `{prefix}{census}:{instance}`, and `{prefix}{census}:instances`,
//! which says when each instance last recorded its census so stale ones are
//! ignored. `{census}` is a literal Cluster hash tag: every census key is in
//! one hash slot, so a census is replaced, and all of them read, in one
//! transaction or pipeline on a Cluster too.

use std::collections::HashMap;

use super::{with_deadline, RedisBackend, READ_BATCH};
use crate::sessions::backend::StoreError;

impl RedisBackend {
    fn census_key(&self, instance: &str) -> String {
        format!("{}{{census}}:{instance}", self.prefix)
    }

    fn instances_key(&self) -> String {
        format!("{}{{census}}:instances", self.prefix)
    }
}

/// Replaces `instance`'s census in one transaction (`DEL` then `HSET`, so
/// sessions whose sockets closed drop out), and marks the instance live.
pub(super) async fn record_sockets(
    backend: &RedisBackend,
    instance: &str,
    counts: &HashMap<String, usize>,
    ttl_ms: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    // PEXPIRE 0 would delete at once; a census must live at least a moment.
    let ttl_ms = ttl_ms.max(1);
    let census = backend.census_key(instance);
    let instances = backend.instances_key();
    let mut pipe = redis::pipe();
    pipe.atomic().cmd("DEL").arg(&census).ignore();
    let open: Vec<(&String, &usize)> = counts.iter().filter(|(_, &n)| n > 0).collect();
    if !open.is_empty() {
        pipe.cmd("HSET").arg(&census).arg(open).ignore();
        pipe.cmd("PEXPIRE").arg(&census).arg(ttl_ms).ignore();
    }
    pipe.cmd("ZADD")
        .arg(&instances)
        .arg(now_ms)
        .arg(instance)
        .ignore()
        // Gone once no instance has recorded for a whole census TTL, when
        // every census in it has lapsed too.
        .cmd("PEXPIRE")
        .arg(&instances)
        .arg(ttl_ms)
        .ignore();
    let mut connection = backend.conn();
    with_deadline("record socket census", pipe.query_async(&mut connection)).await
}

/// Sums each sid's sockets over the instances that recorded within
/// `stale_after_ms` (forgetting the others), in one pipeline per
/// [`READ_BATCH`] sids.
pub(super) async fn socket_counts(
    backend: &RedisBackend,
    sids: &[String],
    now_ms: i64,
    stale_after_ms: i64,
) -> Result<HashMap<String, usize>, StoreError> {
    let mut totals = HashMap::new();
    if sids.is_empty() {
        return Ok(totals);
    }
    let instances = live_instances(backend, now_ms, stale_after_ms).await?;
    if instances.is_empty() {
        return Ok(totals);
    }
    let censuses: Vec<String> = instances.iter().map(|i| backend.census_key(i)).collect();
    let mut connection = backend.conn();
    for batch in sids.chunks(READ_BATCH) {
        let mut pipe = redis::pipe();
        for census in &censuses {
            pipe.cmd("HMGET").arg(census).arg(batch);
        }
        let replies: Vec<Vec<Option<usize>>> =
            with_deadline("read socket census", pipe.query_async(&mut connection)).await?;
        for counts in replies {
            for (sid, count) in batch.iter().zip(counts) {
                if let Some(count) = count.filter(|&n| n > 0) {
                    *totals.entry(sid.clone()).or_default() += count;
                }
            }
        }
    }
    Ok(totals)
}

/// `key`'s count summed over the censuses of `instances`, in one pipeline.
pub(super) async fn socket_count_on(
    backend: &RedisBackend,
    instances: &[String],
    key: &str,
) -> Result<usize, StoreError> {
    if instances.is_empty() {
        return Ok(0);
    }
    let mut pipe = redis::pipe();
    for instance in instances {
        pipe.cmd("HGET").arg(backend.census_key(instance)).arg(key);
    }
    let mut connection = backend.conn();
    let counts: Vec<Option<usize>> =
        with_deadline("read socket census", pipe.query_async(&mut connection)).await?;
    Ok(counts.into_iter().flatten().sum())
}

/// Instances heard from at or after `now_ms − stale_after_ms`; older ones
/// are removed on the way.
pub(super) async fn live_instances(
    backend: &RedisBackend,
    now_ms: i64,
    stale_after_ms: i64,
) -> Result<Vec<String>, StoreError> {
    let instances = backend.instances_key();
    let live_since = now_ms.saturating_sub(stale_after_ms);
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("ZREMRANGEBYSCORE")
        .arg(&instances)
        .arg("-inf")
        .arg(format!("({live_since}"))
        .ignore()
        .cmd("ZRANGE")
        .arg(&instances)
        .arg(0)
        .arg(-1);
    let mut connection = backend.conn();
    let (live,): (Vec<String>,) =
        with_deadline("read live instances", pipe.query_async(&mut connection)).await?;
    Ok(live)
}
