//! The scenarios of issue 5, one file each, over a shared [`Bench`]: the
//! servers under test, the sizes of this run, and the rows gathered so far.

pub mod chat;
pub mod failover;
pub mod footprint;
pub mod idle;
pub mod login;
pub mod me;
pub mod messages;
pub mod revoke;
pub mod upgrade;

use std::time::Duration;

use crate::{http::Server, stats::Row, topology::RedisSpec};

/// How big this run is (`--quick` shrinks every number).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sizes {
    /// How long each timed measurement runs.
    pub secs: f64,
    pub login_clients: usize,
    /// `me` requests per second sent while logins saturate the CPU.
    pub me_during_login_rate: f64,
    pub me_clients: usize,
    pub upgrade_clients: usize,
    pub storm_sockets: usize,
    pub message_sockets: usize,
    pub idle_levels: Vec<usize>,
    /// How long each idle level is held before the server's RSS is read.
    pub idle_hold_secs: f64,
    pub revoke_sessions: usize,
    pub chat_sockets: usize,
    pub chat_broadcasts: usize,
    /// Primaries killed by the `failover` scenario.
    pub failovers: usize,
}

impl Sizes {
    pub fn full() -> Self {
        Self {
            secs: 8.0,
            login_clients: 4,
            me_during_login_rate: 100.0,
            me_clients: 64,
            upgrade_clients: 32,
            storm_sockets: 2000,
            message_sockets: 64,
            idle_levels: vec![1000, 5000, 10_000, 19_000],
            idle_hold_secs: 2.0,
            revoke_sessions: 100,
            chat_sockets: 1000,
            chat_broadcasts: 40,
            failovers: 10,
        }
    }

    pub fn quick() -> Self {
        Self {
            secs: 3.0,
            login_clients: 4,
            me_during_login_rate: 100.0,
            me_clients: 32,
            upgrade_clients: 16,
            storm_sockets: 500,
            message_sockets: 32,
            idle_levels: vec![1000, 5000],
            idle_hold_secs: 2.0,
            revoke_sessions: 30,
            chat_sockets: 200,
            chat_broadcasts: 15,
            failovers: 5,
        }
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.secs)
    }
}

/// A tether server prepared for load: signed-in admin and bench users.
#[derive(Clone)]
pub struct Target {
    pub server: Server,
    /// Cookie of the admin session (for the admin API).
    pub admin: String,
    /// Names of users with role `user` (`chat:read`, `chat:write`, no admin messages).
    pub users: Vec<String>,
}

/// Fixed-rate runs send at this share of the closed-loop rate just measured:
/// on 2 shared cores the load generator's own per-request tasks cost enough
/// that 80 % already overloads the pair and only measures queueing.
pub const FIXED_SHARE: f64 = 0.5;

/// Number of bench users created on each user store.
const BENCH_USERS: usize = 8;

impl Target {
    pub async fn prepare(server: Server, admin_password: &str) -> anyhow::Result<Self> {
        let admin = server.login("admin", admin_password).await?;
        let mut users = Vec::with_capacity(BENCH_USERS);
        for i in 0..BENCH_USERS {
            let name = format!("bench-u{i}");
            server.ensure_user(&admin, &name, "user").await?;
            users.push(name);
        }
        Ok(Self {
            server,
            admin,
            users,
        })
    }

    pub fn label(&self) -> &str {
        &self.server.label
    }
}

/// A Redis Cluster or Sentinel set with two tether instances on it (issue 14).
/// The first instance is also one of [`Bench::targets`], labelled [`Self::name`].
#[derive(Clone)]
pub struct Topology {
    /// `cluster` or `sentinel`.
    pub name: String,
    pub redis: RedisSpec,
    /// `.ci/redis-topologies`, run as `SCRIPT up NAME` to bring a killed node back.
    pub script: Option<std::path::PathBuf>,
    /// The second instance on the same topology and database.
    pub second: Option<Target>,
}

/// Everything the scenarios run against.
pub struct Bench {
    pub sizes: Sizes,
    /// The in-process and the Redis-backed tether, whichever were given.
    pub targets: Vec<Target>,
    /// A second Redis-backed instance sharing the first one's Redis and database.
    pub second: Option<Target>,
    /// The bare actix-ws echo server.
    pub echo: Option<Server>,
    pub redis_url: Option<String>,
    /// The Redis server's pid (from `INFO server`), for its CPU time.
    pub redis_pid: Option<u32>,
    pub redis_prefix: String,
    pub topology: Option<Topology>,
    pub rows: Vec<Row>,
}

impl Bench {
    pub fn push(&mut self, row: Row) {
        crate::stats::print_row(&row);
        self.rows.push(row);
    }

    /// The Redis behind a target, for raw commands: the single node of
    /// `redis`, the topology of the topology's instance; none in-process.
    pub fn redis_of(&self, target: &Target) -> Option<RedisSpec> {
        match &self.topology {
            Some(topology) if target.label() == topology.name => Some(topology.redis.clone()),
            _ if target.label() == "redis" => {
                let url = self.redis_url.as_ref()?;
                RedisSpec::parse(url).ok()
            }
            _ => None,
        }
    }

    /// The other instance sharing `target`'s Redis and database, if any.
    pub fn peer_of(&self, target: &Target) -> Option<Target> {
        match &self.topology {
            Some(topology) if target.label() == topology.name => topology.second.clone(),
            _ if target.label() == "redis" => self.second.clone(),
            _ => None,
        }
    }
}

/// Rounds of closed-loop measurements in `messages`, `upgrade` and `me`:
/// this machine's speed drifts by ±15 % within minutes, so a ratio to the
/// echo ceiling is taken between measurements of the same round (seconds
/// apart), and the median round is reported with every round's value.
pub const ROUNDS: usize = 3;

/// The median of `rounds` by its key; also every key, in round order.
pub fn median_round<T>(rounds: Vec<(f64, T)>) -> (f64, T, Vec<f64>) {
    let keys: Vec<f64> = rounds.iter().map(|r| r.0).collect();
    let mut rounds = rounds;
    rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (key, value) = rounds.swap_remove(rounds.len() / 2);
    (key, value, keys)
}

/// Ratios as percentages, for notes: "88%, 90%, 93%".
pub fn percents(ratios: &[f64]) -> String {
    let all: Vec<String> = ratios
        .iter()
        .map(|r| format!("{:.0}%", 100.0 * r))
        .collect();
    all.join(", ")
}

/// Rates for notes: "95123/s, 90210/s".
pub fn per_second(rates: &[f64]) -> String {
    let all: Vec<String> = rates.iter().map(|r| format!("{r:.0}/s")).collect();
    all.join(", ")
}

/// `part / whole` as a percentage, for notes.
pub fn percent(part: f64, whole: Option<f64>) -> String {
    match whole {
        Some(whole) if whole > 0.0 => format!("{:.0}%", 100.0 * part / whole),
        _ => "n/a".into(),
    }
}
