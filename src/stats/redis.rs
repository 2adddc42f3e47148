//! The series in Redis: each instance appends its point every second to a
//! list of its own, `{prefix}{stats}:<instance>` (the last `WINDOW` kept),
//! and registers in `{prefix}{stats}:instances` (scored by its last point, in
//! Unix ms). A reader takes every list registered within the window, so an
//! instance that stopped still counts for the seconds it reported.

use std::time::Duration;

use anyhow::Context as _;

use super::{Point, Shared, WINDOW};
use crate::time::now_ms;

/// Every Redis call here answers within this, or fails.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Keys outlive the window a little, then vanish with a stopped instance.
const KEY_TTL_MS: i64 = (WINDOW as i64 + 60) * 1000;

fn list_key(prefix: &str, instance: &str) -> String {
    format!("{prefix}{{stats}}:{instance}")
}

fn instances_key(prefix: &str) -> String {
    format!("{prefix}{{stats}}:instances")
}

/// Appends this instance's point (one pipelined round trip).
pub(super) async fn publish(shared: &Shared, point: &Point) -> anyhow::Result<()> {
    let list = list_key(&shared.prefix, &shared.instance);
    let instances = instances_key(&shared.prefix);
    let now = now_ms();
    let mut pipe = redis::pipe();
    pipe.cmd("RPUSH")
        .arg(&list)
        .arg(serde_json::to_string(point)?)
        .ignore()
        .cmd("LTRIM")
        .arg(&list)
        .arg(-(WINDOW as i64))
        .arg(-1)
        .ignore()
        .cmd("PEXPIRE")
        .arg(&list)
        .arg(KEY_TTL_MS)
        .ignore()
        .cmd("ZADD")
        .arg(&instances)
        .arg(now)
        .arg(&shared.instance)
        .ignore()
        .cmd("ZREMRANGEBYSCORE")
        .arg(&instances)
        .arg("-inf")
        .arg(format!("({}", now - KEY_TTL_MS))
        .ignore()
        .cmd("PEXPIRE")
        .arg(&instances)
        .arg(KEY_TTL_MS)
        .ignore();
    let mut conn = shared.conn.clone();
    tokio::time::timeout(TIMEOUT, pipe.query_async::<()>(&mut conn))
        .await
        .context("timed out")??;
    Ok(())
}

/// Every point of every instance that reported since `start` (Unix s), and
/// how many instances those are.
pub(super) async fn read_all(shared: &Shared, start: i64) -> anyhow::Result<(Vec<Point>, usize)> {
    let mut conn = shared.conn.clone();
    let instances: Vec<String> = tokio::time::timeout(
        TIMEOUT,
        redis::cmd("ZRANGEBYSCORE")
            .arg(instances_key(&shared.prefix))
            .arg(start * 1000)
            .arg("+inf")
            .query_async(&mut conn),
    )
    .await
    .context("timed out")??;
    if instances.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let mut pipe = redis::pipe();
    for instance in &instances {
        pipe.cmd("LRANGE")
            .arg(list_key(&shared.prefix, instance))
            .arg(0)
            .arg(-1);
    }
    let lists: Vec<Vec<String>> = tokio::time::timeout(TIMEOUT, pipe.query_async(&mut conn))
        .await
        .context("timed out")??;
    let points = lists
        .iter()
        .flatten()
        .filter_map(|raw| match serde_json::from_str::<Point>(raw) {
            Ok(point) => Some(point),
            Err(e) => {
                log::warn!("event=stats_bad_point error={e}");
                None
            }
        })
        .collect();
    Ok((points, instances.len()))
}
