//! `upgrade`: new WebSocket connections per second, each counted once its
//! `hello` frame arrived, with every tenth attempt carrying a bad cookie that
//! must be refused with 401 before the upgrade; the same load on the echo
//! baseline; and a reconnect storm (S sockets dropped and reconnected at once).

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use anyhow::bail;
use futures_util::{future::join_all, stream, StreamExt};
use tokio::time::Instant;

use super::{median_round, per_second, percent, percents, Bench, FIXED_SHARE, ROUNDS};
use crate::{
    http::{self, Server},
    load,
    stats::{histogram, record, CpuMeter, Row},
    ws::{self, Upgrade},
};

const BAD_COOKIE: &str = "tether_session=not-a-valid-session-cookie";

/// One connection attempt: `bad` ones must be refused with 401.
async fn attempt(url: &str, cookie: Option<&str>, bad: bool) -> anyhow::Result<()> {
    let upgrade = tokio::time::timeout(ws::TIMEOUT, ws::connect(url, cookie)).await??;
    match (upgrade, bad) {
        (Upgrade::Refused(401), true) => Ok(()),
        (Upgrade::Open(mut socket), false) => {
            ws::next_json(&mut socket).await?;
            // Counted once hello arrived; the close handshake is not waited for.
            tokio::spawn(ws::close(*socket));
            Ok(())
        }
        (Upgrade::Open(_), true) => bail!("bad cookie was upgraded"),
        (Upgrade::Refused(status), _) => bail!("refused with {status}"),
    }
}

/// Closed loop and then fixed rate against one server; `cookies` empty = no auth.
/// One closed-loop measurement (every 10th attempt with a bad cookie on tether).
async fn closed_row(bench: &Bench, server: &Server, cookies: Vec<String>) -> Row {
    let sizes = &bench.sizes;
    let url = server.ws_url();
    let refused = Arc::new(AtomicU64::new(0));
    // (worker, attempt number): every worker's tenth attempt carries a bad cookie.
    let states: Vec<(usize, u64)> = (0..sizes.upgrade_clients).map(|w| (w, 0)).collect();
    let mut watched = vec![("loadgen", std::process::id())];
    let name = if server.label == "echo" {
        "echo"
    } else {
        "tether"
    };
    watched.extend(server.pid.map(|pid| (name, pid)));
    if server.label == "redis" {
        watched.extend(bench.redis_pid.map(|pid| ("redis-server", pid)));
    }
    let cpu = CpuMeter::start(&watched);
    let (u, c, r) = (url.clone(), cookies.clone(), refused.clone());
    let closed = load::closed_loop(states, sizes.duration(), move |(w, n)| {
        let (url, cookies, refused) = (u.clone(), c.clone(), r.clone());
        async move {
            let bad = !cookies.is_empty() && n % 10 == 9;
            let cookie = match (bad, cookies.is_empty()) {
                (true, _) => Some(BAD_COOKIE.to_string()),
                (false, true) => None,
                (false, false) => Some(cookies[w % cookies.len()].clone()),
            };
            let outcome = attempt(&url, cookie.as_deref(), bad).await;
            if bad && outcome.is_ok() {
                refused.fetch_add(1, Ordering::Relaxed);
            }
            ((w, n + 1), outcome)
        }
    })
    .await;
    let refused = refused.load(Ordering::Relaxed);
    let mut closed_row = Row::new(
        "upgrade",
        &server.label,
        format!("closed(c={})", sizes.upgrade_clients),
    )
    .with_hist(&closed.hist, closed.elapsed)
    .rss(server.pid);
    closed_row.errors = closed.errors;
    closed_row.throughput = (closed_row.ops - refused) as f64 / closed.elapsed.as_secs_f64();
    closed_row.note = cpu.per_op_note(closed_row.ops);
    if !cookies.is_empty() {
        closed_row.note = format!(
            "ops/s counts upgrades with hello; {refused} bad cookies got 401 before upgrade; {}",
            closed_row.note
        );
    }

    closed_row
}

/// Good cookies only, at `rate` upgrades/s.
async fn fixed_row(bench: &Bench, server: &Server, cookies: Vec<String>, rate: f64) -> Row {
    let sizes = &bench.sizes;
    let url = server.ws_url();
    let (u, c) = (url.clone(), cookies);
    let fixed = load::fixed_rate(rate, sizes.duration(), 512, move |i| {
        let (url, cookies) = (u.clone(), c.clone());
        async move {
            let cookie = (!cookies.is_empty()).then(|| cookies[i as usize % cookies.len()].clone());
            attempt(&url, cookie.as_deref(), false).await
        }
    })
    .await;
    let mut fixed_row = Row::new("upgrade", &server.label, format!("fixed({rate}/s)"))
        .with_hist(&fixed.hist, fixed.elapsed)
        .rss(server.pid)
        .note("good cookies only; half the closed-loop rate");
    fixed_row.errors = fixed.errors;
    fixed_row
}

/// Opens `count` sockets, drops them all at once, reconnects them all at once.
async fn storm(server: &Server, cookies: &[String], count: usize) -> anyhow::Result<Row> {
    let url = server.ws_url();
    let cookie = |i: usize| (!cookies.is_empty()).then(|| cookies[i % cookies.len()].clone());
    let open = |i: usize| {
        let (url, cookie) = (url.clone(), cookie(i));
        async move {
            ws::connect_hello(&url, cookie.as_deref())
                .await
                .map(|(s, _)| s)
        }
    };
    let sockets: Vec<_> = stream::iter(0..count)
        .map(open)
        .buffer_unordered(128)
        .collect()
        .await;
    let sockets: Vec<_> = sockets.into_iter().collect::<Result<_, _>>()?;
    drop(sockets); // every TCP connection ends at once, without a close handshake
    let start = Instant::now();
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let fut = open(i);
            tokio::spawn(async move { (fut.await, start.elapsed()) })
        })
        .collect();
    let mut hist = histogram();
    let mut errors = 0;
    let mut reopened = Vec::with_capacity(count);
    for done in join_all(tasks).await {
        match done {
            Ok((Ok(socket), latency)) => {
                record(&mut hist, latency);
                reopened.push(socket);
            }
            _ => errors += 1,
        }
    }
    let elapsed = start.elapsed();
    let mut row = Row::new("storm", &server.label, format!("{count} at once"))
        .with_hist(&hist, elapsed)
        .rss(server.pid)
        .note(format!(
            "all reconnected in {:.0} ms (latency from the storm's start)",
            elapsed.as_secs_f64() * 1000.0
        ));
    row.errors = errors;
    join_all(reopened.into_iter().map(ws::close)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(row)
}

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    // (server, cookies): the echo server first, without cookies.
    let mut cases: Vec<(Server, Vec<String>)> = Vec::new();
    if let Some(echo) = bench.echo.clone() {
        cases.push((echo, Vec::new()));
    }
    for target in bench.targets.clone() {
        let cookies = http::sessions(&target.server, &target.users, 16, 4).await?;
        cases.push((target.server.clone(), cookies));
    }
    let mut rounds: Vec<Vec<Row>> = vec![Vec::new(); cases.len()];
    for _ in 0..ROUNDS {
        for (case, (server, cookies)) in cases.iter().enumerate() {
            rounds[case].push(closed_row(bench, server, cookies.clone()).await);
        }
    }
    let echo_rounds: Option<Vec<f64>> = bench
        .echo
        .is_some()
        .then(|| rounds[0].iter().map(|r| r.throughput).collect());
    for ((server, cookies), case_rounds) in cases.into_iter().zip(rounds) {
        let is_echo = server.label == "echo";
        let keyed = case_rounds.into_iter().enumerate().map(|(i, row)| {
            let key = match &echo_rounds {
                Some(echo) if !is_echo => row.throughput / echo[i],
                _ => row.throughput,
            };
            (key, row)
        });
        let (key, mut closed, keys) = median_round(keyed.collect());
        closed.note = match (&echo_rounds, is_echo) {
            (_, true) => format!(
                "bare actix-ws ceiling: upgrade + hello; rounds: {}; {}",
                per_second(&keys),
                closed.note
            ),
            (Some(_), false) => format!(
                "{} of echo in the same round (target >= 60%: {}); rounds: {}; {}",
                percent(key, Some(1.0)),
                if key >= 0.6 { "met" } else { "MISSED" },
                percents(&keys),
                closed.note
            ),
            (None, false) => format!("rounds: {}; {}", per_second(&keys), closed.note),
        };
        let rate = (closed.throughput * FIXED_SHARE).max(10.0).round();
        bench.push(closed);
        let fixed = fixed_row(bench, &server, cookies.clone(), rate).await;
        bench.push(fixed);
        let row = storm(&server, &cookies, bench.sizes.storm_sockets).await?;
        bench.push(row);
    }
    Ok(())
}
