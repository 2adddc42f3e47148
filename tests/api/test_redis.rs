//! A private Redis key prefix per test, swept when the test ends, so tests
//! share one Redis server without seeing each other's keys.

use std::time::Duration;

use tokio::sync::RwLock;

use crate::{
    helpers::{spawn_app_with, Stack, TestApp},
    services,
};

/// Server-wide settings (`CONFIG SET`) are shared by every test on this
/// Redis. A test that changes one holds this for writing and restores the
/// value before letting go ([`TestRedis::restore_config_on_drop`]); a test
/// that relies on one (keyspace notifications reaching an app) holds it for
/// reading, so the setting cannot change under it.
pub static SERVER_CONFIG: RwLock<()> = RwLock::const_new(());

/// The Sentinel topology (`TETHER_TEST_REDIS_SENTINEL_URL`) is shared by
/// every test on it. A test that fails its primary over holds this for
/// writing (tests/api/topologies.rs); every other test on it, for reading.
pub static SENTINEL_TOPOLOGY: RwLock<()> = RwLock::const_new(());

/// The variable naming the test Sentinel set (`.ci/redis-topologies up sentinel`).
pub const SENTINEL_URL_VAR: &str = "TETHER_TEST_REDIS_SENTINEL_URL";

/// The Cluster (`TETHER_TEST_REDIS_CLUSTER_URL`), shared as the Sentinel set
/// is: a failover test (tests/api/redis_cluster.rs) holds it for writing.
pub static CLUSTER_TOPOLOGY: RwLock<()> = RwLock::const_new(());

/// The variable naming the test Cluster (`.ci/redis-topologies up cluster`).
pub const CLUSTER_URL_VAR: &str = "TETHER_TEST_REDIS_CLUSTER_URL";

/// Keys under `prefix` on the Redis at `url` belong to one test; every one of
/// them is deleted when this value is dropped (even if the test panics).
pub struct TestRedis {
    /// What the app is given as `REDIS_URL`.
    pub url: String,
    pub prefix: String,
    /// Set when `url` names sentinels: the node to talk to is their primary.
    sentinel: Option<Sentinels>,
    /// Set when `url` names a Cluster: keys live on several primaries.
    cluster: Option<ClusterSeeds>,
}

/// The seed nodes of a `redis+cluster://` URL.
#[derive(Clone)]
pub struct ClusterSeeds {
    pub nodes: Vec<String>,
}

impl ClusterSeeds {
    /// Read with the crate's own parser: the form the app is given.
    pub fn parse(url: &str) -> ClusterSeeds {
        let config =
            tether::config::Config::from_lookup(|k| (k == "REDIS_URL").then(|| url.to_owned()))
                .unwrap_or_else(|e| panic!("{CLUSTER_URL_VAR}: {e}"));
        let Some(tether::config::RedisTopology::Cluster { nodes, .. }) = config.redis else {
            panic!("{CLUSTER_URL_VAR} is not a redis+cluster:// URL");
        };
        ClusterSeeds {
            nodes: nodes.iter().map(ToString::to_string).collect(),
        }
    }

    /// A blocking cluster connection: routes each key's command to its primary.
    pub fn connection(&self) -> redis::RedisResult<redis::cluster::ClusterConnection> {
        let urls: Vec<String> = self.nodes.iter().map(|n| format!("redis://{n}")).collect();
        redis::cluster::ClusterClientBuilder::new(urls)
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(2))
            .build()?
            .get_connection()
    }

    /// `HOST:PORT` of every primary serving slots, as the first node that
    /// answers `CLUSTER NODES` sees them.
    pub fn primaries(&self) -> Result<Vec<String>, String> {
        Ok(self
            .nodes_by_role()?
            .into_iter()
            .filter(|(_, primary, _)| *primary)
            .map(|(addr, _, _)| addr)
            .collect())
    }

    /// Every node not failing: (`HOST:PORT`, is a primary with slots, id).
    pub fn nodes_by_role(&self) -> Result<Vec<(String, bool, String)>, String> {
        let mut last = String::from("no node");
        for node in &self.nodes {
            let asked = redis::Client::open(format!("redis://{node}"))
                .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
                .and_then(|mut c| redis::cmd("CLUSTER").arg("NODES").query::<String>(&mut c));
            match asked {
                Ok(text) => return Ok(parse_cluster_nodes(&text)),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}

/// `CLUSTER NODES` as (`HOST:PORT`, primary serving slots, node id), failing nodes left out.
fn parse_cluster_nodes(text: &str) -> Vec<(String, bool, String)> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let addr = fields.get(1)?.split(['@', ',']).next()?;
            let flags = fields.get(2)?;
            if addr.starts_with(':') || flags.contains("fail") || flags.contains("noaddr") {
                return None;
            }
            let primary = flags.split(',').any(|f| f == "master") && fields.len() > 8;
            Some((addr.to_owned(), primary, fields[0].to_owned()))
        })
        .collect()
}

/// The sentinels of a `redis+sentinel://` URL, and the master's name.
#[derive(Clone)]
pub struct Sentinels {
    pub nodes: Vec<String>,
    pub master: String,
}

impl Sentinels {
    /// Read with the crate's own parser: the form the app is given.
    pub fn parse(url: &str) -> Sentinels {
        let config =
            tether::config::Config::from_lookup(|k| (k == "REDIS_URL").then(|| url.to_owned()))
                .unwrap_or_else(|e| panic!("{SENTINEL_URL_VAR}: {e}"));
        let Some(tether::config::RedisTopology::Sentinel {
            sentinels, master, ..
        }) = config.redis
        else {
            panic!("{SENTINEL_URL_VAR} is not a redis+sentinel:// URL");
        };
        Sentinels {
            nodes: sentinels.iter().map(ToString::to_string).collect(),
            master,
        }
    }

    /// `HOST:PORT` of the primary, as the first sentinel that answers names it.
    pub fn primary(&self) -> Result<String, String> {
        let mut last = String::from("no sentinel");
        for node in &self.nodes {
            let asked = redis::Client::open(format!("redis://{node}"))
                .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
                .and_then(|mut c| {
                    redis::cmd("SENTINEL")
                        .arg("GET-MASTER-ADDR-BY-NAME")
                        .arg(&self.master)
                        .query::<(String, u16)>(&mut c)
                });
            match asked {
                Ok((host, port)) => return Ok(format!("{host}:{port}")),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}

impl TestRedis {
    /// `None` (after reporting the skip, or panicking in CI) when Redis is
    /// unreachable. Blocks briefly, so it works under any async test runtime.
    pub async fn new(test_name: &str) -> Option<TestRedis> {
        let url = services::redis_url();
        if let Err(why) = ping(&url) {
            services::service_missing(test_name, "Redis", &why);
            return None;
        }
        Some(TestRedis {
            url,
            prefix: new_prefix(),
            sentinel: None,
            cluster: None,
        })
    }

    /// A private prefix on the Cluster named by `TETHER_TEST_REDIS_CLUSTER_URL`;
    /// `None`, reported, when it is unset or no node answers.
    pub async fn cluster(test_name: &str) -> Option<TestRedis> {
        let Ok(url) = std::env::var(CLUSTER_URL_VAR) else {
            services::service_missing(
                test_name,
                "Redis Cluster",
                &format!("{CLUSTER_URL_VAR} is unset (.ci/redis-topologies up cluster)"),
            );
            return None;
        };
        let seeds = ClusterSeeds::parse(&url);
        if let Err(why) = seeds.primaries() {
            services::service_missing(test_name, "Redis Cluster", &why);
            return None;
        }
        Some(TestRedis {
            url,
            prefix: new_prefix(),
            sentinel: None,
            cluster: Some(seeds),
        })
    }

    /// A private prefix on the Sentinel set named by
    /// `TETHER_TEST_REDIS_SENTINEL_URL`; `None`, reported, when it is unset
    /// or its primary does not answer.
    pub async fn sentinel(test_name: &str) -> Option<TestRedis> {
        let Ok(url) = std::env::var(SENTINEL_URL_VAR) else {
            services::service_missing(
                test_name,
                "Redis Sentinel",
                &format!("{SENTINEL_URL_VAR} is unset (.ci/redis-topologies up sentinel)"),
            );
            return None;
        };
        let sentinels = Sentinels::parse(&url);
        if let Err(why) = sentinels
            .primary()
            .and_then(|primary| ping(&format!("redis://{primary}")))
        {
            services::service_missing(test_name, "Redis Sentinel", &why);
            return None;
        }
        Some(TestRedis {
            url,
            prefix: new_prefix(),
            sentinel: Some(sentinels),
            cluster: None,
        })
    }

    /// A `redis://` URL of the node holding the keys: the server itself, or
    /// the primary the sentinels name now (on a Cluster: its first primary).
    pub fn node_url(&self) -> String {
        if let Some(seeds) = &self.cluster {
            let primaries = seeds.primaries().expect("a cluster node answers");
            return format!("redis://{}", primaries[0]);
        }
        match &self.sentinel {
            None => self.url.clone(),
            Some(sentinels) => match sentinels.primary() {
                Ok(primary) => format!("redis://{primary}"),
                Err(e) => panic!("no sentinel names a primary: {e}"),
            },
        }
    }

    /// A plain blocking connection, for tests that look at or change Redis
    /// behind the store's back (raw `DEL`, `EXISTS`, `KEYS` under the prefix).
    pub fn raw_connection(&self) -> redis::Connection {
        redis::Client::open(self.node_url())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
            .expect("connect to the test Redis")
    }

    /// Every key under this test's prefix, sorted (on a Cluster, from
    /// every primary).
    pub fn keys(&self) -> Vec<String> {
        let nodes = match &self.cluster {
            Some(seeds) => seeds
                .primaries()
                .expect("a cluster node answers")
                .into_iter()
                .map(|addr| format!("redis://{addr}"))
                .collect(),
            None => vec![self.node_url()],
        };
        let mut keys = Vec::new();
        for node in nodes {
            let mut connection = redis::Client::open(node)
                .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
                .expect("connect to the test Redis");
            let found: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.prefix))
                .query(&mut connection)
                .expect("KEYS under the test prefix");
            keys.extend(found);
        }
        keys.sort();
        keys
    }

    /// Deletes a key behind the store's back, as `redis-cli DEL` would (on
    /// a Cluster, on whichever primary holds it).
    pub fn delete_key(&self, key: &str) {
        let mut del = redis::cmd("DEL");
        del.arg(key);
        let _: i64 = match &self.cluster {
            Some(seeds) => seeds
                .connection()
                .and_then(|mut connection| del.query(&mut connection)),
            None => del.query(&mut self.raw_connection()),
        }
        .expect("DEL in the test Redis");
    }

    /// A server setting's current value (`CONFIG GET`).
    pub fn config_get(&self, name: &str) -> String {
        let reply: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query(&mut self.raw_connection())
            .expect("CONFIG GET in the test Redis");
        reply.get(1).cloned().unwrap_or_default()
    }

    /// Sets a server setting (`CONFIG SET`); hold [`SERVER_CONFIG`] for writing.
    pub fn config_set(&self, name: &str, value: &str) {
        let () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query(&mut self.raw_connection())
            .expect("CONFIG SET in the test Redis");
    }

    /// Puts the setting back to its current value when the guard is dropped,
    /// even if the test panics. Drop it before the [`SERVER_CONFIG`] guard.
    pub fn restore_config_on_drop(&self, name: &str) -> ConfigRestore {
        ConfigRestore {
            url: self.node_url(),
            name: name.to_owned(),
            value: self.config_get(name),
        }
    }

    fn sweep(&self) -> redis::RedisResult<()> {
        if let Some(seeds) = &self.cluster {
            // Keys in several slots cannot go in one DEL: one each.
            let mut cluster = seeds.connection()?;
            for key in self.keys() {
                let _: i64 = redis::cmd("DEL").arg(&key).query(&mut cluster)?;
            }
            return Ok(());
        }
        let node = match &self.sentinel {
            None => self.url.clone(),
            Some(sentinels) => match sentinels.primary() {
                Ok(primary) => format!("redis://{primary}"),
                Err(_) => return Ok(()),
            },
        };
        let mut connection =
            redis::Client::open(node)?.get_connection_with_timeout(Duration::from_secs(2))?;
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query(&mut connection)?;
            if !keys.is_empty() {
                let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut connection)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Err(e) = self.sweep() {
            eprintln!("could not delete test keys under {}: {e}", self.prefix);
        }
    }
}

fn new_prefix() -> String {
    format!("tether-test:{}:", uuid::Uuid::new_v4().simple())
}

fn ping(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut connection = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .map_err(|e| e.to_string())?;
    redis::cmd("PING")
        .query::<String>(&mut connection)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Restores one server setting when dropped (see [`TestRedis::restore_config_on_drop`]).
pub struct ConfigRestore {
    url: String,
    name: String,
    value: String,
}

impl Drop for ConfigRestore {
    fn drop(&mut self) {
        let restored = redis::Client::open(self.url.as_str()).and_then(|client| {
            let mut connection = client.get_connection_with_timeout(Duration::from_secs(2))?;
            redis::cmd("CONFIG")
                .arg("SET")
                .arg(&self.name)
                .arg(&self.value)
                .query::<()>(&mut connection)
        });
        if let Err(e) = restored {
            eprintln!("could not restore Redis setting {}: {e}", self.name);
        }
    }
}

/// A private Redis server this test may stop.
pub struct OwnRedis {
    pub child: std::process::Child,
    pub port: u16,
}

impl OwnRedis {
    pub fn start() -> Option<OwnRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        Self::start_on(port)
    }

    /// Starts (or restarts) a private Redis on `port`.
    pub fn start_on(port: u16) -> Option<OwnRedis> {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(OwnRedis { child, port })
    }
}

impl OwnRedis {
    /// A private Redis and an app (SQLite + Redis) on it, with `extra`
    /// settings; `None`, reported as skipped, without `redis-server`.
    pub async fn with_app(test: &str, extra: &[(&str, &str)]) -> Option<(OwnRedis, TestApp)> {
        let Some(redis) = OwnRedis::start() else {
            crate::services::service_missing(
                test,
                "redis-server binary",
                "cannot start a private Redis",
            );
            return None;
        };
        let url = redis.url();
        let mut env = vec![("REDIS_URL", url.as_str())];
        env.extend_from_slice(extra);
        let app = spawn_app_with(test, Stack::SqliteRedis, &env).await?;
        Some((redis, app))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server; `start_on(self.port)` starts a new, empty one.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.resume();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server and starts a new, empty one on the same port (a
    /// Redis restart without persistence); the new server is returned.
    pub fn restart(&mut self) -> OwnRedis {
        self.stop();
        OwnRedis::start_on(self.port)
            .unwrap_or_else(|| panic!("could not restart Redis on port {}", self.port))
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let status = std::process::Command::new("kill")
            .args([which, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {which} failed");
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
