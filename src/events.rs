//! The event bus: moves typed events to every live instance. It knows what
//! an event *is*, never how sessions or users are stored.
//!
//! An event is applied here first (synchronously, before the call that
//! caused it returns), then published on Redis (`{prefix}events`) for the
//! other instances. For changes that must be in force everywhere before the
//! caller goes on (role changes, a disabled user), `publish_and_wait` also
//! waits until every subscribed instance has acknowledged applying it
//! (`{prefix}ack:<nonce>`). How many that is, `PUBLISH` says on one node;
//! on a Cluster it counts only the subscribers of the node that ran it, so
//! there the live instances are counted by whoever knows them
//! ([`EventBus::count_instances_with`]: the socket census).
//!
//! What an instance *does* with an event is its sink, set once at start by
//! `ws::live`. Events that arise inside this instance without being
//! published (a session key deleted in Redis, seen by the session store's
//! keyspace listener) enter through [`EventBus::deliver_here`].

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use futures_util::{future::BoxFuture, StreamExt as _};
use redis::AsyncCommands as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    domain::EndReason,
    metrics::Metrics,
    redis_link::{PrimaryConnection, RedisLink, Timeouts},
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The session is gone; its sockets must close (4001).
    SessionEnded { sid: String, reason: EndReason },
    /// The user's roles, permissions or disabled flag changed in the user store.
    UserChanged { user_id: Uuid },
    /// A chat message for every socket whose user may read chat.
    Chat {
        room: String,
        from: String,
        text: String,
        at: String,
    },
    /// Local only: events may have been missed (the Redis subscription
    /// restarted), so cached knowledge must be rebuilt and sessions re-checked.
    Resync,
}

impl Event {
    /// The event's name in logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::SessionEnded { .. } => "session_ended",
            Event::UserChanged { .. } => "user_changed",
            Event::Chat { .. } => "chat",
            Event::Resync => "resync",
        }
    }
}

/// What an instance does with an event (set once at start).
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// The ids of the instances alive now (see [`EventBus::count_instances_with`]).
pub type LiveInstances =
    Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<Vec<String>>> + Send + Sync>;

/// Redis did not take or answer a publish: the caller decides whether the
/// change it announced may stand (fail closed) or is only best effort.
#[derive(Debug, thiserror::Error)]
#[error("event bus unavailable: {0}")]
pub struct BusError(#[source] pub anyhow::Error);

impl From<redis::RedisError> for BusError {
    fn from(e: redis::RedisError) -> Self {
        BusError(e.into())
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    origin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ack: Option<String>,
    event: Event,
}

/// The bus's way to Redis: commands over a connection of its own, and
/// pub/sub, both on the current primary.
struct RedisChannel {
    link: RedisLink,
    conn: PrimaryConnection,
    prefix: String,
}

impl RedisChannel {
    fn channel(&self) -> String {
        format!("{}events", self.prefix)
    }
    fn ack_key(&self, nonce: &str) -> String {
        format!("{}ack:{nonce}", self.prefix)
    }
}

struct Inner {
    instance: String,
    sink: OnceLock<EventSink>,
    redis: Option<RedisChannel>,
    /// Where events over Redis are counted (`tether_bus_events_total`);
    /// unset in the CLI.
    metrics: OnceLock<Arc<Metrics>>,
    live_instances: OnceLock<LiveInstances>,
}

/// Cheap to clone; one per process.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a publisher waits for other instances to acknowledge.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause before the one retry of a failed publish (the connection manager
/// reconnects meanwhile).
const PUBLISH_RETRY_AFTER: Duration = Duration::from_millis(100);

impl EventBus {
    /// A bus for a single process (in-process session store).
    pub fn local() -> Self {
        Self::new(None)
    }

    fn new(redis: Option<RedisChannel>) -> Self {
        Self {
            inner: Arc::new(Inner {
                instance: Uuid::new_v4().simple().to_string(),
                sink: OnceLock::new(),
                redis,
                metrics: OnceLock::new(),
                live_instances: OnceLock::new(),
            }),
        }
    }

    /// A bus shared with every process using the same Redis and prefix.
    pub async fn with_redis(link: &RedisLink, prefix: &str) -> Result<Self, BusError> {
        let conn = link.connection(Timeouts {
            connect: REDIS_TIMEOUT,
            response: REDIS_TIMEOUT,
            retries: None,
        });
        tokio::time::timeout(REDIS_TIMEOUT * 2, conn.opened())
            .await
            .map_err(|_| BusError(anyhow::anyhow!("timed out connecting to Redis")))??;
        Ok(Self::new(Some(RedisChannel {
            link: link.clone(),
            conn,
            prefix: prefix.to_owned(),
        })))
    }

    /// This process's id on the bus (also its name in the socket census).
    pub fn instance_id(&self) -> &str {
        &self.inner.instance
    }

    /// Sets what this process does with events. Only the server has a sink;
    /// the CLI only publishes.
    pub fn set_sink(&self, sink: EventSink) {
        if self.inner.sink.set(sink).is_err() {
            log::warn!("event=bus_sink_already_set");
        }
    }

    /// Counts the events this bus sends and receives over Redis in `metrics`.
    pub fn count_in(&self, metrics: Arc<Metrics>) {
        let _ = self.inner.metrics.set(metrics);
    }

    fn count(&self, event: &Event, outgoing: bool) {
        if let Some(metrics) = self.inner.metrics.get() {
            metrics.bus_event(event.kind(), outgoing);
        }
    }

    /// Counts the instances `publish_and_wait` waits for with `live`
    /// rather than by `PUBLISH`'s receiver count, which on a Cluster counts
    /// only the subscribers of the node that ran it. Set once, at start.
    pub fn count_instances_with(&self, live: LiveInstances) {
        if self.inner.live_instances.set(live).is_err() {
            log::warn!("event=bus_instance_count_already_set");
        }
    }

    /// Applies `event` on this instance only.
    pub fn deliver_here(&self, event: &Event) {
        if let Some(sink) = self.inner.sink.get() {
            sink(event);
        }
    }

    /// Applies `event` here, then tells the other instances (fire and forget).
    pub async fn publish(&self, event: Event) {
        self.deliver_here(&event);
        if let Err(e) = self.send(&event, None).await {
            log::error!("event=bus_publish_failed kind={} error={e:#}", event.kind());
        }
    }

    /// Applies `event` here, publishes it, and waits until every subscribed
    /// instance has applied it (or `ACK_TIMEOUT`). Returns how many did.
    pub async fn publish_and_wait(&self, event: Event) -> Result<usize, BusError> {
        self.deliver_here(&event);
        let Some(link) = &self.inner.redis else {
            return Ok(0);
        };
        let nonce = Uuid::new_v4().simple().to_string();
        let mut receivers = self.send(&event, Some(&nonce)).await?;
        if let Some(live) = self.inner.live_instances.get() {
            match live().await {
                Ok(live) => receivers = receivers.max(live.len()),
                Err(e) => log::warn!("event=bus_instances_unknown error={e:#}"),
            }
        }
        let key = link.ack_key(&nonce);
        let mut conn = link.conn.clone();
        let deadline = tokio::time::Instant::now() + ACK_TIMEOUT;
        loop {
            let acked: usize = conn.llen(&key).await?;
            if acked >= receivers {
                let _: Result<(), _> = conn.del(&key).await;
                return Ok(acked);
            }
            if tokio::time::Instant::now() >= deadline {
                log::warn!(
                    "event=bus_ack_timeout kind={} acked={acked} expected={receivers}",
                    event.kind()
                );
                let _: Result<(), _> = conn.del(&key).await;
                return Ok(acked);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Publishes on Redis; returns how many subscribers received it. A
    /// failed publish is tried once more after [`PUBLISH_RETRY_AFTER`]: the
    /// first command after a Redis restart fails on the dead connection
    /// while the connection manager opens a fresh one, and an event lost
    /// there would leave other instances with stale permissions.
    async fn send(&self, event: &Event, ack: Option<&str>) -> Result<usize, BusError> {
        let Some(link) = &self.inner.redis else {
            return Ok(0);
        };
        if matches!(event, Event::Resync) {
            return Ok(0);
        }
        let payload = serde_json::to_string(&Envelope {
            origin: self.inner.instance.clone(),
            ack: ack.map(str::to_owned),
            event: event.clone(),
        })
        .map_err(|e| BusError(e.into()))?;
        let mut conn = link.conn.clone();
        let receivers = match conn.publish(link.channel(), &payload).await {
            Ok(receivers) => receivers,
            Err(first) => {
                log::warn!(
                    "event=bus_publish_retry kind={} error={first}",
                    event.kind()
                );
                tokio::time::sleep(PUBLISH_RETRY_AFTER).await;
                conn.publish(link.channel(), &payload).await?
            }
        };
        self.count(event, true);
        Ok(receivers)
    }

    /// Starts the task that applies other instances' events here. It
    /// reconnects after a Redis failure, and moves to the new primary after a
    /// failover; then it delivers `Event::Resync`, since anything published
    /// meanwhile was lost. Returns once subscribed,
    /// or after `wait` (it keeps trying in the background).
    pub async fn start_subscriber(&self, wait: Duration) {
        if self.inner.redis.is_none() {
            return;
        }
        let bus = self.clone();
        let (subscribed, ready) = tokio::sync::oneshot::channel();
        let mut subscribed = Some(subscribed);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match bus.subscribe_once(&mut subscribed).await {
                    // The primary moved: subscribe there at once.
                    Ok(()) => {
                        backoff = Duration::from_millis(100);
                        continue;
                    }
                    Err(e) => log::error!("event=bus_subscriber_failed error={e:#}"),
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
        if tokio::time::timeout(wait, ready).await.is_err() {
            log::warn!("event=bus_subscriber_not_ready note=\"still trying\"");
        }
    }

    /// `subscribed` is taken (and told) by the first successful subscription;
    /// every later one delivers `Event::Resync` here.
    async fn subscribe_once(
        &self,
        subscribed: &mut Option<tokio::sync::oneshot::Sender<()>>,
    ) -> anyhow::Result<()> {
        let Some(link) = &self.inner.redis else {
            return Ok(());
        };
        let (mut pubsub, primary) = link.link.pubsub(REDIS_TIMEOUT * 2).await?;
        pubsub.subscribe(link.channel()).await?;
        log::info!(
            "event=bus_subscribed channel={} primary={}",
            link.channel(),
            link.link.primary_addr()
        );
        match subscribed.take() {
            Some(first) => {
                let _ = first.send(());
            }
            None => self.deliver_here(&Event::Resync),
        }
        // After a failover, publishes go to the new primary: listen there.
        let moved = link.link.moved_from(primary);
        tokio::pin!(moved);
        let mut messages = pubsub.on_message();
        loop {
            let msg = tokio::select! {
                msg = messages.next() => msg,
                () = &mut moved => {
                    log::info!("event=bus_follows_primary");
                    return Ok(());
                }
            };
            let Some(msg) = msg else {
                anyhow::bail!("subscription stream ended")
            };
            let envelope: Envelope = match msg
                .get_payload::<String>()
                .map_err(anyhow::Error::from)
                .and_then(|p| Ok(serde_json::from_str(&p)?))
            {
                Ok(envelope) => envelope,
                Err(e) => {
                    log::warn!("event=bus_bad_payload error={e}");
                    continue;
                }
            };
            if envelope.origin != self.inner.instance {
                self.count(&envelope.event, false);
                self.deliver_here(&envelope.event);
            }
            if let Some(nonce) = envelope.ack {
                self.acknowledge(link, &nonce).await;
            }
        }
    }

    async fn acknowledge(&self, link: &RedisChannel, nonce: &str) {
        let mut conn = link.conn.clone();
        let key = link.ack_key(nonce);
        let acked: Result<(), _> = redis::pipe()
            .rpush(&key, &self.inner.instance)
            .ignore()
            .pexpire(&key, 10_000)
            .ignore()
            .query_async(&mut conn)
            .await;
        if let Err(e) = acked {
            log::warn!("event=bus_ack_failed error={e}");
        }
    }
}
