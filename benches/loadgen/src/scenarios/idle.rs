//! `idle`: hold C authenticated idle sockets (C = 1k, 5k, 10k, 19k by
//! default) and report the server's RSS per socket over its RSS with none.
//! The sockets are held by `loadgen hold` child processes (`hold.rs`), each
//! reading (so heartbeat pings get pongs) until told to close. The echo
//! server is measured the same way first: its slope is the stack's floor.

use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use super::{Bench, Sizes, Target};
use crate::{
    hold::{Command, Holder, Setup},
    http::{self, Server},
    stats::{histogram, record, rss_kib, Row},
};

/// Sessions the idle sockets are spread over.
const SESSIONS: usize = 50;
/// Load processes holding the sockets: 19,000 sockets in one of them would
/// leave it almost no room under the 20,000-file limit.
const HOLDERS: usize = 2;
/// Target from issue 5: at most 16 KiB of server RSS per idle socket.
const TARGET_KIB: f64 = 16.0;

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    // The echo server first: it holds the same actix-http and actix-ws state
    // per connection, so its slope is the floor this stack allows and the
    // difference to tether's is tether's own per-socket memory.
    if let Some(echo) = bench.echo.clone() {
        let rows = measure(&echo, vec![None], &bench.sizes).await?;
        for row in rows {
            bench.push(row);
        }
    }
    for target in bench.targets.clone() {
        let rows = measure_target(&target, &bench.sizes).await?;
        for row in rows {
            bench.push(row);
        }
    }
    Ok(())
}

async fn measure_target(target: &Target, sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let cookies = http::sessions(&target.server, &target.users, SESSIONS, 4).await?;
    let cookies = cookies.into_iter().map(Some).collect();
    measure(&target.server, cookies, sizes).await
}

/// Holds sockets at each level in turn, spread over `cookies` (`None`: no
/// cookie) and over `HOLDERS` child processes.
async fn measure(
    server: &Server,
    cookies: Vec<Option<String>>,
    sizes: &Sizes,
) -> anyhow::Result<Vec<Row>> {
    let (levels, hold_secs) = (&sizes.idle_levels, sizes.idle_hold_secs);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = server.pid.and_then(rss_kib);
    let cookies: Vec<String> = cookies.into_iter().flatten().collect();
    let mut holders = Vec::with_capacity(HOLDERS);
    for i in 0..HOLDERS {
        let setup = Setup {
            url: server.ws_url(),
            cookies: cookies.clone(),
            offset: i,
        };
        holders.push(Holder::spawn(&setup).await?);
    }
    let mut rows = Vec::new();
    for &level in levels.iter() {
        let start = Instant::now();
        let replies = join_all(
            holders
                .iter_mut()
                .enumerate()
                .map(|(i, h)| h.ask(Command::Open(share(level, i)))),
        )
        .await;
        let elapsed = start.elapsed();
        let mut hist = histogram();
        let mut errors = 0u64;
        let mut first_error = None;
        for reply in replies {
            let reply = reply?;
            for us in reply.latencies_us {
                record(&mut hist, Duration::from_micros(us));
            }
            errors += reply.errors;
            if first_error.is_none() {
                first_error = reply.first_error;
            }
        }
        tokio::time::sleep(Duration::from_secs_f64(hold_secs)).await;
        let mut alive = 0;
        for holder in holders.iter_mut() {
            alive += holder.ask(Command::Count).await?.alive;
        }
        let mut row = Row::new("idle", &server.label, format!("C={level}"))
            .with_hist(&hist, elapsed)
            .rss(server.pid);
        row.errors = errors;
        let floor = server.label == "echo";
        row.note = per_socket_note(base, server.pid.and_then(rss_kib), alive, floor);
        if let Some(e) = first_error {
            row.note.push_str(&format!("; first error: {e}"));
        }
        rows.push(row);
        if alive < level * 9 / 10 {
            break; // the server or this process hit a limit; larger levels would only repeat it
        }
    }
    for holder in holders {
        holder.stop().await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(rows)
}

/// Holder `i`'s part of `level` sockets (the first ones take the remainder).
fn share(level: usize, i: usize) -> usize {
    level / HOLDERS + usize::from(i < level % HOLDERS)
}

/// `floor`: the bare echo server, to which the target does not apply.
fn per_socket_note(base: Option<u64>, now: Option<u64>, alive: usize, floor: bool) -> String {
    match (base, now) {
        (Some(base), Some(now)) if alive > 0 => {
            let per = now.saturating_sub(base) as f64 / alive as f64;
            let met = match (floor, per <= TARGET_KIB) {
                (true, _) => "bare actix-ws floor".to_owned(),
                (false, true) => format!("target <= {TARGET_KIB} KiB: met"),
                (false, false) => format!("target <= {TARGET_KIB} KiB: MISSED"),
            };
            format!(
                "{alive} held; {per:.1} KiB server RSS per socket over {:.1} MiB base ({met})",
                base as f64 / 1024.0
            )
        }
        _ => format!("{alive} held; RSS not readable"),
    }
}
