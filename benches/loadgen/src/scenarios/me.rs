//! `me`: `GET /api/auth/me` with valid cookies, N clients closed-loop, then
//! at a fixed half of that rate; beside it this machine's raw Redis GET rate.

use std::process::Command;

use super::{median_round, per_second, percent, percents, Bench, Target, FIXED_SHARE, ROUNDS};
use crate::{
    http, load,
    stats::{CpuMeter, Row},
};

const ME_PATH: &str = "/api/auth/me";

/// Sessions the `me` clients share (a client uses `i % SESSIONS`).
const SESSIONS: usize = 16;

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    if let Some(rate) = redis_benchmark_get() {
        let mut row = Row::new("redis-get", "machine", "redis-benchmark")
            .note("redis-benchmark -q -t get -n 200000 -c 50 (raw Redis GET/s)");
        row.throughput = rate;
        bench.push(row);
    }
    let mut cases = Vec::new();
    for target in bench.targets.clone() {
        let cookies = http::sessions(&target.server, &target.users, SESSIONS, 4).await?;
        cases.push((target, cookies, Vec::new()));
    }
    // Targets alternate within each round, so both see the same drift.
    for _ in 0..ROUNDS {
        for (target, cookies, rounds) in cases.iter_mut() {
            let row = closed_row(target, cookies, bench).await?;
            rounds.push((row.throughput, row));
        }
    }
    // The single node's rate in each round, for a topology's ratio to it.
    let single: Option<Vec<f64>> = cases
        .iter()
        .find(|(target, ..)| target.label() == "redis")
        .map(|(_, _, rounds)| rounds.iter().map(|r| r.0).collect());
    let topology = bench.topology.as_ref().map(|t| t.name.clone());
    for (target, cookies, rounds) in cases {
        let on_topology = topology.as_deref() == Some(target.label());
        let rounds = match &single {
            // Keyed by the ratio to the single node in the same round.
            Some(single) if on_topology => rounds
                .into_iter()
                .enumerate()
                .map(|(i, (rate, row))| (rate / single[i], row))
                .collect(),
            _ => rounds,
        };
        let (key, closed, keys) = median_round(rounds);
        let mut note = format!(
            "median of {ROUNDS} rounds: {}; {}",
            if on_topology && single.is_some() {
                percents(&keys)
            } else {
                per_second(&keys)
            },
            closed.note
        );
        if on_topology && single.is_some() {
            let met = if key >= 0.8 { "met" } else { "MISSED" };
            note = format!(
                "{} of redis (one node) in the same round (target >= 80%: {met}); {note}",
                percent(key, Some(1.0))
            );
        }
        if target.label() == "redis" {
            let met = if closed.throughput >= 20_000.0 {
                "met"
            } else {
                "MISSED"
            };
            note = format!("target >= 20000/s with Redis: {met}; {note}");
        }
        let rate = (closed.throughput * FIXED_SHARE).max(10.0).round();
        bench.push(closed.note(note));
        bench.push(fixed_row(&target, cookies, rate, bench).await);
    }
    Ok(())
}

/// One closed-loop measurement: `me_clients` keep-alive connections (hyper,
/// see `http::RawClient`) over the sessions.
async fn closed_row(target: &Target, cookies: &[String], bench: &Bench) -> anyhow::Result<Row> {
    let sizes = &bench.sizes;
    let server = target.server.clone();
    let mut states = Vec::with_capacity(sizes.me_clients);
    for i in 0..sizes.me_clients {
        let client = http::RawClient::connect(&server.base).await?;
        states.push((client, cookies[i % cookies.len()].clone()));
    }
    let mut watched = vec![("loadgen", std::process::id())];
    watched.extend(server.pid.map(|pid| ("tether", pid)));
    if target.label() == "redis" {
        watched.extend(bench.redis_pid.map(|pid| ("redis-server", pid)));
    }
    let cpu = CpuMeter::start(&watched);
    let closed = load::closed_loop(
        states,
        sizes.duration(),
        |(mut client, cookie)| async move {
            let outcome = client.get(ME_PATH, &cookie).await;
            ((client, cookie), outcome)
        },
    )
    .await;
    let mut row = Row::new(
        "me",
        target.label(),
        format!("closed(c={})", sizes.me_clients),
    )
    .with_hist(&closed.hist, closed.elapsed)
    .rss(server.pid);
    row.errors = closed.errors;
    row.note = cpu.per_op_note(row.ops);
    Ok(row)
}

/// `rate` requests/s on a schedule; latency from each request's scheduled time.
async fn fixed_row(target: &Target, cookies: Vec<String>, rate: f64, bench: &Bench) -> Row {
    let sizes = &bench.sizes;
    let server = target.server.clone();
    let s = server.clone();
    let fixed = load::fixed_rate(rate, sizes.duration(), 4 * sizes.me_clients, move |i| {
        let (server, cookie) = (s.clone(), cookies[i as usize % cookies.len()].clone());
        async move { server.me(&cookie).await }
    })
    .await;
    let mut row = Row::new("me", target.label(), format!("fixed({rate}/s)"))
        .with_hist(&fixed.hist, fixed.elapsed)
        .rss(server.pid)
        .note("half the closed-loop rate; latency from the scheduled send");
    row.errors = fixed.errors;
    row
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
