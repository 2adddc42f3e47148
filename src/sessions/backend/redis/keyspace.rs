//! Keyspace notifications: how an instance hears of a session key deleted
//! or expired inside Redis (`redis-cli DEL`, TTL) without polling. This is
//! the one place that turns a Redis key name back into a session id.
//!
//! They are lossy (not delivered while disconnected, per node on a
//! Cluster) and managed Redis often forbids `CONFIG SET`, so they are one
//! revocation path among several, never the only one: the listener says
//! when it (re)subscribed after a gap, so the caller can re-check sessions.

use std::{collections::HashMap, time::Duration};

use futures_util::StreamExt as _;
use redis::{ErrorKind, RedisResult};
use tokio::sync::{mpsc, oneshot};

use super::{deadline, unavailable, RedisBackend, CONNECTION_TIMEOUT};
use crate::{domain::Disappearance, sessions::backend::StoreError};

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

/// The sid of a session key (`{prefix}session:{sid}`); `None` for any other key.
fn sid_of_key<'k>(prefix: &str, key: &'k str) -> Option<&'k str> {
    let sid = key.strip_prefix(prefix)?.strip_prefix("session:")?;
    (!sid.is_empty() && !sid.contains(':')).then_some(sid)
}

impl RedisBackend {
    /// Starts listening for session keys deleted or expired in Redis, and
    /// reports each on `notices`. Every subscription first switches keyspace
    /// notifications on, since a restarted Redis has forgotten a `CONFIG
    /// SET`. Reconnects with backoff after a failure, and moves to the new
    /// primary after a failover, then reports [`KeyspaceNotice::Resubscribed`]. Stops when `notices` is closed.
    /// The returned receiver completes once the first subscription is in place.
    pub fn spawn_keyspace_listener(
        &self,
        notices: mpsc::Sender<KeyspaceNotice>,
    ) -> oneshot::Receiver<()> {
        let backend = self.clone();
        let (subscribed, ready) = oneshot::channel();
        let mut subscribed = Some(subscribed);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            while !notices.is_closed() {
                match backend.listen_once(&notices, &mut subscribed).await {
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
        });
        ready
    }

    /// `subscribed` is taken (and told) by the first successful subscription.
    async fn listen_once(
        &self,
        notices: &mpsc::Sender<KeyspaceNotice>,
        subscribed: &mut Option<oneshot::Sender<()>>,
    ) -> anyhow::Result<()> {
        let (mut pubsub, primary) = self.link.pubsub(CONNECTION_TIMEOUT).await?;
        let db = self.link.db();
        let (deleted, expired) = (
            format!("__keyevent@{db}__:del"),
            format!("__keyevent@{db}__:expired"),
        );
        pubsub.subscribe(&[&deleted, &expired]).await?;
        // `false` (logged) when Redis refuses `CONFIG`: the sweep then covers.
        self.enable_keyspace_events().await?;
        log::info!(
            "event=keyspace_listener_subscribed db={db} primary={}",
            self.link.primary_addr()
        );
        match subscribed.take() {
            Some(first) => {
                let _ = first.send(());
            }
            None => {
                if notices.send(KeyspaceNotice::Resubscribed).await.is_err() {
                    return Ok(());
                }
            }
        }
        // After a failover the old primary tells nothing of the new one's keys.
        let moved = self.link.moved_from(primary);
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
        let mut connection = self.conn();
        let mut get = redis::cmd("CONFIG");
        get.arg("GET").arg(SETTING);
        let reply: RedisResult<HashMap<String, String>> = deadline(
            "read notify-keyspace-events",
            get.query_async(&mut connection),
        )
        .await?;
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
        let reply: RedisResult<()> = deadline(
            "set notify-keyspace-events",
            set.query_async(&mut connection),
        )
        .await?;
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
        assert_eq!(sid_of_key("t:", "t:session:abc"), Some("abc"));
        for other in [
            "t:sessions",
            "t:session:",
            "t:ended:abc",
            "t:user:u:sessions",
            "t:session:abc:x",
            "elsewhere:session:abc",
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
