//! Keyspace notifications: how an instance hears of a session key deleted
//! or expired inside Redis (`redis-cli DEL`, TTL) without polling.
//!
//! They are lossy (not delivered while disconnected, per node on a
//! Cluster) and managed Redis often forbids `CONFIG SET`, so they are one
//! revocation path among several, never the only one.

use std::collections::HashMap;

use redis::{ErrorKind, RedisResult};

use super::{deadline, unavailable, RedisBackend};
use crate::sessions::backend::StoreError;

const SETTING: &str = "notify-keyspace-events";

impl RedisBackend {
    /// Makes Redis publish keyevent notifications for generic commands and
    /// expiries (flags `E`, `g`, `x`), keeping whatever flags are already
    /// set. `Ok(false)`, with a warning logged, when Redis refuses `CONFIG`;
    /// an error only when Redis does not answer.
    pub async fn enable_keyspace_events(&self) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
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
    use super::with_keyevent_flags;

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
