//! `messages`: request/reply round trips over K open sockets, closed loop and
//! at a fixed rate; on tether an allowed `ping` and a `messages.admin` the
//! bench user is forbidden, on the echo baseline the same frames echoed.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use futures_util::{future::join_all, SinkExt, StreamExt};
use serde_json::Value;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{median_round, per_second, percent, percents, Bench, FIXED_SHARE, ROUNDS};
use crate::{
    http::{self, Server},
    load::{self, Measured},
    stats::{histogram, record, Row},
    ws::{self, Socket},
};

/// Opens `count` sockets (cookies round-robin; none for the echo server).
async fn open(server: &Server, cookies: &[String], count: usize) -> anyhow::Result<Vec<Socket>> {
    let url = server.ws_url();
    let opened = join_all((0..count).map(|i| {
        let cookie = (!cookies.is_empty()).then(|| cookies[i % cookies.len()].clone());
        let url = url.clone();
        async move {
            ws::connect_hello(&url, cookie.as_deref())
                .await
                .map(|(s, _)| s)
        }
    }))
    .await;
    opened.into_iter().collect()
}

/// Closed loop: every socket sends `kind` and waits for its reply.
/// `expect_ok`: whether tether must accept (`ping`) or refuse (`forbidden`).
/// The sockets are dropped at the end.
async fn closed(
    sockets: Vec<Socket>,
    kind: &'static str,
    expect_ok: bool,
    secs: Duration,
) -> Measured {
    let states: Vec<(Socket, u64)> = sockets.into_iter().map(|s| (s, 0)).collect();
    load::closed_loop(states, secs, move |(mut socket, id)| async move {
        let outcome = match ws::round_trip(&mut socket, id, kind).await {
            Ok(ok) if ok == expect_ok => Ok(()),
            Ok(ok) => Err(anyhow::anyhow!("{kind}: ok={ok}")),
            Err(e) => Err(e),
        };
        ((socket, id + 1), outcome)
    })
    .await
}

/// Fixed rate: `rate` frames/s in total, spread evenly over the sockets;
/// each reply's latency runs from its frame's scheduled send time.
async fn fixed(sockets: Vec<Socket>, kind: &'static str, rate: f64, secs: Duration) -> Measured {
    let per_socket = rate / sockets.len() as f64;
    let count = (per_socket * secs.as_secs_f64()).round() as u64;
    let start = Instant::now();
    let tasks = sockets.into_iter().enumerate().map(|(k, socket)| {
        let offset = Duration::from_secs_f64(k as f64 / rate);
        tokio::spawn(async move {
            let (mut sink, mut stream) = socket.split();
            let pending = Arc::new(std::sync::Mutex::new(VecDeque::new()));
            let sent = pending.clone();
            let sender = tokio::spawn(async move {
                for i in 0..count {
                    let at = start + offset + Duration::from_secs_f64(i as f64 / per_socket);
                    tokio::time::sleep_until(at).await;
                    sent.lock().expect("queue").push_back(at);
                    let frame = format!(r#"{{"id":{i},"type":"{kind}","data":{{}}}}"#);
                    if sink.send(Message::text(frame)).await.is_err() {
                        break;
                    }
                }
                sink
            });
            let mut hist = histogram();
            let mut errors = 0u64;
            let deadline = start + secs + ws::TIMEOUT;
            while hist.len() + errors < count {
                let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, stream.next()).await
                else {
                    break;
                };
                let Message::Text(text) = frame else { continue };
                let Ok(reply) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                if reply.get("re").is_none() && reply.get("id").is_none() {
                    continue; // an event, not a reply
                }
                let Some(at) = pending.lock().expect("queue").pop_front() else {
                    continue;
                };
                record(&mut hist, at.elapsed());
            }
            errors += count.saturating_sub(hist.len() + errors);
            if let Ok(sink) = sender.await {
                if let Ok(mut socket) = sink.reunite(stream) {
                    let _ = socket.close(None).await;
                }
            }
            (hist, errors)
        })
    });
    let mut measured = Measured {
        hist: histogram(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for done in join_all(tasks).await.into_iter().flatten() {
        let _ = measured.hist.add(&done.0);
        measured.errors += done.1;
    }
    measured.elapsed = start.elapsed().min(secs + Duration::from_millis(200));
    measured
}

/// One closed-loop measurement of one server and message type.
async fn closed_row(
    bench: &Bench,
    server: &Server,
    cookies: &[String],
    kind: &'static str,
    expect_ok: bool,
) -> anyhow::Result<Row> {
    let k = bench.sizes.message_sockets;
    let secs = bench.sizes.duration();
    let m = closed(open(server, cookies, k).await?, kind, expect_ok, secs).await;
    let mut row = Row::new("messages", &server.label, format!("{kind} closed(k={k})"))
        .with_hist(&m.hist, m.elapsed)
        .rss(server.pid);
    row.errors = m.errors;
    Ok(row)
}

/// Fixed rate at `rate` frames/s.
async fn fixed_row(
    bench: &Bench,
    server: &Server,
    cookies: &[String],
    kind: &'static str,
    rate: f64,
) -> anyhow::Result<Row> {
    let k = bench.sizes.message_sockets;
    let secs = bench.sizes.duration();
    let m = fixed(open(server, cookies, k).await?, kind, rate, secs).await;
    let mut row = Row::new("messages", &server.label, format!("{kind} fixed({rate}/s)"))
        .with_hist(&m.hist, m.elapsed)
        .rss(server.pid)
        .note("half the closed-loop rate; latency from the scheduled send");
    row.errors = m.errors;
    Ok(row)
}

/// One server and message type, measured once per round.
struct Case {
    server: Server,
    cookies: Vec<String>,
    kind: &'static str,
    expect_ok: bool,
    rounds: Vec<Row>,
}

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let mut cases = Vec::new();
    if let Some(echo) = bench.echo.clone() {
        cases.push(Case {
            server: echo,
            cookies: Vec::new(),
            kind: "ping",
            expect_ok: true,
            rounds: Vec::new(),
        });
    }
    for target in bench.targets.clone() {
        let cookies = http::sessions(&target.server, &target.users, 16, 4).await?;
        for (kind, expect_ok) in [("ping", true), ("messages.admin", false)] {
            cases.push(Case {
                server: target.server.clone(),
                cookies: cookies.clone(),
                kind,
                expect_ok,
                rounds: Vec::new(),
            });
        }
    }
    for _ in 0..ROUNDS {
        for case in cases.iter_mut() {
            let row = closed_row(
                bench,
                &case.server,
                &case.cookies,
                case.kind,
                case.expect_ok,
            );
            case.rounds.push(row.await?);
        }
    }
    let echo_rounds: Option<Vec<f64>> = bench
        .echo
        .is_some()
        .then(|| cases[0].rounds.iter().map(|r| r.throughput).collect());
    for case in cases {
        let is_echo = case.server.label == "echo";
        let keyed = case.rounds.into_iter().enumerate().map(|(i, row)| {
            let key = match &echo_rounds {
                Some(echo) if !is_echo => row.throughput / echo[i],
                _ => row.throughput,
            };
            (key, row)
        });
        let (key, mut closed, keys) = median_round(keyed.collect());
        closed.note = if is_echo {
            format!("bare actix-ws ceiling: echo; rounds: {}", per_second(&keys))
        } else {
            let what = if case.expect_ok {
                "allowed"
            } else {
                "every reply forbidden"
            };
            match echo_rounds {
                Some(_) => format!(
                    "{what}; {} of echo in the same round (target >= 80%: {}); rounds: {}",
                    percent(key, Some(1.0)),
                    if key >= 0.8 { "met" } else { "MISSED" },
                    percents(&keys)
                ),
                None => format!("{what}; rounds: {}", per_second(&keys)),
            }
        };
        let rate = (closed.throughput * FIXED_SHARE).max(10.0).round();
        bench.push(closed);
        let fixed = fixed_row(bench, &case.server, &case.cookies, case.kind, rate).await?;
        bench.push(fixed);
    }
    Ok(())
}
