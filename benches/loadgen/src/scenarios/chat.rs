//! `chat`: broadcast fan-out. One socket sends `chat.send` B times; each of M
//! other sockets (all holding `chat:read`) records when each `chat.message`
//! arrives. Latency is per delivery, from just before the send. With a second
//! Redis-backed instance, the same runs with the sender on the first instance
//! and all receivers on the second, so each message crosses Redis pub/sub.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{future::join_all, stream, SinkExt, StreamExt};
use serde_json::Value;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{Bench, Target};
use crate::{
    http,
    stats::{histogram, record, Row},
    ws::{self, Socket},
};

/// Time between two broadcasts (well under the 256-frame outbox per socket).
const SPACING: Duration = Duration::from_millis(50);

type SentAt = Arc<Mutex<Vec<Option<Instant>>>>;

/// Reads `chat.message` events until `expected` arrived or the deadline.
async fn receive(
    mut socket: Socket,
    sent: SentAt,
    expected: usize,
    deadline: Instant,
) -> (hdrhistogram::Histogram<u64>, u64) {
    let mut hist = histogram();
    while (hist.len() as usize) < expected {
        let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, socket.next()).await else {
            break;
        };
        let Message::Text(text) = frame else { continue };
        let Ok(event) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        if event["event"] != "chat.message" {
            continue;
        }
        let seq = event["data"]["text"]
            .as_str()
            .and_then(|t| t.strip_prefix("bench "))
            .and_then(|n| n.parse::<usize>().ok());
        let at = seq.and_then(|seq| sent.lock().expect("sent").get(seq).copied().flatten());
        if let Some(at) = at {
            record(&mut hist, at.elapsed());
        }
    }
    let missing = expected as u64 - hist.len();
    let _ = socket.close(None).await;
    (hist, missing)
}

/// The sender on `from`, the receivers on `to` (the same server, or another
/// instance sharing its Redis, where the sessions are valid too).
async fn measure(bench: &Bench, from: &Target, to: &Target, label: &str) -> anyhow::Result<Row> {
    let (m, b) = (bench.sizes.chat_sockets, bench.sizes.chat_broadcasts);
    let server = &to.server;
    let cookies = http::sessions(&from.server, &from.users, 16, 4).await?;
    let url = server.ws_url();
    let receivers: Vec<_> = stream::iter(0..m)
        .map(|i| {
            let (url, cookie) = (url.clone(), cookies[i % cookies.len()].clone());
            async move { ws::connect_hello(&url, Some(&cookie)).await.map(|(s, _)| s) }
        })
        .buffer_unordered(128)
        .collect()
        .await;
    let receivers: Vec<Socket> = receivers.into_iter().collect::<Result<_, _>>()?;
    let (mut sender, _) = ws::connect_hello(&from.server.ws_url(), Some(&cookies[0])).await?;
    let sent: SentAt = Arc::new(Mutex::new(vec![None; b]));
    let deadline = Instant::now() + SPACING * b as u32 + Duration::from_secs(15);
    let tasks: Vec<_> = receivers
        .into_iter()
        .map(|s| tokio::spawn(receive(s, sent.clone(), b, deadline)))
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let mut send_errors = 0u64;
    for seq in 0..b {
        tokio::time::sleep_until(start + SPACING * seq as u32).await;
        sent.lock().expect("sent")[seq] = Some(Instant::now());
        let frame = format!(
            r#"{{"id":{seq},"type":"chat.send","data":{{"room":"bench","text":"bench {seq}"}}}}"#
        );
        if sender.send(Message::text(frame)).await.is_err() {
            send_errors += 1;
        }
    }
    // Drain the sender's own replies and echoes in the background.
    let drain = tokio::spawn(receive(sender, sent.clone(), b, deadline));
    let mut hist = histogram();
    let mut missing = send_errors;
    for (h, miss) in join_all(tasks).await.into_iter().flatten() {
        let _ = hist.add(&h);
        missing += miss;
    }
    let elapsed = start.elapsed();
    let _ = drain.await;
    let mut row = Row::new("chat", label, format!("M={m} x {b}"))
        .with_hist(&hist, elapsed)
        .rss(server.pid)
        .note(format!(
            "deliveries/s; one chat.send every {} ms fanned out to {m} sockets",
            SPACING.as_millis()
        ));
    row.errors = missing;
    Ok(row)
}

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    for target in bench.targets.clone() {
        let row = measure(bench, &target, &target, target.label()).await?;
        bench.push(row);
    }
    let first_redis = bench.targets.iter().find(|t| t.label() == "redis").cloned();
    if let (Some(from), Some(to)) = (first_redis, bench.second.clone()) {
        let label = format!("{}->{}", from.label(), to.label());
        let row = measure(bench, &from, &to, &label).await?;
        bench.push(row);
    }
    Ok(())
}
