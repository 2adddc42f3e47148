//! How this process reaches Redis, on every topology: the one place that
//! opens connections to it (sessions, the event bus, the sign-in throttle).
//!
//! On one node the address never changes. On Sentinel, a watcher asks the
//! sentinels where the primary is (every [`sentinel::POLL_EVERY`], and at
//! once when a command fails), and every connection handed out here moves to
//! the new primary after a failover by itself. redis-rs does not do this:
//! its `ConnectionManager` reconnects to one fixed address, and its
//! `sentinel` module finds the master for a *new* client but never follows
//! a failover (redis-rs issue #1438). Pub/sub users (the bus, the keyspace
//! listener) ask [`RedisLink::moved_from`] when to subscribe again.
//!
//! On a Cluster, redis-rs's cluster connection routes each command to its
//! slot's primary and follows failovers itself; a watcher ([`cluster`])
//! keeps the list of primaries, on each of which the keyspace listener
//! subscribes ([`RedisLink::cluster_nodes`]).

mod cluster;
mod connection;
mod sentinel;

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use anyhow::Context as _;
use redis::RedisError;
use secrecy::ExposeSecret as _;
use tokio::sync::{watch, Notify};

pub use cluster::ClusterNodes;
pub use connection::{PrimaryConnection, Timeouts};

use crate::{
    config::RedisTopology,
    metrics::{Metrics, RedisOp},
};

/// The primary commands go to now. `generation` grows by one on every move.
#[derive(Clone)]
struct Primary {
    generation: u64,
    /// `HOST:PORT`, for comparing and logging (never a password).
    addr: String,
    client: redis::Client,
}

/// Cheap to clone: clones share the primary and its watcher.
#[derive(Clone)]
pub struct RedisLink {
    inner: Arc<Inner>,
}

struct Inner {
    primary: watch::Sender<Primary>,
    /// Wakes the Sentinel watcher at once; never waited on for one node.
    recheck: Arc<Notify>,
    follows_failover: bool,
    db: i64,
    /// Where failed operations are counted (`tether_redis_errors_total`);
    /// unset in the CLI.
    metrics: OnceLock<Arc<Metrics>>,
    /// Set on a Cluster; `primary` is then one seed node, for pub/sub only.
    cluster: Option<cluster::Cluster>,
}

impl RedisLink {
    /// Connects to the topology `REDIS_URL` names. On Sentinel this asks the
    /// sentinels for the primary now, and fails if none names one that
    /// answers as primary.
    pub async fn connect(topology: &RedisTopology) -> anyhow::Result<RedisLink> {
        match topology {
            RedisTopology::Single(url) => Ok(Self::single(url.expose_secret())?),
            RedisTopology::Sentinel {
                sentinels,
                master,
                password,
            } => sentinel::connect(sentinels, master, password.as_ref()).await,
            RedisTopology::Cluster { nodes, password } => {
                cluster::connect(nodes, password.as_ref()).await
            }
        }
    }

    /// One node at `url`; nothing to follow.
    pub fn single(url: &str) -> anyhow::Result<RedisLink> {
        // The URL may hold a password: it never goes into an error.
        let client = redis::Client::open(url)
            .map_err(|_| anyhow::anyhow!("REDIS_URL is not a valid redis:// or rediss:// URL"))?;
        let info = client.get_connection_info();
        let db = info.redis_settings().db();
        let addr = info.addr().to_string();
        Ok(Self::new(addr, client, db, false, None))
    }

    fn new(
        addr: String,
        client: redis::Client,
        db: i64,
        follows_failover: bool,
        cluster: Option<cluster::Cluster>,
    ) -> RedisLink {
        let (primary, _) = watch::channel(Primary {
            generation: 0,
            addr,
            client,
        });
        RedisLink {
            inner: Arc::new(Inner {
                primary,
                recheck: Arc::new(Notify::new()),
                follows_failover,
                db,
                metrics: OnceLock::new(),
                cluster,
            }),
        }
    }

    /// Counts this link's failed operations in `metrics` from now on.
    pub fn count_errors_in(&self, metrics: Arc<Metrics>) {
        let _ = self.inner.metrics.set(metrics);
    }

    /// An operation failed. `NOSCRIPT` is not a failure: redis-rs answers it
    /// by loading the script and trying again.
    fn failed(&self, op: RedisOp, error: &RedisError) {
        if error.code() != Some("NOSCRIPT") {
            self.count_error(op);
        }
    }

    fn count_error(&self, op: RedisOp) {
        if let Some(metrics) = self.inner.metrics.get() {
            metrics.redis_error(op);
        }
    }

    /// The database every connection selects.
    pub fn db(&self) -> i64 {
        self.inner.db
    }

    /// Which primary is current; changes after a failover.
    pub fn generation(&self) -> u64 {
        self.inner.primary.borrow().generation
    }

    /// The current primary's client and its generation.
    fn client(&self) -> (u64, redis::Client) {
        let primary = self.inner.primary.borrow();
        (primary.generation, primary.client.clone())
    }

    /// The current primary's `HOST:PORT`, for logs.
    pub fn primary_addr(&self) -> String {
        self.inner.primary.borrow().addr.clone()
    }

    /// A command connection to whichever node is primary (on a Cluster: to
    /// each key's), opened on first use from the calling task (see
    /// [`PrimaryConnection`]).
    pub fn connection(&self, timeouts: Timeouts) -> PrimaryConnection {
        PrimaryConnection::new(self.clone(), timeouts)
    }

    /// Whether this is a Cluster (several primaries, each with its own slots).
    pub fn is_cluster(&self) -> bool {
        self.inner.cluster.is_some()
    }

    fn cluster_client(&self) -> Option<&redis::cluster::ClusterClient> {
        self.inner.cluster.as_ref().map(|c| &c.client)
    }

    /// On a Cluster, its nodes as last read (changing after a failover);
    /// `None` on one node or Sentinel.
    pub fn cluster_nodes(&self) -> Option<watch::Receiver<ClusterNodes>> {
        self.inner.cluster.as_ref().map(|c| c.nodes.subscribe())
    }

    /// A pub/sub connection to one node of a Cluster, `HOST:PORT` as
    /// [`RedisLink::cluster_nodes`] names it (keyspace notifications are
    /// published only to the node's own subscribers).
    pub async fn pubsub_at(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> anyhow::Result<redis::aio::PubSub> {
        let cluster = self.inner.cluster.as_ref().context("not a Redis Cluster")?;
        let client = cluster.node_client(addr)?;
        Ok(tokio::time::timeout(timeout, client.get_async_pubsub())
            .await
            .with_context(|| format!("no pub/sub connection to {addr} in time"))??)
    }

    /// A plain command connection to one node of a Cluster (to read and
    /// set that node's own settings).
    pub async fn connection_at(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> anyhow::Result<redis::aio::MultiplexedConnection> {
        let cluster = self.inner.cluster.as_ref().context("not a Redis Cluster")?;
        let client = cluster.node_client(addr)?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        Ok(client
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }

    /// A pub/sub connection to the current primary, and that primary's
    /// generation (hand it to [`RedisLink::moved_from`]). On a Cluster, to
    /// the first node that answers (every node hears every `PUBLISH`); its
    /// subscription ends when that node fails, and the next one goes elsewhere.
    pub async fn pubsub(&self, timeout: Duration) -> anyhow::Result<(redis::aio::PubSub, u64)> {
        if let Some(cluster) = &self.inner.cluster {
            let nodes = cluster.nodes.borrow().all.clone();
            let mut last = anyhow::anyhow!("the cluster has no live node");
            for addr in nodes
                .iter()
                .cycle()
                .skip(rand_start(nodes.len()))
                .take(nodes.len())
            {
                match self.pubsub_at(addr, timeout).await {
                    Ok(pubsub) => return Ok((pubsub, self.generation())),
                    Err(e) => last = e,
                }
            }
            return Err(last);
        }
        let (generation, client) = self.client();
        let pubsub = tokio::time::timeout(timeout, client.get_async_pubsub())
            .await
            .inspect_err(|_| self.count_error(RedisOp::Subscribe))
            .context("no pub/sub connection in time")?
            .inspect_err(|e| self.failed(RedisOp::Subscribe, e))?;
        Ok((pubsub, generation))
    }

    /// Completes once the primary is no longer the one of `generation` (never,
    /// on one node): a subscription there hears nothing more from the new one.
    pub async fn moved_from(&self, generation: u64) {
        let mut changes = self.inner.primary.subscribe();
        // The sender lives in `self`: this only ends by the condition.
        let _ = changes.wait_for(|p| p.generation != generation).await;
    }

    /// A command failed: if it looks like the primary is gone or demoted,
    /// ask the sentinels now instead of at the next poll.
    fn suspect(&self, error: &RedisError) {
        if self.inner.follows_failover && points_elsewhere(error) {
            self.inner.recheck.notify_one();
        }
    }

    /// Moves every connection to `client` at `addr` (the watcher found a new primary).
    fn moved_to(&self, addr: String, client: redis::Client) {
        let from = self.primary_addr();
        self.inner.primary.send_modify(|p| {
            p.generation += 1;
            p.addr = addr.clone();
            p.client = client;
        });
        log::warn!(
            "event=redis_primary_changed from={from} to={addr} generation={}",
            self.generation()
        );
    }
}

/// Where to start trying a Cluster's nodes, so that instances spread their
/// subscriptions over the nodes.
fn rand_start(count: usize) -> usize {
    use rand::Rng as _;
    if count == 0 {
        0
    } else {
        rand::rng().random_range(0..count)
    }
}

/// Errors after which the primary may be elsewhere: it cannot be reached,
/// or it has become a replica (`READONLY`).
fn points_elsewhere(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || error.is_timeout()
        || error.code() == Some("READONLY")
        || error.to_string().contains("READONLY")
}
