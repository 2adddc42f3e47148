//! Redis Cluster (`.ci/redis-topologies up cluster`, its URL in
//! `TETHER_TEST_REDIS_CLUSTER_URL`): keyspace notifications heard from every
//! primary, and failovers (`CLUSTER FAILOVER` on a replica, a primary killed
//! with SIGKILL) that every instance follows by itself. Every
//! `on_redis_stacks!` test also runs on the Cluster (`…::sqlite_cluster::…`).
//!
//! The tests share one topology. A failover test holds [`CLUSTER_TOPOLOGY`]
//! for writing and leaves the topology settled (the script's `up` waits for
//! that, and brings a killed node back as a replica); every other test on it
//! holds it for reading.

use std::time::Duration;

use serde_json::json;
use tether::ws::protocol::ServerEvent;
use tokio::time::Instant;

use crate::{
    failover::{
        admin_revoke, calls_of, connect, kill, me_status_by, not_revoked, session_key, sign_in_by,
        Settled, FAILOVER_LIMIT,
    },
    helpers::{spawn_app_with, Browser, Stack, TestApp, ADMIN_PASSWORD, PATIENCE},
    test_redis::{ClusterSeeds, CLUSTER_TOPOLOGY, CLUSTER_URL_VAR},
};

/// One node of the cluster as `CLUSTER NODES` describes it.
#[derive(Debug, Clone)]
struct Node {
    addr: String,
    id: String,
    /// A primary serving slots.
    primary: bool,
    /// For a replica, its primary's id.
    replica_of: Option<String>,
}

/// The Cluster under test, seen from outside the app.
#[derive(Clone)]
struct ClusterSet(ClusterSeeds);

impl ClusterSet {
    /// Only called once an app runs on it, so the variable is set.
    fn from_env() -> ClusterSet {
        let url = std::env::var(CLUSTER_URL_VAR).expect("the app runs on a cluster");
        ClusterSet(ClusterSeeds::parse(&url))
    }

    /// The live nodes, as the first node that answers sees them.
    fn nodes(&self) -> Vec<Node> {
        for seed in &self.0.nodes {
            let Ok(text) = connect(seed)
                .and_then(|mut c| redis::cmd("CLUSTER").arg("NODES").query::<String>(&mut c))
            else {
                continue;
            };
            return text
                .lines()
                .filter_map(|line| {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    let addr = f.get(1)?.split(['@', ',']).next()?.to_owned();
                    let flags = *f.get(2)?;
                    if addr.starts_with(':') || flags.contains("fail") {
                        return None;
                    }
                    let is_primary = flags.split(',').any(|x| x == "master");
                    Some(Node {
                        addr,
                        id: f[0].to_owned(),
                        primary: is_primary && f.len() > 8,
                        replica_of: (!is_primary).then(|| f[3].to_owned()),
                    })
                })
                .collect();
        }
        panic!("no cluster node answered CLUSTER NODES");
    }

    /// The primary that holds `key` (the one node that has it).
    fn primary_of(&self, key: &str) -> String {
        self.nodes()
            .into_iter()
            .filter(|n| n.primary)
            .find(|n| Self::exists_on(&n.addr, key))
            .map(|n| n.addr)
            .unwrap_or_else(|| panic!("no primary holds {key}"))
    }

    /// Whether `key` exists on the node at `addr` (a node that does not
    /// serve its slot answers `MOVED`: no).
    fn exists_on(addr: &str, key: &str) -> bool {
        connect(addr)
            .and_then(|mut c| redis::cmd("EXISTS").arg(key).query::<bool>(&mut c))
            .unwrap_or(false)
    }

    /// The replica of the primary at `primary`.
    fn replica_of(&self, primary: &str) -> String {
        let nodes = self.nodes();
        let id = &nodes
            .iter()
            .find(|n| n.addr == primary)
            .expect("the primary is a node")
            .id;
        nodes
            .iter()
            .find(|n| n.replica_of.as_ref() == Some(id))
            .map(|n| n.addr.clone())
            .unwrap_or_else(|| panic!("{primary} has no replica"))
    }

    /// Waits until the node at `addr` serves slots as a primary.
    async fn wait_until_primary(&self, addr: &str, deadline: Instant) {
        loop {
            let set = self.clone();
            let nodes = tokio::task::spawn_blocking(move || set.nodes())
                .await
                .unwrap();
            if nodes.iter().any(|n| n.addr == addr && n.primary) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{addr} did not become primary in time"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `CLUSTER FAILOVER` on `replica`: a planned failover, in which the
    /// replica first catches up with its primary (no write is lost).
    fn fail_over_to(replica: &str) {
        let ok: String = redis::cmd("CLUSTER")
            .arg("FAILOVER")
            .query(&mut connect(replica).expect("connect to the replica"))
            .expect("CLUSTER FAILOVER");
        assert_eq!(ok, "OK");
    }
}

/// An app on the Cluster (SQLite user store), with `extra` settings;
/// `None`, reported, without one.
async fn app_on_cluster(test: &str, extra: &[(&str, &str)]) -> Option<(ClusterSet, TestApp)> {
    let app = spawn_app_with(test, Stack::SqliteCluster, extra).await?;
    Some((ClusterSet::from_env(), app))
}

/// The primary holding the session of `browser` (signed in on `app`).
async fn primary_of_session(set: &ClusterSet, app: &TestApp, browser: &Browser) -> String {
    let key = session_key(app, &browser.session_id(app).await);
    let set = set.clone();
    tokio::task::spawn_blocking(move || set.primary_of(&key))
        .await
        .unwrap()
}

/// Signs in until one session is stored on each of `primaries`; returns
/// them in that order.
async fn one_session_on_each(
    set: &ClusterSet,
    app: &TestApp,
    (name, password): (&str, &str),
    primaries: &[String],
) -> Vec<Browser> {
    let mut found: Vec<Option<Browser>> = primaries.iter().map(|_| None).collect();
    for _ in 0..200 {
        let browser = app.login(name, password).await;
        let on = primary_of_session(set, app, &browser).await;
        if let Some(i) = primaries.iter().position(|p| *p == on) {
            if found[i].is_none() {
                found[i] = Some(browser);
            }
        }
        if found.iter().all(Option::is_some) {
            return found.into_iter().map(Option::unwrap).collect();
        }
    }
    panic!("200 sign-ins did not reach every primary");
}

/// Signs in on `app` until a new session lands on `primary` (proof that the
/// instance writes there), before `deadline`.
async fn sign_in_on(
    set: &ClusterSet,
    app: &TestApp,
    primary: &str,
    (name, password): (&str, &str),
    deadline: Instant,
) -> Browser {
    loop {
        if let Ok(browser) = app.try_login(name, password).await {
            let me = browser.get(&app.url("/api/auth/me")).await;
            if me.status() == 200 && primary_of_session(set, app, &browser).await == primary {
                return browser;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} did not sign in on {primary} in time",
            app.address
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_del_on_any_primary_closes_that_sessions_sockets() {
    let test = "redis_cluster::a_raw_del_on_any_primary_closes_that_sessions_sockets";
    let _shared = CLUSTER_TOPOLOGY.read().await;
    // Only keyspace notifications can close them in time: the sweep is hourly.
    let Some((set, a)) = app_on_cluster(test, &[("TETHER_SWEEP_SECS", "3600")]).await else {
        return;
    };
    let b = a.spawn_peer().await;
    let password = a.create_user("uma", &["user"]).await;
    let primaries: Vec<String> = set
        .nodes()
        .into_iter()
        .filter(|n| n.primary)
        .map(|n| n.addr)
        .collect();
    assert_eq!(primaries.len(), 3, "{primaries:?}");
    let browsers = one_session_on_each(&set, &a, ("uma", &password), &primaries).await;
    for (browser, primary) in browsers.iter().zip(&primaries) {
        let mut on_b = browser.socket(&b).await;
        let key = session_key(&a, &browser.session_id(&a).await);
        a.redis.as_ref().unwrap().delete_key(&key);
        let (code, events) = on_b.closed().await;
        assert_eq!(code, Some(4001), "socket of a session on {primary}");
        assert_eq!(
            events.last(),
            Some(&ServerEvent::SessionRevoked {
                reason: tether::domain::EndReason::Deleted
            })
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_on_the_cluster_waits_for_the_replica_of_its_keys_primary() {
    let test = "redis_cluster::a_revoke_on_the_cluster_waits_for_the_replica_of_its_keys_primary";
    let _shared = CLUSTER_TOPOLOGY.read().await;
    let Some((set, app)) = app_on_cluster(test, &[]).await else {
        return;
    };
    let admin = app.login_admin().await;
    let user = app.login_new_user("vic", &["user"]).await;
    let sid = user.session_id(&app).await;
    let primary = primary_of_session(&set, &app, &user).await;
    let waits = |addr: &str| calls_of(addr, "wait");
    let before = waits(&primary);
    assert_eq!(admin_revoke(&app, &admin, &sid).await, 204);
    assert!(
        waits(&primary) > before,
        "WAIT went to {primary}, the key's primary"
    );
    assert_eq!(user.get(&app.url("/api/auth/me")).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_cluster_failover_both_instances_serve_and_sessions_and_sockets_stay() {
    let test =
        "redis_cluster::after_cluster_failover_both_instances_serve_and_sessions_and_sockets_stay";
    let _exclusive = CLUSTER_TOPOLOGY.write().await;
    let Some((set, a)) = app_on_cluster(test, &[("TETHER_SWEEP_SECS", "3600")]).await else {
        return;
    };
    let _settled = Settled::now("cluster");
    let b = a.spawn_peer().await;
    let password = a.create_user("fay", &["user"]).await;
    let before = a.login("fay", &password).await;
    let old = primary_of_session(&set, &a, &before).await;
    let mut socket = before.socket(&b).await;
    let replica = set.replica_of(&old);

    let started = Instant::now();
    ClusterSet::fail_over_to(&replica);
    let deadline = started + FAILOVER_LIMIT;
    set.wait_until_primary(&replica, deadline).await;
    for app in [&a, &b] {
        let fresh = sign_in_on(&set, app, &replica, ("fay", &password), deadline).await;
        assert_eq!(me_status_by(app, &fresh, deadline).await, 200);
        assert_eq!(
            me_status_by(app, &before, deadline).await,
            200,
            "a session from before the failover stays valid"
        );
    }
    eprintln!(
        "measured: CLUSTER FAILOVER to both instances serving sign-in and me: {:?}",
        started.elapsed()
    );
    not_revoked(&mut socket).await;

    // A role change on A reaches a socket on B.
    let mut on_b = before.socket(&b).await;
    a.set_roles("fay", &["user", "messages-admin"]).await;
    let (reply, _) = on_b.request_with_events("messages.admin", json!({})).await;
    assert!(reply.ok, "{reply:?}");
    // The keyspace listener found the new primary: a raw DEL there closes
    // the socket (the sweep is hourly here).
    a.redis
        .as_ref()
        .unwrap()
        .delete_key(&session_key(&a, &before.session_id(&a).await));
    assert_eq!(on_b.closed().await.0, Some(4001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_revoke_survives_its_primary_being_killed() {
    let test = "redis_cluster::an_acknowledged_revoke_survives_its_primary_being_killed";
    let _exclusive = CLUSTER_TOPOLOGY.write().await;
    let Some((set, app)) = app_on_cluster(test, &[]).await else {
        return;
    };
    let _settled = Settled::now("cluster");
    let b = app.spawn_peer().await;
    let admin = app.login_admin().await;
    let password = app.create_user("kim", &["user"]).await;
    let revoked = app.login("kim", &password).await;
    let doomed = primary_of_session(&set, &app, &revoked).await;
    // A session on the same primary, stored before the revoke: the revoke's
    // WAIT covers it (replication keeps order), so it must survive too.
    let kept = one_session_on_each(
        &set,
        &app,
        ("kim", &password),
        std::slice::from_ref(&doomed),
    )
    .await
    .remove(0);
    let mut socket = kept.socket(&b).await;
    let sid = revoked.session_id(&app).await;
    let replica = set.replica_of(&doomed);

    assert_eq!(admin_revoke(&app, &admin, &sid).await, 204);
    let started = Instant::now();
    kill(&doomed);
    let deadline = started + FAILOVER_LIMIT;
    set.wait_until_primary(&replica, deadline).await;
    for instance in [&app, &b] {
        assert_eq!(
            me_status_by(instance, &kept, deadline).await,
            200,
            "the other session survives"
        );
        assert_eq!(
            me_status_by(instance, &revoked, deadline).await,
            401,
            "the revoke survives"
        );
        // A sign-in writes to two primaries at least (its hash, the global
        // index), whichever were lost.
        let again = sign_in_by(instance, "admin", ADMIN_PASSWORD, deadline).await;
        assert_eq!(me_status_by(instance, &again, deadline).await, 200);
    }
    eprintln!(
        "measured: primary SIGKILLed to sign-in and me (sessions on its promoted replica) on both instances: {:?}",
        started.elapsed()
    );
    not_revoked(&mut socket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_waits_for_every_live_instance_not_for_publishs_count() {
    let test = "redis_cluster::a_change_waits_for_every_live_instance_not_for_publishs_count";
    let _shared = CLUSTER_TOPOLOGY.read().await;
    let Some((_set, a)) = app_on_cluster(test, &[]).await else {
        return;
    };
    let (b, c) = (a.spawn_peer().await, a.spawn_peer().await);
    // Each instance's subscription is on a node of its own choosing, and
    // `PUBLISH` counts only the subscribers of the node that runs it: the
    // count to wait for is the census's three live instances.
    let sessions = &a.state.sessions;
    let deadline = Instant::now() + PATIENCE;
    while sessions.peers("").await.unwrap().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the census did not list three instances"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..5 {
        let event = tether::events::Event::UserChanged {
            user_id: uuid::Uuid::new_v4(),
        };
        let acked = sessions.bus.publish_and_wait(event).await.unwrap();
        assert_eq!(
            acked, 3,
            "every instance acknowledged before the change answered"
        );
    }
    drop((b, c));
}
