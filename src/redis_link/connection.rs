//! [`PrimaryConnection`]: a command connection that always reaches the
//! node holding a key: the current primary (one node, Sentinel), or on a
//! Cluster the primary of the key's hash slot.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::future::try_join_all;
use redis::{
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterConfig,
    cluster_async::ClusterConnection,
    cluster_routing::{Route, SingleNodeRoutingInfo, Slot, SlotAddr},
    Cmd, Pipeline, RedisFuture, RedisResult, Value,
};

use super::RedisLink;
use crate::metrics::RedisOp;

/// A connection's deadlines: to open it, and for each answer.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub response: Duration,
    /// Reconnection attempts before a command fails (`None`: redis-rs's default).
    pub retries: Option<usize>,
}

impl Timeouts {
    fn manager_config(self) -> ConnectionManagerConfig {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect))
            .set_response_timeout(Some(self.response))
            .set_max_delay(Duration::from_millis(500));
        match self.retries {
            Some(retries) => config.set_number_of_retries(retries),
            None => config,
        }
    }

    fn cluster_config(self) -> ClusterConfig {
        ClusterConfig::new()
            .set_connection_timeout(self.connect)
            .set_response_timeout(self.response)
    }
}

/// One node: an auto-reconnecting connection (redis-rs's
/// `ConnectionManager`) to the primary, replaced by one to the new primary
/// after a failover. A Cluster: redis-rs's cluster connection, which routes
/// each command to its slot's primary and follows the cluster's topology
/// (`MOVED`, failovers) itself.
///
/// Opened on first use, from the task that uses it: redis-rs drives a
/// connection from the runtime that opened it, so a clone made for an HTTP
/// worker thread (see `RedisBackend::for_worker`) is opened there. Clones
/// share the connection; use it like any redis-rs async connection, and
/// [`PrimaryConnection::per_key`] for a batch whose keys may lie in several
/// hash slots.
#[derive(Clone)]
pub struct PrimaryConnection {
    link: RedisLink,
    timeouts: Timeouts,
    open: Arc<Opening>,
}

#[derive(Default)]
struct Opening {
    /// The connection and the primary generation it was opened to.
    current: Mutex<Option<(u64, Opened)>>,
    /// Held while opening, so requests queued behind one open share it.
    opening: tokio::sync::Mutex<()>,
}

/// An open connection of either kind.
#[derive(Clone)]
pub enum Opened {
    Primary(ConnectionManager),
    Cluster(ClusterConnection),
}

impl PrimaryConnection {
    pub(super) fn new(link: RedisLink, timeouts: Timeouts) -> Self {
        Self {
            link,
            timeouts,
            open: Arc::default(),
        }
    }

    /// The open connection: the one already open unless the primary moved
    /// since (then that one is dropped and a new one opened).
    pub async fn opened(&self) -> RedisResult<Opened> {
        let generation = self.link.generation();
        if let Some(open) = self.open_for(generation) {
            return Ok(open);
        }
        let _opening = self.open.opening.lock().await;
        if let Some(open) = self.open_for(generation) {
            return Ok(open);
        }
        let (generation, opened) = match self.link.cluster_client() {
            Some(cluster) => {
                let config = self.timeouts.cluster_config();
                let connection = cluster
                    .get_async_connection_with_config(config)
                    .await
                    .inspect_err(|e| self.link.failed(RedisOp::Connect, e))?;
                (self.link.generation(), Opened::Cluster(connection))
            }
            None => {
                let (generation, client) = self.link.client();
                let config = self.timeouts.manager_config();
                let manager = ConnectionManager::new_with_config(client, config)
                    .await
                    .inspect_err(|e| {
                        self.link.suspect(e);
                        self.link.failed(RedisOp::Connect, e);
                    })?;
                (generation, Opened::Primary(manager))
            }
        };
        *self.lock() = Some((generation, opened.clone()));
        Ok(opened)
    }

    fn open_for(&self, generation: u64) -> Option<Opened> {
        match &*self.lock() {
            Some((opened_for, connection)) if *opened_for == generation => Some(connection.clone()),
            _ => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(u64, Opened)>> {
        // Nothing can panic while it is held; a poisoned slot is still sound.
        self.open
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One reply per key of `keys`, in order: `command` adds the one
    /// command that reads (or writes) that key to a pipeline.
    ///
    /// On one node this is one pipeline, one round trip. A Cluster refuses
    /// a pipeline whose keys lie in several hash slots, so there the keys
    /// are grouped by slot, and the groups' pipelines sent at once (the
    /// cluster connection multiplexes them, one write per node).
    pub async fn per_key(
        &self,
        keys: &[String],
        command: impl Fn(&mut Pipeline, &str),
    ) -> RedisResult<Vec<Value>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut connection = self.clone();
        if self.link.cluster_client().is_none() {
            let mut pipe = redis::pipe();
            for key in keys {
                command(&mut pipe, key);
            }
            return pipe.query_async(&mut connection).await;
        }
        let mut by_slot: HashMap<Slot, Vec<usize>> = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            by_slot.entry(Slot::for_key(key)).or_default().push(i);
        }
        let groups = by_slot.into_values().map(|indexes| {
            let mut pipe = redis::pipe();
            for &i in &indexes {
                command(&mut pipe, &keys[i]);
            }
            let mut connection = connection.clone();
            async move {
                let replies: Vec<Value> = pipe.query_async(&mut connection).await?;
                RedisResult::Ok((indexes, replies))
            }
        });
        let mut replies = vec![Value::Nil; keys.len()];
        for (indexes, values) in try_join_all(groups).await? {
            for (i, value) in indexes.into_iter().zip(values) {
                replies[i] = value;
            }
        }
        Ok(replies)
    }

    /// Sends `pipeline` in one write to the node holding `key` (on one node,
    /// the primary): for `WAIT`, which must follow the writes it covers on
    /// the same connection, and on a Cluster would otherwise go to every
    /// primary.
    pub async fn pipeline_at(&self, key: &str, pipeline: &Pipeline) -> RedisResult<Vec<Value>> {
        match self.opened().await? {
            Opened::Primary(mut manager) => {
                let replies = pipeline.query_async(&mut manager).await;
                if let Err(e) = &replies {
                    self.link.suspect(e);
                }
                replies
            }
            Opened::Cluster(mut cluster) => {
                let route =
                    SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
                cluster
                    .route_pipeline(pipeline.clone(), 0, pipeline.len(), route)
                    .await
            }
        }
    }
}

impl ConnectionLike for PrimaryConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let reply = match self.opened().await? {
                Opened::Primary(mut manager) => manager.req_packed_command(cmd).await,
                Opened::Cluster(mut cluster) => cluster.req_packed_command(cmd).await,
            };
            if let Err(e) = &reply {
                self.link.suspect(e);
                self.link.failed(RedisOp::Command, e);
            }
            reply
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let replies = match self.opened().await? {
                Opened::Primary(mut manager) => {
                    manager.req_packed_commands(pipeline, offset, count).await
                }
                Opened::Cluster(mut cluster) => {
                    cluster.req_packed_commands(pipeline, offset, count).await
                }
            };
            if let Err(e) = &replies {
                self.link.suspect(e);
                self.link.failed(RedisOp::Command, e);
            }
            replies
        })
    }

    fn get_db(&self) -> i64 {
        self.link.db()
    }
}
