//! What the failover tests of every topology share (tests/api/topologies.rs
//! for Sentinel, redis_cluster.rs for Cluster): settling the topology again,
//! killing a node, and waiting for an instance to serve again.

use std::time::Duration;

use serde_json::json;
use tether::ws::{
    handlers,
    protocol::{ServerEvent, ServerFrame},
};
use tokio::time::Instant;

use crate::helpers::{Browser, Seen, Socket, TestApp, PATIENCE};

/// What the issue allows between losing a primary and serving again.
pub const FAILOVER_LIMIT: Duration = Duration::from_secs(10);

/// A plain blocking connection to one Redis node, `HOST:PORT`.
pub fn connect(node: &str) -> redis::RedisResult<redis::Connection> {
    redis::Client::open(format!("redis://{node}"))?
        .get_connection_with_timeout(Duration::from_secs(2))
}

/// How many times the node at `addr` has run `command` (`INFO commandstats`).
pub fn calls_of(addr: &str, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut connect(addr).expect("connect to the node"))
        .expect("INFO commandstats");
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// SIGKILLs the process of the node at `addr`.
pub fn kill(addr: &str) {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(&mut connect(addr).expect("connect to the node"))
        .expect("INFO server");
    let pid = info
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .expect("process_id in INFO")
        .trim()
        .to_owned();
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -KILL {pid}");
}

/// Brings any stopped node of `topology` back (as a replica) and waits until
/// it is healthy, now and again when dropped, however the test ends: the
/// tests after a failover test need a settled topology.
pub struct Settled(&'static str);

impl Settled {
    pub fn now(topology: &'static str) -> Settled {
        settle(topology);
        Settled(topology)
    }
}

impl Drop for Settled {
    fn drop(&mut self) {
        settle(self.0);
    }
}

/// `.ci/redis-topologies up TOPOLOGY`: starts what is stopped, waits until healthy.
fn settle(topology: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/redis-topologies");
    let out = std::process::Command::new(script)
        .args(["up", topology])
        .output()
        .expect("run .ci/redis-topologies");
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        if std::thread::panicking() {
            eprintln!("the {topology} topology did not settle: {why}");
        } else {
            panic!("the {topology} topology did not settle: {why}");
        }
    }
}

/// The Redis key of session `sid` of `app`.
pub fn session_key(app: &TestApp, sid: &str) -> String {
    format!("{}session:{{{sid}}}", app.env()["TETHER_REDIS_PREFIX"])
}

/// `DELETE /api/admin/sessions/{sid}` as `admin`; the status.
pub async fn admin_revoke(app: &TestApp, admin: &Browser, sid: &str) -> u16 {
    let url = app.url(&format!("/api/admin/sessions/{sid}"));
    admin.delete(&url).await.status().as_u16()
}

/// Signs in on `app` as soon as it can, before `deadline`.
pub async fn sign_in_by(app: &TestApp, name: &str, password: &str, deadline: Instant) -> Browser {
    loop {
        match app.try_login(name, password).await {
            Ok(browser) => return browser,
            Err(status) => assert!(
                Instant::now() < deadline,
                "{name} could not sign in on {} in time (last status {status})",
                app.address
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /api/auth/me`'s status once it is no longer 503, before `deadline`.
pub async fn me_status_by(app: &TestApp, browser: &Browser, deadline: Instant) -> u16 {
    loop {
        let status = browser
            .get(&app.url("/api/auth/me"))
            .await
            .status()
            .as_u16();
        if status != 503 {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "me still answered 503 on {} in time",
            app.address
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Watches `socket` for `PATIENCE` (the resubscriptions after a failover
/// made the sweep re-check every socket's session): it must not be told its
/// session was revoked, nor closed as such; if still open, it answers a ping.
pub async fn not_revoked(socket: &mut Socket) {
    let watch_until = Instant::now() + PATIENCE;
    while let Some(seen) = socket.next_within(watch_until - Instant::now()).await {
        match seen {
            Seen::Frame(ServerFrame::Event(ServerEvent::SessionRevoked { reason })) => {
                panic!("revoked ({reason:?}) although the session exists")
            }
            Seen::Frame(_) => continue,
            Seen::Closed(code) => {
                assert_ne!(code, Some(4001), "closed as revoked");
                return;
            }
        }
    }
    assert!(socket.ask::<handlers::ping::Ping>(json!({})).await.ok);
}
