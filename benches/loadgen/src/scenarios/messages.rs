//! `messages`: request/reply round trips over K open sockets, closed loop and
//! at a fixed rate; on tether an allowed `ping` and a `messages.admin` the
//! bench user is forbidden, on the echo baseline the same frames echoed.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use futures_util::{future::join_all, SinkExt, StreamExt};
use serde_json::Value;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{percent, Bench, FIXED_SHARE};
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

/// Closed loop then fixed rate (half of it) for one server and message type.
async fn measure(
    bench: &Bench,
    server: &Server,
    cookies: &[String],
    kind: &'static str,
    expect_ok: bool,
) -> anyhow::Result<(Row, Row)> {
    let k = bench.sizes.message_sockets;
    let secs = bench.sizes.duration();
    let m = closed(open(server, cookies, k).await?, kind, expect_ok, secs).await;
    let mut closed_row = Row::new("messages", &server.label, format!("{kind} closed(k={k})"))
        .with_hist(&m.hist, m.elapsed)
        .rss(server.pid);
    closed_row.errors = m.errors;
    let rate = (closed_row.throughput * FIXED_SHARE).max(10.0).round();
    let m = fixed(open(server, cookies, k).await?, kind, rate, secs).await;
    let mut fixed_row = Row::new("messages", &server.label, format!("{kind} fixed({rate}/s)"))
        .with_hist(&m.hist, m.elapsed)
        .rss(server.pid)
        .note("half the closed-loop rate; latency from the scheduled send");
    fixed_row.errors = m.errors;
    Ok((closed_row, fixed_row))
}

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let mut echo_rate = None;
    if let Some(echo) = bench.echo.clone() {
        let (closed, fixed) = measure(bench, &echo, &[], "ping", true).await?;
        echo_rate = Some(closed.throughput);
        bench.push(closed.note("bare actix-ws ceiling: echo"));
        bench.push(fixed);
    }
    for target in bench.targets.clone() {
        let cookies = http::sessions(&target.server, &target.users, 16, 4).await?;
        for (kind, expect_ok) in [("ping", true), ("messages.admin", false)] {
            let (mut closed, fixed) =
                measure(bench, &target.server, &cookies, kind, expect_ok).await?;
            let met = match echo_rate {
                Some(e) if closed.throughput >= 0.8 * e => "met",
                Some(_) => "MISSED",
                None => "n/a",
            };
            let what = if expect_ok {
                "allowed"
            } else {
                "every reply forbidden"
            };
            closed.note = format!(
                "{what}; {} of echo (target >= 80%: {met})",
                percent(closed.throughput, echo_rate)
            );
            bench.push(closed);
            bench.push(fixed);
        }
    }
    Ok(())
}
