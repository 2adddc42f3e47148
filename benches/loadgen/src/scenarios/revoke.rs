//! `revoke`: time from the revoking call's return to the client seeing the
//! socket close, over many sessions, one at a time: admin `DELETE` on the
//! socket's own instance, on another instance, and a raw Redis `DEL` (on
//! the one node, or on the Cluster node that holds the session); then what
//! a session costs Redis (`footprint`).

use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use tokio::{sync::oneshot, time::Instant};
use tokio_tungstenite::tungstenite::Message;

use super::{footprint, Bench, Target};
use crate::{
    http,
    stats::{histogram, record, Row},
    topology::Nodes,
    ws::{self, Socket},
};

/// How the session is ended.
#[derive(Clone, Copy)]
enum Path {
    SameInstance,
    OtherInstance,
    RawDel,
}

/// Reads until the close frame (or the end of the stream); reports when.
fn watch_close(mut socket: Socket) -> oneshot::Receiver<Instant> {
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        while let Some(Ok(frame)) = socket.next().await {
            if matches!(frame, Message::Close(_)) {
                break;
            }
        }
        let _ = tx.send(Instant::now());
    });
    rx
}

/// Signs in `n` sessions on `login`, opens a socket for each on `socket_on`,
/// then ends them one by one through `path` (a raw `DEL` on `raw`'s node
/// that holds the session).
async fn measure(
    bench: &Bench,
    login: &Target,
    socket_on: &Target,
    path: Path,
    mut raw: Option<&mut Nodes>,
) -> anyhow::Result<Row> {
    let n = bench.sizes.revoke_sessions;
    let cookies = http::sessions(&login.server, &login.users, n, 4).await?;
    let opened = ws::open_all(&socket_on.server.ws_url(), cookies, 32).await;
    let mut hist = histogram();
    let mut errors = 0u64;
    let mut before_return = 0u64;
    let start = Instant::now();
    for opened in opened {
        let (socket, hello) = opened?;
        let sid = hello["data"]["session"]["id"]
            .as_str()
            .context("hello without session id")?
            .to_string();
        let closed = watch_close(socket);
        let revoked = match (path, raw.as_deref_mut()) {
            (Path::RawDel, Some(nodes)) => {
                // The key layout's hash tag: `{prefix}session:{<sid>}`.
                let key = format!("{}session:{{{sid}}}", bench.redis_prefix);
                nodes
                    .query::<i64>(&key, redis::cmd("DEL").arg(&key))
                    .await
                    .and_then(|deleted| match deleted {
                        1 => Ok(()),
                        _ => Err(anyhow::anyhow!("DEL {key}: no such key")),
                    })
            }
            _ => login.server.revoke(&login.admin, &sid).await,
        };
        let returned = Instant::now();
        if revoked.is_err() {
            errors += 1;
            continue;
        }
        match tokio::time::timeout(Duration::from_secs(15), closed).await {
            Ok(Ok(at)) => {
                if at <= returned {
                    before_return += 1;
                }
                record(&mut hist, at.saturating_duration_since(returned));
            }
            _ => errors += 1,
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (target, mode, limit) = match path {
        Path::SameInstance => (login.label().to_string(), "admin DELETE same", 50.0),
        Path::OtherInstance => (
            format!("{}->{}", login.label(), socket_on.label()),
            "admin DELETE other",
            250.0,
        ),
        Path::RawDel => (socket_on.label().to_string(), "redis DEL", 250.0),
    };
    let mut row = Row::new("revoke", &target, mode)
        .with_hist(&hist, start.elapsed())
        .rss(socket_on.server.pid);
    row.errors = errors;
    let met = match row.p99_ms {
        Some(p99) if p99 <= limit && errors == 0 => "met",
        _ => "MISSED",
    };
    row.note = format!("{before_return} closed before the call returned (counted as 0); target p99 <= {limit} ms: {met}");
    Ok(row)
}

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    for target in bench.targets.clone() {
        let row = measure(bench, &target, &target, Path::SameInstance, None).await?;
        bench.push(row);
        if let Some(peer) = bench.peer_of(&target) {
            let row = measure(bench, &target, &peer, Path::OtherInstance, None).await?;
            bench.push(row);
        }
        if let Some(spec) = bench.redis_of(&target) {
            let mut nodes = Nodes::new(spec);
            let row = measure(bench, &target, &target, Path::RawDel, Some(&mut nodes)).await?;
            bench.push(row);
            let row = footprint::measure(bench, &target, &mut nodes).await?;
            bench.push(row);
        }
    }
    Ok(())
}
