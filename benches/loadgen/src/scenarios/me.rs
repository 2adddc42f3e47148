//! `me`: `GET /api/auth/me` with valid cookies, N clients closed-loop, then
//! at a fixed half of that rate; beside it this machine's raw Redis GET rate.

use std::process::Command;

use super::{Bench, Target, FIXED_SHARE};
use crate::{http, load, stats::Row};

/// Sessions the `me` clients share (a client uses `i % SESSIONS`).
const SESSIONS: usize = 16;

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    if let Some(rate) = redis_benchmark_get() {
        let mut row = Row::new("redis-get", "machine", "redis-benchmark")
            .note("redis-benchmark -q -t get -n 200000 -c 50 (raw Redis GET/s)");
        row.throughput = rate;
        bench.push(row);
    }
    for target in bench.targets.clone() {
        let (closed, fixed) = measure(&target, bench).await?;
        let note = if target.label() == "redis" {
            let met = if closed.throughput >= 20_000.0 {
                "met"
            } else {
                "MISSED"
            };
            format!("target >= 20000/s with Redis: {met}")
        } else {
            String::new()
        };
        bench.push(closed.note(note));
        bench.push(fixed);
    }
    Ok(())
}

async fn measure(target: &Target, bench: &Bench) -> anyhow::Result<(Row, Row)> {
    let sizes = &bench.sizes;
    let server = target.server.clone();
    let cookies = http::sessions(&server, &target.users, SESSIONS, 4).await?;
    let label = target.label();
    let states: Vec<usize> = (0..sizes.me_clients).collect();
    let (s, c) = (server.clone(), cookies.clone());
    let closed = load::closed_loop(states, sizes.duration(), move |i| {
        let (server, cookie) = (s.clone(), c[i % c.len()].clone());
        async move {
            let outcome = server.me(&cookie).await;
            (i, outcome)
        }
    })
    .await;
    let mut closed_row = Row::new("me", label, format!("closed(c={})", sizes.me_clients))
        .with_hist(&closed.hist, closed.elapsed)
        .rss(server.pid);
    closed_row.errors = closed.errors;

    let rate = (closed_row.throughput * FIXED_SHARE).max(10.0).round();
    let (s, c) = (server.clone(), cookies);
    let fixed = load::fixed_rate(rate, sizes.duration(), 4 * sizes.me_clients, move |i| {
        let (server, cookie) = (s.clone(), c[i as usize % c.len()].clone());
        async move { server.me(&cookie).await }
    })
    .await;
    let mut fixed_row = Row::new("me", label, format!("fixed({rate}/s)"))
        .with_hist(&fixed.hist, fixed.elapsed)
        .rss(server.pid)
        .note("half the closed-loop rate; latency from the scheduled send");
    fixed_row.errors = fixed.errors;
    Ok((closed_row, fixed_row))
}

/// `redis-benchmark -q -t get` requests/s, if the tool is installed.
fn redis_benchmark_get() -> Option<f64> {
    let output = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "6379",
            "-q",
            "-t",
            "get",
            "-n",
            "200000",
            "-c",
            "50",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "GET: 123456.79 requests per second, p50=0.191 msec" (after \r progress lines)
    text.split(['\r', '\n'])
        .filter_map(|line| line.trim().strip_prefix("GET:"))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .next_back()
}
