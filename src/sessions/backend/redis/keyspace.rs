//! Keyspace notifications: how an instance hears of a session key deleted
//! or expired inside Redis (`redis-cli DEL`, TTL) without polling. This is
//! the one place that turns a Redis key name back into a session id.
//!
//! They are lossy (not delivered while disconnected) and managed Redis
//! often forbids `CONFIG SET`, so they are one revocation path among
//! several, never the only one: the listener says when it (re)subscribed
//! after a gap, so the caller can re-check sessions. On a Cluster each
//! primary publishes only its own keys' events, to its own subscribers: the
//! listener subscribes on every primary, and on each new one after a
//! failover.

use std::{collections::HashMap, time::Duration};

use futures_util::StreamExt as _;
use redis::{aio::ConnectionLike, ErrorKind, RedisResult};
use tokio::{
    sync::{mpsc, oneshot, watch},
    task::AbortHandle,
};

use super::{deadline, unavailable, RedisBackend, CONNECTION_TIMEOUT};
use crate::{domain::Disappearance, redis_link::ClusterNodes, sessions::backend::StoreError};

const SETTING: &str = "notify-keyspace-events";

/// What the keyspace listener reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyspaceNotice {
    /// A session's key is gone from Redis.
    SessionGone { sid: String, seen: Disappearance },
    /// The listener subscribed again after losing its subscription:
    /// notifications sent meanwhile were lost.
    Resubscribed,
}

/// Where one listener subscribes.
#[derive(Clone)]
enum Source {
    /// The primary (one node, or Sentinel's, followed through failovers).
    Primary,
    /// One primary of a Cluster, `HOST:PORT`.
    Node(String),
}

/// Aborts its task when dropped (a primary that left the Cluster).
struct Listening(AbortHandle);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The sid of a session key (`{prefix}session:{<sid>}`, braces included);
/// `None` for any other key.
fn sid_of_key<'k>(prefix: &str, key: &'k str) -> Option<&'k str> {
    let sid = key
        .strip_prefix(prefix)?
        .strip_prefix("session:{")?
        .strip_suffix('}')?;
    (!sid.is_empty() && !sid.contains([':', '{', '}'])).then_some(sid)
}

impl RedisBackend {
    /// Starts listening for session keys deleted or expired in Redis, and
    /// reports each on `notices`. Every subscription first switches keyspace
    /// notifications on, since a restarted Redis has forgotten a `CONFIG
    /// SET`. Reconnects with backoff after a failure, and moves to the new
    /// primary after a failover (on a Cluster: listens on every primary, and
    /// on each new one), then reports [`KeyspaceNotice::Resubscribed`].
    /// Stops when `notices` is closed. The returned receiver completes once
    /// the first subscriptions are in place.
    pub fn spawn_keyspace_listener(
        &self,
        notices: mpsc::Sender<KeyspaceNotice>,
    ) -> oneshot::Receiver<()> {
        let (subscribed, ready) = oneshot::channel();
        match self.link.cluster_nodes() {
            None => drop(tokio::spawn(self.clone().listen(
                Source::Primary,
                notices,
                Some(subscribed),
            ))),
            Some(nodes) => drop(tokio::spawn(
                self.clone().listen_on_cluster(nodes, notices, subscribed),
            )),
        }
        ready
    }

    /// One listener on every primary of the Cluster, replaced as primaries
    /// come and go. `ready` is told once each first primary was subscribed
    /// to; a listener on a primary that appears later (a promoted replica)
    /// reports [`KeyspaceNotice::Resubscribed`] once subscribed, since
    /// deletions there went unheard until then.
    async fn listen_on_cluster(
        self,
        mut nodes: watch::Receiver<ClusterNodes>,
        notices: mpsc::Sender<KeyspaceNotice>,
        ready: oneshot::Sender<()>,
    ) {
        let mut listening: HashMap<String, Listening> = HashMap::new();
        let mut ready = Some(ready);
        loop {
            let primaries = nodes.borrow_and_update().primaries.clone();
            listening.retain(|addr, _| primaries.contains(addr));
            let mut firsts = Vec::new();
            for addr in primaries {
                if listening.contains_key(&addr) {
                    continue;
                }
                let first = ready.as_ref().map(|_| {
                    let (first, heard) = oneshot::channel();
                    firsts.push(heard);
                    first
                });
                let task = tokio::spawn(self.clone().listen(
                    Source::Node(addr.clone()),
                    notices.clone(),
                    first,
                ));
                listening.insert(addr, Listening(task.abort_handle()));
            }
            if let Some(ready) = ready.take() {
                tokio::spawn(async move {
                    for heard in firsts {
                        let _ = heard.await;
                    }
                    let _ = ready.send(());
                });
            }
            tokio::select! {
                changed = nodes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = notices.closed() => return,
            }
        }
    }

    /// Listens on `source` until `notices` closes, subscribing again after
    /// every failure (with backoff) or move of the primary (at once).
    async fn listen(
        self,
        source: Source,
        notices: mpsc::Sender<KeyspaceNotice>,
        mut subscribed: Option<oneshot::Sender<()>>,
    ) {
        let mut backoff = Duration::from_millis(100);
        // A listener without a first-subscription signal (a Cluster primary
        // found later) reports its first subscription as a resubscription.
        let mut heard_before = subscribed.is_none();
        while !notices.is_closed() {
            match self
                .listen_once(&source, &notices, &mut subscribed, &mut heard_before)
                .await
            {
                // The primary moved (or `notices` closed): at once.
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    continue;
                }
                Err(e) => log::warn!("event=keyspace_listener_failed error={e:#}"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// `subscribed` is taken (and told) by the first successful subscription;
    /// every later one reports [`KeyspaceNotice::Resubscribed`].
    async fn listen_once(
        &self,
        source: &Source,
        notices: &mpsc::Sender<KeyspaceNotice>,
        subscribed: &mut Option<oneshot::Sender<()>>,
        heard_before: &mut bool,
    ) -> anyhow::Result<()> {
        let (mut pubsub, primary, addr) = match source {
            Source::Primary => {
                let (pubsub, generation) = self.link.pubsub(CONNECTION_TIMEOUT).await?;
                (pubsub, Some(generation), self.link.primary_addr())
            }
            Source::Node(addr) => {
                let pubsub = self.link.pubsub_at(addr, CONNECTION_TIMEOUT).await?;
                (pubsub, None, addr.clone())
            }
        };
        let db = self.link.db();
        let (deleted, expired) = (
            format!("__keyevent@{db}__:del"),
            format!("__keyevent@{db}__:expired"),
        );
        pubsub.subscribe(&[&deleted, &expired]).await?;
        // `false` (logged) when Redis refuses `CONFIG`: the sweep then covers.
        match source {
            Source::Primary => enable_keyevents_on(&mut self.conn()).await?,
            Source::Node(addr) => {
                let mut node = self.link.connection_at(addr, CONNECTION_TIMEOUT).await?;
                enable_keyevents_on(&mut node).await?
            }
        };
        log::info!("event=keyspace_listener_subscribed db={db} primary={addr}");
        if let Some(first) = subscribed.take() {
            let _ = first.send(());
        } else if *heard_before && notices.send(KeyspaceNotice::Resubscribed).await.is_err() {
            return Ok(());
        }
        *heard_before = true;
        // After a failover the old primary tells nothing of the new one's
        // keys. (A Cluster's primaries are followed by `listen_on_cluster`.)
        let moved = async {
            match primary {
                Some(generation) => self.link.moved_from(generation).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(moved);
        let mut messages = pubsub.on_message();
        loop {
            let msg = tokio::select! {
                msg = messages.next() => msg,
                () = &mut moved => {
                    log::info!("event=keyspace_listener_follows_primary");
                    return Ok(());
                }
            };
            let Some(msg) = msg else {
                anyhow::bail!("keyspace subscription ended")
            };
            let Ok(key) = msg.get_payload::<String>() else {
                continue;
            };
            let Some(sid) = sid_of_key(&self.prefix, &key) else {
                continue;
            };
            let seen = if msg.get_channel_name() == expired {
                Disappearance::Expired
            } else {
                Disappearance::Deleted
            };
            let notice = KeyspaceNotice::SessionGone {
                sid: sid.to_owned(),
                seen,
            };
            if notices.send(notice).await.is_err() {
                return Ok(());
            }
        }
    }

    /// Makes Redis publish keyevent notifications for generic commands and
    /// expiries (flags `E`, `g`, `x`), keeping whatever flags are already
    /// set. `Ok(false)`, with a warning logged, when Redis refuses `CONFIG`;
    /// an error only when Redis does not answer.
    pub async fn enable_keyspace_events(&self) -> Result<bool, StoreError> {
        enable_keyevents_on(&mut self.conn()).await
    }
}

/// [`RedisBackend::enable_keyspace_events`] on the node `connection` leads to.
async fn enable_keyevents_on(connection: &mut impl ConnectionLike) -> Result<bool, StoreError> {
    {
        let mut get = redis::cmd("CONFIG");
        get.arg("GET").arg(SETTING);
        let reply: RedisResult<HashMap<String, String>> =
            deadline("read notify-keyspace-events", get.query_async(connection)).await?;
        let Some(current) = unless_refused("CONFIG GET", reply)? else {
            return Ok(false);
        };
        let current = current.get(SETTING).cloned().unwrap_or_default();
        let wanted = with_keyevent_flags(&current);
        if wanted == current {
            return Ok(true);
        }
        let mut set = redis::cmd("CONFIG");
        set.arg("SET").arg(SETTING).arg(&wanted);
        let reply: RedisResult<()> =
            deadline("set notify-keyspace-events", set.query_async(connection)).await?;
        Ok(unless_refused("CONFIG SET", reply)?.is_some())
    }
}

/// `Ok(None)` (and a warning) when Redis answered with an error, i.e.
/// refused the command; an error when it could not answer at all.
fn unless_refused<T>(
    command: &'static str,
    reply: RedisResult<T>,
) -> Result<Option<T>, StoreError> {
    match reply {
        Ok(value) => Ok(Some(value)),
        Err(e) if matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::Extension) => {
            log::warn!(
                "event=keyspace_events_unavailable command=\"{command}\" error=\"{e}\" \
                 effect=\"raw Redis deletes reach sockets only through the re-validation sweep\""
            );
            Ok(None)
        }
        Err(e) => Err(unavailable(command, e)),
    }
}

/// `flags` plus `E` (keyevent channels), `g` (generic commands such as
/// `DEL`) and `x` (expiries). `A` already stands for `g`, `x` and more.
fn with_keyevent_flags(flags: &str) -> String {
    let mut wanted = flags.to_owned();
    let all = flags.contains('A');
    for (flag, implied_by_all) in [('E', false), ('g', true), ('x', true)] {
        let already_on = flags.contains(flag) || (implied_by_all && all);
        if !already_on {
            wanted.push(flag);
        }
    }
    wanted
}

#[cfg(test)]
mod tests {
    use super::{sid_of_key, with_keyevent_flags};

    #[test]
    fn only_session_keys_of_this_prefix_name_a_sid() {
        assert_eq!(sid_of_key("t:", "t:session:{abc}"), Some("abc"));
        for other in [
            "t:sessions",
            "t:session:{}",
            "t:session:abc",
            "t:ended:{abc}",
            "t:user:{u}:sessions",
            "t:session:{abc}:x",
            "t:session:{a{b}",
            "elsewhere:session:{abc}",
        ] {
            assert_eq!(sid_of_key("t:", other), None, "{other}");
        }
    }

    #[test]
    fn keyevent_flags_are_added_to_whatever_is_set() {
        assert_eq!(with_keyevent_flags(""), "Egx");
        assert_eq!(with_keyevent_flags("Kl"), "KlEgx");
        assert_eq!(with_keyevent_flags("gxE"), "gxE");
        assert_eq!(with_keyevent_flags("Eg"), "Egx");
    }

    #[test]
    fn all_already_covers_generic_and_expired() {
        assert_eq!(with_keyevent_flags("AK"), "AKE");
        assert_eq!(with_keyevent_flags("AE"), "AE");
    }
}
