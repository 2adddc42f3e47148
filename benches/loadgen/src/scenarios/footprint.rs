//! What a signed-in session with an open socket costs Redis (issue 14's
//! cost per million sockets): `MEMORY USAGE` of a session's hash, and of the
//! indexes it has entries in — `{prefix}sessions`, its user's
//! `{prefix}user:{<uid>}:sessions` and the instances' socket census — over
//! their entry counts. Run by `revoke` on each Redis-backed target.

use std::time::Duration;

use anyhow::Context;

use super::{Bench, Target};
use crate::{http, stats::Row, topology::Nodes, ws};

/// Sessions signed in (each with one socket) before the indexes are weighed.
const SESSIONS: usize = 24;
/// Longer than the census report period (~2 s), so the sockets are in it.
const CENSUS_WAIT: Duration = Duration::from_millis(3500);

pub async fn measure(bench: &Bench, target: &Target, nodes: &mut Nodes) -> anyhow::Result<Row> {
    let cookies = http::sessions(&target.server, &target.users, SESSIONS, 4).await?;
    let sockets = ws::open_all(&target.server.ws_url(), cookies, 8)
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    tokio::time::sleep(CENSUS_WAIT).await;
    let (_, hello) = sockets.last().context("no socket")?;
    let sid = hello["data"]["session"]["id"]
        .as_str()
        .context("hello: session.id")?;
    let uid = hello["data"]["user"]["id"]
        .as_str()
        .context("hello: user.id")?;
    let prefix = &bench.redis_prefix;
    let session = usage(nodes, &format!("{prefix}session:{{{sid}}}")).await?;
    let (all, all_n, all_enc) = weigh(nodes, &format!("{prefix}sessions"), "ZCARD").await?;
    let (user, user_n, user_enc) =
        weigh(nodes, &format!("{prefix}user:{{{uid}}}:sessions"), "ZCARD").await?;
    let (census, census_n) = census(nodes, prefix).await?;
    let per = |bytes: u64, n: u64| bytes as f64 / n.max(1) as f64;
    let mut row = Row::new("footprint", target.label(), "MEMORY USAGE");
    row.note = format!(
        "Redis bytes: session hash {session}; {prefix}sessions {all} for {all_n} entries ({all_enc}, {:.0}/entry); \
         one user's index {user} for {user_n} ({user_enc}, {:.0}/entry); census hashes {census} for {census_n} entries ({:.0}/entry)",
        per(all, all_n),
        per(user, user_n),
        per(census, census_n),
    );
    drop(sockets);
    Ok(row)
}

/// `MEMORY USAGE key SAMPLES 0` (every element counted), 0 if missing.
async fn usage(nodes: &mut Nodes, key: &str) -> anyhow::Result<u64> {
    let bytes: Option<u64> = nodes
        .query(
            key,
            redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .arg("SAMPLES")
                .arg(0),
        )
        .await?;
    Ok(bytes.unwrap_or(0))
}

/// Bytes, element count (`count_cmd`) and encoding of one key.
async fn weigh(
    nodes: &mut Nodes,
    key: &str,
    count_cmd: &str,
) -> anyhow::Result<(u64, u64, String)> {
    let bytes = usage(nodes, key).await?;
    let count: u64 = nodes.query(key, redis::cmd(count_cmd).arg(key)).await?;
    let encoding: Option<String> = nodes
        .query(key, redis::cmd("OBJECT").arg("ENCODING").arg(key))
        .await?;
    Ok((bytes, count, encoding.unwrap_or_default()))
}

/// Every instance's census hash (one hash tag, so one node holds them all):
/// total bytes and entries.
async fn census(nodes: &mut Nodes, prefix: &str) -> anyhow::Result<(u64, u64)> {
    let members = format!("{prefix}{{census}}:instances");
    let instances: Vec<String> = nodes
        .query(&members, redis::cmd("ZRANGE").arg(&members).arg(0).arg(-1))
        .await?;
    let (mut bytes, mut entries) = (0, 0);
    for instance in instances {
        let key = format!("{prefix}{{census}}:{instance}");
        let (b, n, _) = weigh(nodes, &key, "HLEN").await?;
        bytes += b;
        entries += n;
    }
    Ok((bytes, entries))
}
