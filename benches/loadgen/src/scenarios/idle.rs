//! `idle`: hold C authenticated idle sockets (C = 1k, 5k, 10k, 19k by
//! default) and report the server's RSS per socket over its RSS with none.
//! Each held socket has a task that reads (so heartbeat pings get pongs)
//! until told to close.

use std::time::Duration;

use futures_util::{stream, StreamExt};
use tokio::{sync::watch, task::JoinHandle, time::Instant};

use super::{Bench, Target};
use crate::{
    http,
    stats::{histogram, record, rss_kib, Row},
    ws::{self, Socket},
};

/// Sessions the idle sockets are spread over.
const SESSIONS: usize = 50;
/// Connection attempts in flight while filling up to a level.
const PARALLEL: usize = 256;
/// Target from issue 5: at most 16 KiB of server RSS per idle socket.
const TARGET_KIB: f64 = 16.0;

fn hold(mut socket: Socket, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                frame = socket.next() => match frame {
                    Some(Ok(_)) => continue,
                    _ => return,
                },
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.close(None)).await;
    })
}

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    for target in bench.targets.clone() {
        let rows = measure(&target, &bench.sizes.idle_levels).await?;
        for row in rows {
            bench.push(row);
        }
    }
    Ok(())
}

async fn measure(target: &Target, levels: &[usize]) -> anyhow::Result<Vec<Row>> {
    let server = &target.server;
    let cookies = http::sessions(server, &target.users, SESSIONS, 4).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = server.pid.and_then(rss_kib);
    let url = server.ws_url();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut held: Vec<JoinHandle<()>> = Vec::new();
    let mut rows = Vec::new();
    for &level in levels {
        let start = Instant::now();
        let from = held.len();
        let opened: Vec<_> = stream::iter(from..level)
            .map(|i| {
                let (url, cookie) = (url.clone(), cookies[i % cookies.len()].clone());
                async move {
                    let began = Instant::now();
                    let socket = ws::connect_hello(&url, Some(&cookie)).await;
                    socket.map(|(s, _)| (s, began.elapsed()))
                }
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let elapsed = start.elapsed();
        let mut hist = histogram();
        let mut errors = 0u64;
        let mut first_error = None;
        for outcome in opened {
            match outcome {
                Ok((socket, latency)) => {
                    record(&mut hist, latency);
                    held.push(hold(socket, stop_rx.clone()));
                }
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert(e.to_string());
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let alive = held.iter().filter(|h| !h.is_finished()).count();
        let mut row = Row::new("idle", target.label(), format!("C={level}"))
            .with_hist(&hist, elapsed)
            .rss(server.pid);
        row.errors = errors;
        row.note = per_socket_note(base, server.pid.and_then(rss_kib), alive);
        if let Some(e) = first_error {
            row.note.push_str(&format!("; first error: {e}"));
        }
        rows.push(row);
        if alive < level * 9 / 10 {
            break; // the server or this process hit a limit; larger levels would only repeat it
        }
    }
    let _ = stop_tx.send(true);
    for task in held {
        let _ = task.await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(rows)
}

fn per_socket_note(base: Option<u64>, now: Option<u64>, alive: usize) -> String {
    match (base, now) {
        (Some(base), Some(now)) if alive > 0 => {
            let per = now.saturating_sub(base) as f64 / alive as f64;
            let met = if per <= TARGET_KIB { "met" } else { "MISSED" };
            format!(
                "{alive} held; {per:.1} KiB server RSS per socket over {:.1} MiB base (target <= 16 KiB: {met})",
                base as f64 / 1024.0
            )
        }
        _ => format!("{alive} held; RSS not readable"),
    }
}
