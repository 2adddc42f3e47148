//! Sign-in throttling that a hostile client cannot race or turn against
//! someone else.
//!
//! Every password check (sign-in, or a signed-in user's password change) is
//! counted *before* argon2 runs, atomically per counter, and forgiven when
//! the password was right. So of K concurrent wrong guesses at most the
//! limit ever reach argon2; the rest get 429 with `Retry-After`.
//!
//! Three counters, each a fixed window of `TETHER_LOGIN_LOCKOUT_SECS` from
//! its first failure:
//! - **(username, address)**, limit `TETHER_LOGIN_MAX_FAILURES` (5): locks
//!   the guesser out of that account without locking the account's owner,
//!   who signs in from another address;
//! - **username**, across addresses, `TETHER_LOGIN_MAX_FAILURES_PER_USER`
//!   (100): a ceiling on distributed guessing at one account;
//! - **address**, across usernames, `TETHER_LOGIN_MAX_FAILURES_PER_IP` (50):
//!   one address spraying many accounts.
//!
//! Usernames are keyed lower-cased; IPv6 addresses by their /64 (one
//! subscriber's allocation). Counts live in Redis when there is one, so every
//! instance enforces the same numbers; in process memory otherwise. Unknown
//! usernames are counted like known ones, so a 429 reveals nothing.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{domain::Username, error::ApiError, redis_link::PrimaryConnection};

/// Counts one attempt on a counter unless it is at its limit (then returns
/// minus the milliseconds left in its window). One key per call, so it
/// works on any Redis topology.
const TRY: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then
  redis.call('DECR', KEYS[1])
  local left = redis.call('PTTL', KEYS[1])
  if left < 1 then left = 1 end
  return -left
end
return n
";

/// Takes one attempt back off a counter (removing it at zero).
const FORGIVE: &str = r"
local n = redis.call('DECR', KEYS[1])
if n <= 0 then redis.call('DEL', KEYS[1]) end
return n
";

/// The three limits (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_user_and_address: u32,
    pub per_user: u32,
    pub per_address: u32,
}

enum Store {
    Redis {
        conn: PrimaryConnection,
        prefix: String,
    },
    /// key → (count, start of its window); one lock makes an attempt's
    /// check-and-count atomic across its counters.
    Memory(Mutex<HashMap<String, (u32, Instant)>>),
}

pub struct LoginThrottle {
    store: Store,
    limits: Limits,
    window: Duration,
}

/// Which counter a key is; the pair's failures are cleared by a success,
/// the others only lose this attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counter {
    Pair,
    User,
    Address,
}

/// An attempt that was counted; hand it back to [`LoginThrottle::forgive`]
/// if the password was right (or never checked). Dropped, it stays counted.
#[must_use = "forgive the attempt when the password was right"]
#[derive(Debug)]
pub struct Attempt {
    counted: Vec<(Counter, String)>,
}

/// Refused: a counter is at its limit for this long still.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

/// How a password check ended, for [`LoginThrottle::check`].
#[derive(Debug)]
pub enum Checked<T> {
    /// The password was right.
    Right(T),
    /// The password was wrong: the attempt stays counted.
    Wrong,
}

/// What an address is counted as: IPv4 as is, IPv6 by its /64.
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let net = ipnet::Ipv6Net::new(v6, 64).map(|n| n.trunc());
                net.map_or_else(|_| v6.to_string(), |n| n.to_string())
            }
        },
    }
}

impl LoginThrottle {
    pub fn redis(conn: PrimaryConnection, prefix: &str, limits: Limits, window: Duration) -> Self {
        let prefix = prefix.to_owned();
        Self {
            store: Store::Redis { conn, prefix },
            limits,
            window,
        }
    }

    pub fn memory(limits: Limits, window: Duration) -> Self {
        Self {
            store: Store::Memory(Mutex::new(HashMap::new())),
            limits,
            window,
        }
    }

    fn keys(&self, username: Option<&Username>, ip: Option<IpAddr>) -> Vec<(Counter, String, u32)> {
        let prefix = match &self.store {
            Store::Redis { prefix, .. } => prefix.as_str(),
            Store::Memory(_) => "",
        };
        let name = username.map(|n| n.as_str().to_lowercase());
        let address = ip.map(address_key);
        let mut keys = Vec::with_capacity(3);
        if let (Some(name), Some(address)) = (&name, &address) {
            let key = format!("{prefix}throttle:pair:{name}:{address}");
            keys.push((Counter::Pair, key, self.limits.per_user_and_address));
        }
        if let Some(name) = &name {
            let key = format!("{prefix}throttle:user:{name}");
            keys.push((Counter::User, key, self.limits.per_user));
        }
        if let Some(address) = &address {
            let key = format!("{prefix}throttle:ip:{address}");
            keys.push((Counter::Address, key, self.limits.per_address));
        }
        keys
    }

    /// Counts a password check for `username` (when it is a valid name) from
    /// `ip` (when known), before it runs. `Ok(Err(RetryAfter))` when a
    /// counter is at its limit: then nothing is counted and the password
    /// must not be checked. An error when the store does not answer.
    pub async fn attempt(
        &self,
        username: Option<&Username>,
        ip: Option<IpAddr>,
    ) -> anyhow::Result<Result<Attempt, RetryAfter>> {
        let keys = self.keys(username, ip);
        match &self.store {
            Store::Memory(map) => Ok(self.attempt_in_memory(map, keys)),
            Store::Redis { conn, .. } => {
                let mut conn = conn.clone();
                let mut counted = Attempt {
                    counted: Vec::new(),
                };
                for (counter, key, limit) in keys {
                    let reply: i64 = redis::Script::new(TRY)
                        .key(&key)
                        .arg(self.window.as_millis() as u64)
                        .arg(limit)
                        .invoke_async(&mut conn)
                        .await?;
                    if reply < 0 {
                        // Take back what this attempt counted so far.
                        self.forgive_counters(&mut conn, counted, false).await?;
                        return Ok(Err(RetryAfter(Duration::from_millis(-reply as u64))));
                    }
                    counted.counted.push((counter, key));
                }
                Ok(Ok(counted))
            }
        }
    }

    fn attempt_in_memory(
        &self,
        map: &Mutex<HashMap<String, (u32, Instant)>>,
        keys: Vec<(Counter, String, u32)>,
    ) -> Result<Attempt, RetryAfter> {
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        // Forget finished windows, so the map cannot grow without bound.
        if map.len() > 10_000 {
            map.retain(|_, (_, start)| start.elapsed() < self.window);
        }
        let mut wait = None;
        for (_, key, limit) in &keys {
            if let Some((n, start)) = map.get(key) {
                let age = start.elapsed();
                if age < self.window && n >= limit {
                    wait = wait.max(Some(self.window - age));
                }
            }
        }
        if let Some(wait) = wait {
            return Err(RetryAfter(wait));
        }
        let mut counted = Vec::with_capacity(keys.len());
        for (counter, key, _) in keys {
            let entry = map.entry(key.clone()).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= self.window {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
            counted.push((counter, key));
        }
        Ok(Attempt { counted })
    }

    /// Runs one password check for `username` from `ip` within the limits:
    /// 429 without running it when a counter is at its limit; afterwards the
    /// attempt stays counted only if the password was wrong (a check that
    /// failed to run is forgiven). The one way sign-in and password changes
    /// check a password.
    pub async fn check<T>(
        &self,
        username: Option<&Username>,
        ip: Option<IpAddr>,
        check: impl std::future::Future<Output = Result<Checked<T>, ApiError>>,
    ) -> Result<Checked<T>, ApiError> {
        let attempt = match self.attempt(username, ip).await {
            Ok(Ok(attempt)) => attempt,
            Ok(Err(RetryAfter(wait))) => {
                log::info!("event=password_check_throttled");
                return Err(ApiError::RateLimited(wait));
            }
            Err(e) => return Err(ApiError::Unavailable(e.context("sign-in throttle"))),
        };
        let outcome = check.await;
        let forgiven = match &outcome {
            Ok(Checked::Wrong) => {
                drop(attempt);
                return outcome;
            }
            Ok(Checked::Right(_)) => self.forgive(attempt, true).await,
            Err(_) => self.forgive(attempt, false).await,
        };
        forgiven.map_err(|e| ApiError::Unavailable(e.context("sign-in throttle")))?;
        outcome
    }

    /// The password was right (or was never checked): the attempt no longer
    /// counts, and after a success the (username, address) pair starts afresh.
    pub async fn forgive(&self, attempt: Attempt, succeeded: bool) -> anyhow::Result<()> {
        match &self.store {
            Store::Redis { conn, .. } => {
                self.forgive_counters(&mut conn.clone(), attempt, succeeded)
                    .await
            }
            Store::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                for (counter, key) in attempt.counted {
                    if counter == Counter::Pair && succeeded {
                        map.remove(&key);
                    } else if let Some(entry) = map.get_mut(&key) {
                        entry.0 = entry.0.saturating_sub(1);
                        if entry.0 == 0 {
                            map.remove(&key);
                        }
                    }
                }
                Ok(())
            }
        }
    }

    async fn forgive_counters(
        &self,
        conn: &mut PrimaryConnection,
        attempt: Attempt,
        succeeded: bool,
    ) -> anyhow::Result<()> {
        for (counter, key) in attempt.counted {
            if counter == Counter::Pair && succeeded {
                let _: () = redis::cmd("DEL").arg(&key).query_async(conn).await?;
            } else {
                let _: i64 = redis::Script::new(FORGIVE)
                    .key(&key)
                    .invoke_async(conn)
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            per_user_and_address: 2,
            per_user: 3,
            per_address: 4,
        }
    }

    fn name(n: &str) -> Username {
        Username::parse(n).unwrap()
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        assert_eq!(address_key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
    }

    #[tokio::test]
    async fn the_guesser_is_locked_out_not_the_owner() {
        let t = LoginThrottle::memory(limits(), Duration::from_secs(60));
        let (alice, attacker, owner) = (
            name("Alice"),
            "10.0.0.1".parse().ok(),
            "10.0.0.2".parse().ok(),
        );
        for _ in 0..2 {
            drop(t.attempt(Some(&alice), attacker).await.unwrap().unwrap());
        }
        assert!(t
            .attempt(Some(&name("alice")), attacker)
            .await
            .unwrap()
            .is_err());
        // The owner, elsewhere, still gets to try; a success forgives theirs.
        let ok = t.attempt(Some(&alice), owner).await.unwrap().unwrap();
        t.forgive(ok, true).await.unwrap();
        // The username-wide ceiling (3) is reached by a third address.
        let third = "10.0.0.3".parse().ok();
        drop(t.attempt(Some(&alice), third).await.unwrap().unwrap());
        assert!(t.attempt(Some(&alice), owner).await.unwrap().is_err());
    }

    #[tokio::test]
    async fn a_refused_attempt_counts_nothing() {
        let t = LoginThrottle::memory(limits(), Duration::from_secs(60));
        let ip = "10.0.0.1".parse().ok();
        for i in 0..4 {
            drop(
                t.attempt(Some(&name(&format!("user{i}"))), ip)
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        // The address is at its limit: nobody from it is counted any more.
        assert!(t.attempt(Some(&name("bob")), ip).await.unwrap().is_err());
        let elsewhere = "10.0.0.9".parse().ok();
        for _ in 0..2 {
            drop(
                t.attempt(Some(&name("bob")), elsewhere)
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        assert!(t
            .attempt(Some(&name("bob")), elsewhere)
            .await
            .unwrap()
            .is_err());
    }
}
