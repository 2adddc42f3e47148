//! [`PrimaryConnection`]: a command connection that is always to the
//! current primary.

use std::sync::{Arc, Mutex};

use redis::{
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    Cmd, Pipeline, RedisFuture, RedisResult, Value,
};

use super::RedisLink;
use crate::metrics::RedisOp;

/// An auto-reconnecting connection (redis-rs's `ConnectionManager`) to the
/// primary, replaced by one to the new primary after a failover. Opened on
/// first use, from the task that uses it: redis-rs drives a connection from
/// the runtime that opened it, so a clone made for an HTTP worker thread
/// (see `RedisBackend::for_worker`) is opened there. Clones share the
/// connection; use it like any redis-rs async connection.
#[derive(Clone)]
pub struct PrimaryConnection {
    link: RedisLink,
    config: Arc<ConnectionManagerConfig>,
    open: Arc<Slot>,
}

#[derive(Default)]
struct Slot {
    /// The connection and the primary generation it was opened to.
    current: Mutex<Option<(u64, ConnectionManager)>>,
    /// Held while opening, so requests queued behind one open share it.
    opening: tokio::sync::Mutex<()>,
}

impl PrimaryConnection {
    pub(super) fn new(link: RedisLink, config: ConnectionManagerConfig) -> Self {
        Self {
            link,
            config: Arc::new(config),
            open: Arc::default(),
        }
    }

    /// The connection to the current primary: the one already open unless
    /// the primary moved since (then that one is dropped and a new one opened).
    pub async fn manager(&self) -> RedisResult<ConnectionManager> {
        let generation = self.link.generation();
        if let Some(open) = self.open_for(generation) {
            return Ok(open);
        }
        let _opening = self.open.opening.lock().await;
        let (generation, client) = self.link.client();
        if let Some(open) = self.open_for(generation) {
            return Ok(open);
        }
        let opened = ConnectionManager::new_with_config(client, (*self.config).clone())
            .await
            .inspect_err(|e| {
                self.link.suspect(e);
                self.link.failed(RedisOp::Connect, e);
            })?;
        *self.lock() = Some((generation, opened.clone()));
        Ok(opened)
    }

    fn open_for(&self, generation: u64) -> Option<ConnectionManager> {
        match &*self.lock() {
            Some((opened_for, connection)) if *opened_for == generation => Some(connection.clone()),
            _ => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(u64, ConnectionManager)>> {
        // Nothing can panic while it is held; a poisoned slot is still sound.
        self.open
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ConnectionLike for PrimaryConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut connection = self.manager().await?;
            let reply = connection.req_packed_command(cmd).await;
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
            let mut connection = self.manager().await?;
            let replies = connection
                .req_packed_commands(pipeline, offset, count)
                .await;
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
