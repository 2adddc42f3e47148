//! The event bus: how "session ended", "user changed" and chat messages reach
//! every live socket, on this instance and, over Redis pub/sub, on all others.
//!
//! An event is applied locally first (synchronously, before the call that
//! caused it returns), then published on `{prefix}events`. For changes that
//! must be in force everywhere before the caller goes on (role changes from
//! the CLI or another instance), `publish_and_wait` also waits until every
//! subscribed instance has acknowledged applying it (`{prefix}ack:{nonce}`).

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use futures_util::StreamExt as _;
use redis::AsyncCommands as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::backend::StoreError;

/// Why a session ended; sent to its sockets in `session.revoked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    Logout,
    Expired,
    Admin,
    PasswordChanged,
    Disabled,
    Deleted,
}

impl EndReason {
    pub const ALL: [EndReason; 6] = [
        EndReason::Logout,
        EndReason::Expired,
        EndReason::Admin,
        EndReason::PasswordChanged,
        EndReason::Disabled,
        EndReason::Deleted,
    ];

    pub fn parse(raw: &str) -> Option<EndReason> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::Expired => "expired",
            EndReason::Admin => "admin",
            EndReason::PasswordChanged => "password_changed",
            EndReason::Disabled => "disabled",
            EndReason::Deleted => "deleted",
        }
    }
}

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
    /// Local only: the Redis subscription (re)started, so events may have been
    /// missed; cached knowledge must be rebuilt.
    Resync,
}

/// What an instance does with an event (set once at start by the app).
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

#[derive(Serialize, Deserialize)]
struct Envelope {
    origin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ack: Option<String>,
    event: Event,
}

struct RedisLink {
    client: redis::Client,
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

impl RedisLink {
    fn channel(&self) -> String {
        format!("{}events", self.prefix)
    }
    /// Redis announces deletions and expiries of keys here once keyspace
    /// notifications (flags `Egx`) are on; see `RedisBackend::enable_keyspace_events`.
    fn keyevent_channels(&self) -> [String; 2] {
        let db = self.client.get_connection_info().redis_settings().db();
        [
            format!("__keyevent@{db}__:del"),
            format!("__keyevent@{db}__:expired"),
        ]
    }
    fn session_key_prefix(&self) -> String {
        format!("{}session:", self.prefix)
    }
    /// Written by the backend's delete scripts: why a session was ended.
    fn tombstone_key(&self, sid: &str) -> String {
        format!("{}ended:{sid}", self.prefix)
    }
    fn ack_key(&self, nonce: &str) -> String {
        format!("{}ack:{nonce}", self.prefix)
    }
}

struct Inner {
    instance: String,
    sink: OnceLock<EventSink>,
    redis: Option<RedisLink>,
}

/// Cheap to clone; one per process.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a publisher waits for other instances to acknowledge.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(3);

impl EventBus {
    /// A bus for a single process (in-process session store).
    pub fn local() -> Self {
        Self {
            inner: Arc::new(Inner {
                instance: Uuid::new_v4().simple().to_string(),
                sink: OnceLock::new(),
                redis: None,
            }),
        }
    }

    /// A bus shared with every process using the same Redis and prefix.
    pub async fn with_redis(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let unavailable = |e: redis::RedisError| StoreError::Unavailable(e.into());
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let conn = tokio::time::timeout(
            REDIS_TIMEOUT * 2,
            redis::aio::ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| StoreError::Unavailable(anyhow::anyhow!("timed out connecting to Redis")))?
        .map_err(unavailable)?;
        Ok(Self {
            inner: Arc::new(Inner {
                instance: Uuid::new_v4().simple().to_string(),
                sink: OnceLock::new(),
                redis: Some(RedisLink {
                    client,
                    conn,
                    prefix: prefix.to_owned(),
                }),
            }),
        })
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

    fn apply_locally(&self, event: &Event) {
        if let Some(sink) = self.inner.sink.get() {
            sink(event);
        }
    }

    /// Applies `event` here, then tells the other instances (fire and forget).
    pub async fn publish(&self, event: Event) {
        self.apply_locally(&event);
        if let Err(e) = self.send(&event, None).await {
            log::error!("event=bus_publish_failed kind={} error={e:#}", kind(&event));
        }
    }

    /// Applies `event` here, publishes it, and waits until every subscribed
    /// instance has applied it (or `ACK_TIMEOUT`). Returns how many did.
    pub async fn publish_and_wait(&self, event: Event) -> Result<usize, StoreError> {
        self.apply_locally(&event);
        let Some(link) = &self.inner.redis else {
            return Ok(0);
        };
        let nonce = Uuid::new_v4().simple().to_string();
        let receivers = self
            .send(&event, Some(&nonce))
            .await
            .map_err(|e| StoreError::Unavailable(e.into()))?;
        let key = link.ack_key(&nonce);
        let mut conn = link.conn.clone();
        let deadline = tokio::time::Instant::now() + ACK_TIMEOUT;
        loop {
            let acked: usize = conn
                .llen(&key)
                .await
                .map_err(|e| StoreError::Unavailable(e.into()))?;
            if acked >= receivers {
                let _: Result<(), _> = conn.del(&key).await;
                return Ok(acked);
            }
            if tokio::time::Instant::now() >= deadline {
                log::warn!(
                    "event=bus_ack_timeout kind={} acked={acked} expected={receivers}",
                    kind(&event)
                );
                let _: Result<(), _> = conn.del(&key).await;
                return Ok(acked);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Publishes on Redis; returns how many subscribers received it.
    async fn send(&self, event: &Event, ack: Option<&str>) -> Result<usize, redis::RedisError> {
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
        .map_err(|e| {
            redis::RedisError::from((redis::ErrorKind::Client, "encode", e.to_string()))
        })?;
        let mut conn = link.conn.clone();
        conn.publish(link.channel(), payload).await
    }

    /// Starts the task that applies other instances' events here. It
    /// reconnects after a Redis failure and then emits `Event::Resync`, since
    /// anything published meanwhile was lost.
    pub fn spawn_subscriber(&self) {
        if self.inner.redis.is_none() {
            return;
        }
        let bus = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            let mut first = true;
            loop {
                match bus.subscribe_once(&mut first).await {
                    Ok(()) => backoff = Duration::from_millis(100),
                    Err(e) => log::error!("event=bus_subscriber_failed error={e:#}"),
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
    }

    async fn subscribe_once(&self, first: &mut bool) -> anyhow::Result<()> {
        let Some(link) = &self.inner.redis else {
            return Ok(());
        };
        let mut pubsub =
            tokio::time::timeout(REDIS_TIMEOUT * 2, link.client.get_async_pubsub()).await??;
        pubsub.subscribe(link.channel()).await?;
        let keyevents = link.keyevent_channels();
        pubsub.subscribe(&keyevents).await?;
        log::info!("event=bus_subscribed channel={}", link.channel());
        if !std::mem::take(first) {
            self.apply_locally(&Event::Resync);
        }
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            let payload: String = match msg.get_payload() {
                Ok(p) => p,
                Err(e) => {
                    log::warn!("event=bus_bad_payload error={e}");
                    continue;
                }
            };
            let channel = msg.get_channel_name();
            if keyevents.iter().any(|k| k == channel) {
                let expired = channel.ends_with(":expired");
                self.on_key_gone(link, &payload, expired).await;
                continue;
            }
            let envelope: Envelope = match serde_json::from_str(&payload) {
                Ok(env) => env,
                Err(e) => {
                    log::warn!("event=bus_bad_payload error={e}");
                    continue;
                }
            };
            if envelope.origin != self.inner.instance {
                self.apply_locally(&envelope.event);
            }
            if let Some(nonce) = envelope.ack {
                let mut conn = link.conn.clone();
                let key = link.ack_key(&nonce);
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
        anyhow::bail!("subscription stream ended")
    }

    /// A key was deleted or expired in Redis. If it was a session, its sockets
    /// here must close, whoever deleted it (this server, another one, the CLI,
    /// or an operator's `redis-cli DEL`). The tombstone says why, if we did it.
    async fn on_key_gone(&self, link: &RedisLink, key: &str, expired: bool) {
        let Some(sid) = key.strip_prefix(&link.session_key_prefix()) else {
            return;
        };
        let mut conn = link.conn.clone();
        let tombstone: Option<String> = conn.get(link.tombstone_key(sid)).await.unwrap_or(None);
        let reason = tombstone
            .as_deref()
            .and_then(EndReason::parse)
            .unwrap_or(if expired {
                EndReason::Expired
            } else {
                EndReason::Deleted
            });
        self.apply_locally(&Event::SessionEnded {
            sid: sid.to_owned(),
            reason,
        });
    }
}

fn kind(event: &Event) -> &'static str {
    match event {
        Event::SessionEnded { .. } => "session_ended",
        Event::UserChanged { .. } => "user_changed",
        Event::Chat { .. } => "chat",
        Event::Resync => "resync",
    }
}
