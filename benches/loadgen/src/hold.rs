//! `loadgen hold`: a child process that holds idle WebSocket connections for
//! the `idle` scenario. Each process may open at most 20,000 files here, so
//! the sockets are spread over several of these (and over the source
//! addresses 127.0.0.2–9, see `ws.rs`); the load side is then never the limit.
//!
//! Protocol, one JSON value per line: the parent first writes a [`Setup`],
//! then [`Command`]s; the child answers each command with one [`Reply`].
//! End of input closes every socket and ends the process.

use std::time::Duration;

use anyhow::Context;
use futures_util::{stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout},
    sync::watch,
    task::JoinHandle,
    time::Instant,
};

use crate::ws::{self, Socket};

/// Connection attempts in flight per process while filling up to a level.
const PARALLEL: usize = 128;

#[derive(Serialize, Deserialize)]
pub struct Setup {
    pub url: String,
    /// Cookies used round-robin; empty: connect without a cookie.
    pub cookies: Vec<String>,
    /// Where in `cookies` this process starts, so processes spread over sessions.
    pub offset: usize,
}

#[derive(Serialize, Deserialize)]
pub enum Command {
    /// Open sockets until this process has made this many in all.
    Open(usize),
    /// Count the sockets still open.
    Count,
}

#[derive(Serialize, Deserialize, Default)]
pub struct Reply {
    /// Time to open each new socket (upgrade + `hello`), in microseconds.
    pub latencies_us: Vec<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
    pub alive: usize,
}

/// Reads until told to stop (answering heartbeat pings as it reads), then closes.
fn keep(mut socket: Socket, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
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

/// The child's main loop (`loadgen hold`).
pub async fn serve() -> anyhow::Result<()> {
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    let mut output = tokio::io::stdout();
    let line = input.next_line().await?.context("no setup line")?;
    let setup: Setup = serde_json::from_str(&line)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut held: Vec<JoinHandle<()>> = Vec::new();
    let mut attempted = 0usize;
    while let Some(line) = input.next_line().await? {
        let mut reply = Reply::default();
        match serde_json::from_str::<Command>(&line)? {
            Command::Open(total) => {
                let opened: Vec<_> = stream::iter(attempted..total.max(attempted))
                    .map(|i| {
                        let cookie = (!setup.cookies.is_empty()).then(|| {
                            setup.cookies[(setup.offset + i) % setup.cookies.len()].clone()
                        });
                        let url = setup.url.clone();
                        async move {
                            let began = Instant::now();
                            let socket = ws::connect_hello(&url, cookie.as_deref()).await;
                            socket.map(|(s, _)| (s, began.elapsed()))
                        }
                    })
                    .buffer_unordered(PARALLEL)
                    .collect()
                    .await;
                attempted = attempted.max(total);
                for outcome in opened {
                    match outcome {
                        Ok((socket, latency)) => {
                            reply.latencies_us.push(latency.as_micros() as u64);
                            held.push(keep(socket, stop_rx.clone()));
                        }
                        Err(e) => {
                            reply.errors += 1;
                            reply.first_error.get_or_insert(e.to_string());
                        }
                    }
                }
            }
            Command::Count => {}
        }
        reply.alive = held.iter().filter(|h| !h.is_finished()).count();
        let mut text = serde_json::to_string(&reply)?;
        text.push('\n');
        output.write_all(text.as_bytes()).await?;
        output.flush().await?;
    }
    let _ = stop_tx.send(true);
    for task in held {
        let _ = task.await;
    }
    Ok(())
}

/// The parent's handle on one `loadgen hold` process.
pub struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Holder {
    pub async fn spawn(setup: &Setup) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding loadgen's own path")?;
        let mut child = tokio::process::Command::new(exe)
            .arg("hold")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting `loadgen hold`")?;
        let stdin = child.stdin.take().context("child stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("child stdout")?).lines();
        let mut holder = Self {
            child,
            stdin: Some(stdin),
            stdout,
        };
        holder.write(&serde_json::to_string(setup)?).await?;
        Ok(holder)
    }

    async fn write(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("holder already stopped")?;
        stdin.write_all(line.as_bytes()).await?;
        stdin.write_all(b"\n").await?;
        stdin.flush().await?;
        Ok(())
    }

    pub async fn ask(&mut self, command: Command) -> anyhow::Result<Reply> {
        self.write(&serde_json::to_string(&command)?).await?;
        let line = self
            .stdout
            .next_line()
            .await?
            .context("`loadgen hold` ended early")?;
        Ok(serde_json::from_str(&line)?)
    }

    /// Closes the child's sockets (by ending its input) and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .context("`loadgen hold` did not stop")??;
        Ok(())
    }
}
