//! Redis Sentinel (`.ci/redis-topologies up sentinel`, its URL in
//! `TETHER_TEST_REDIS_SENTINEL_URL`): failovers (`SENTINEL FAILOVER`, the
//! primary killed with SIGKILL) that every instance follows by itself, and
//! what only Sentinel has (the primary, replica acknowledgements). Every
//! `on_redis_stacks!` test also runs on Sentinel (`…::sqlite_sentinel::…`).
//!
//! The tests share one topology. A failover test holds
//! [`SENTINEL_TOPOLOGY`] for writing and leaves the topology settled (the
//! script's `up` waits for that, and brings a killed node back as a
//! replica); every other test on it holds it for reading.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::{
    failover::{
        admin_revoke, calls_of, connect, kill, me_status_by, not_revoked, session_key, sign_in_by,
        Settled, FAILOVER_LIMIT,
    },
    helpers::{spawn_app_with, Browser, Stack, TestApp, ADMIN_PASSWORD},
    test_redis::{Sentinels, SENTINEL_TOPOLOGY, SENTINEL_URL_VAR},
};

/// The Sentinel topology under test, seen from outside the app.
#[derive(Clone)]
struct SentinelSet(Sentinels);

impl SentinelSet {
    /// Only called once an app runs on it, so the variable is set.
    fn from_env() -> SentinelSet {
        let url = std::env::var(SENTINEL_URL_VAR).expect("the app runs on Sentinel");
        SentinelSet(Sentinels::parse(&url))
    }

    /// A sentinel command, answered by the first sentinel that answers.
    fn ask<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut last = None;
        for sentinel in &self.0.nodes {
            match connect(sentinel).and_then(|mut c| redis::cmd("SENTINEL").arg(args).query(&mut c))
            {
                Ok(answer) => return answer,
                Err(e) => last = Some(e),
            }
        }
        panic!("no sentinel answered SENTINEL {args:?}: {last:?}")
    }

    /// `HOST:PORT` of the primary, as the sentinels name it now.
    fn primary(&self) -> String {
        self.0.primary().expect("a sentinel names the primary")
    }

    fn primary_connection(&self) -> redis::Connection {
        connect(&self.primary()).expect("connect to the primary")
    }

    /// Waits until the sentinels name a primary other than `old`; returns it.
    /// (After `SENTINEL FAILOVER` the old primary stays writable until the
    /// sentinels demote it, up to ten seconds later.)
    async fn wait_for_new_primary(&self, old: &str, deadline: Instant) -> String {
        loop {
            let set = self.clone();
            let now = tokio::task::spawn_blocking(move || set.primary())
                .await
                .unwrap();
            if now != old {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "the sentinels did not fail {old} over in time"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether `key` exists on the node at `addr`.
    fn exists_on(addr: &str, key: &str) -> bool {
        let mut connection = connect(addr).expect("connect to the primary");
        redis::cmd("EXISTS")
            .arg(key)
            .query(&mut connection)
            .unwrap()
    }

    /// `SENTINEL FAILOVER`: the replica becomes primary, the primary its
    /// replica. A planned failover: the replica first catches up with every
    /// write made so far (`WAIT`), as an operator's would. Replication is
    /// asynchronous, so a write the replica has not received yet is lost by
    /// any failover (only revokes wait for a replica: `TETHER_REDIS_MIN_REPLICAS_ACK`);
    /// on a loaded machine that lag once lost the session this test holds.
    fn fail_over(&self) {
        let caught_up: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(5000)
            .query(&mut self.primary_connection())
            .expect("WAIT");
        assert!(caught_up >= 1, "the replica did not catch up");
        let ok: String = self.ask(&["FAILOVER", self.0.master.as_str()]);
        assert_eq!(ok, "OK");
    }
}

/// An app on the Sentinel topology (SQLite user store), with `extra`
/// settings; `None`, reported, without one.
async fn app_on_sentinel(test: &str, extra: &[(&str, &str)]) -> Option<(SentinelSet, TestApp)> {
    let app = spawn_app_with(test, Stack::SqliteSentinel, extra).await?;
    Some((SentinelSet::from_env(), app))
}

/// Signs in on `app` until the new session is stored on `primary`, before
/// `deadline`: proof that the instance writes to the new primary. (A sign-in
/// an instance made on the old primary before it moved is lost with it.)
async fn sign_in_on(
    app: &TestApp,
    primary: &str,
    (name, password): (&str, &str),
    deadline: Instant,
) -> Browser {
    loop {
        let browser = sign_in_by(app, name, password, deadline).await;
        let me = browser.get(&app.url("/api/auth/me")).await;
        if me.status() == 200 {
            let me: serde_json::Value = me.json().await.unwrap();
            let sid = me["session"]["id"].as_str().unwrap();
            let (primary, key) = (primary.to_owned(), session_key(app, sid));
            let stored =
                tokio::task::spawn_blocking(move || SentinelSet::exists_on(&primary, &key))
                    .await
                    .unwrap();
            if stored {
                return browser;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} still wrote sessions to the old primary",
            app.address
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many connections subscribe to `channel` on the node at `addr`.
async fn subscribers_on(addr: &str, channel: &str) -> usize {
    let (addr, channel) = (addr.to_owned(), channel.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut connection = connect(&addr).expect("connect to the primary");
        let (_, count): (String, usize) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query(&mut connection)
            .expect("PUBSUB NUMSUB");
        count
    })
    .await
    .unwrap()
}

#[test]
fn a_malformed_redis_url_stops_start_up_naming_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tether"))
        .arg("migrate")
        .env_clear()
        .env("REDIS_URL", "redis+sentinel://:hunter2@127.0.0.1:26201")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run tether");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("REDIS_URL"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_me_on_sentinel_keep_the_session_on_its_primary() {
    let test = "topologies::sign_in_and_me_on_sentinel_keep_the_session_on_its_primary";
    let _shared = SENTINEL_TOPOLOGY.read().await;
    let Some((set, app)) = app_on_sentinel(test, &[]).await else {
        return;
    };
    let browser = app.login_admin().await;
    assert_eq!(browser.me(&app).await["user"]["username"], "admin");
    let sid = browser.session_id(&app).await;
    let stored: bool = redis::cmd("EXISTS")
        .arg(session_key(&app, &sid))
        .query(&mut set.primary_connection())
        .unwrap();
    assert!(stored, "the session is on the primary the sentinels name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_on_sentinel_waits_for_a_replica_and_answers_without_one() {
    let test = "topologies::a_revoke_on_sentinel_waits_for_a_replica_and_answers_without_one";
    let _shared = SENTINEL_TOPOLOGY.read().await;
    // Two acknowledgements wanted, one replica there: never enough.
    let settings = [
        ("TETHER_REDIS_MIN_REPLICAS_ACK", "2"),
        ("TETHER_REDIS_REPLICA_WAIT_MS", "200"),
    ];
    let Some((set, app)) = app_on_sentinel(test, &settings).await else {
        return;
    };
    let admin = app.login_admin().await;
    let user = app.login_new_user("vera", &["user"]).await;
    let sid = user.session_id(&app).await;
    let waits_before = calls_of(&set.primary(), "wait");
    assert_eq!(admin_revoke(&app, &admin, &sid).await, 204);
    assert!(
        calls_of(&set.primary(), "wait") > waits_before,
        "the revoke sent WAIT"
    );
    assert_eq!(user.get(&app.url("/api/auth/me")).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sentinel_failover_both_instances_serve_sign_in_and_me_again() {
    let test = "topologies::after_sentinel_failover_both_instances_serve_sign_in_and_me_again";
    let _exclusive = SENTINEL_TOPOLOGY.write().await;
    let Some((set, a)) = app_on_sentinel(test, &[("TETHER_SWEEP_SECS", "3600")]).await else {
        return;
    };
    let _settled = Settled::now("sentinel");
    let b = a.spawn_peer().await;
    let password = a.create_user("fay", &["user"]).await;
    let before = a.login("fay", &password).await;
    let old = set.primary();

    let started = Instant::now();
    set.fail_over();
    let deadline = started + FAILOVER_LIMIT;
    let new = set.wait_for_new_primary(&old, deadline).await;
    for app in [&a, &b] {
        let fresh = sign_in_on(app, &new, ("fay", &password), deadline).await;
        assert_eq!(me_status_by(app, &fresh, deadline).await, 200);
        assert_eq!(
            me_status_by(app, &before, deadline).await,
            200,
            "a session from before the failover stays valid"
        );
    }
    eprintln!(
        "measured: SENTINEL FAILOVER to both instances serving sign-in and me: {:?}",
        started.elapsed()
    );

    // The bus follows: both instances subscribe on the new primary, and a
    // role change made on A reaches a socket on B.
    let channel = format!("{}events", a.env()["TETHER_REDIS_PREFIX"]);
    while subscribers_on(&new, &channel).await < 2 {
        assert!(
            Instant::now() < deadline,
            "the buses did not subscribe on the new primary"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut on_b = before.socket(&b).await;
    a.set_roles("fay", &["user", "messages-admin"]).await;
    let (reply, _) = on_b.request_with_events("messages.admin", json!({})).await;
    assert!(reply.ok, "{reply:?}");
    // The keyspace listener follows, notifications on: a raw DEL on the new
    // primary closes the socket (the sweep is hourly here).
    let sid = before.session_id(&a).await;
    let deleted: i64 = redis::cmd("DEL")
        .arg(session_key(&a, &sid))
        .query(&mut set.primary_connection())
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(on_b.closed().await.0, Some(4001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_revoke_survives_the_primary_being_killed() {
    let test = "topologies::an_acknowledged_revoke_survives_the_primary_being_killed";
    let _exclusive = SENTINEL_TOPOLOGY.write().await;
    let Some((set, app)) = app_on_sentinel(test, &[]).await else {
        return;
    };
    let _settled = Settled::now("sentinel");
    let admin = app.login_admin().await;
    let password = app.create_user("kim", &["user"]).await;
    let revoked = app.login("kim", &password).await;
    let kept = app.login("kim", &password).await;
    let sid = revoked.session_id(&app).await;
    let old = set.primary();

    assert_eq!(admin_revoke(&app, &admin, &sid).await, 204);
    let started = Instant::now();
    kill(&old);
    let deadline = started + FAILOVER_LIMIT;
    let new = set.wait_for_new_primary(&old, deadline).await;
    assert_eq!(
        me_status_by(&app, &kept, deadline).await,
        200,
        "the other session survives"
    );
    eprintln!(
        "measured: primary SIGKILLed to the first successful me: {:?}",
        started.elapsed()
    );
    assert_eq!(
        me_status_by(&app, &revoked, deadline).await,
        401,
        "the revoke survives"
    );
    let again = sign_in_on(&app, &new, ("admin", ADMIN_PASSWORD), deadline).await;
    assert_eq!(me_status_by(&app, &again, deadline).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_open_across_a_failover_is_not_closed_as_revoked() {
    let test = "topologies::a_socket_open_across_a_failover_is_not_closed_as_revoked";
    let _exclusive = SENTINEL_TOPOLOGY.write().await;
    let Some((set, app)) = app_on_sentinel(test, &[]).await else {
        return;
    };
    let _settled = Settled::now("sentinel");
    let password = app.create_user("ines", &["user"]).await;
    let user = app.login("ines", &password).await;
    let mut socket = user.socket(&app).await;
    let old = set.primary();

    let started = Instant::now();
    set.fail_over();
    let deadline = started + FAILOVER_LIMIT;
    let new = set.wait_for_new_primary(&old, deadline).await;
    sign_in_on(&app, &new, ("ines", &password), deadline).await;
    assert_eq!(me_status_by(&app, &user, deadline).await, 200);
    not_revoked(&mut socket).await;
}
