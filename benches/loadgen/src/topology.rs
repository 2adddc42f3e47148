//! The Redis a tether instance runs on, as the harness reaches it: one node
//! (`redis://`), a Sentinel set (`redis+sentinel://`) or a Cluster
//! (`redis+cluster://`), in the forms of tether's `REDIS_URL` (without
//! passwords on the last two). The harness talks to the primary that holds a
//! key directly, over a plain connection, so a raw `DEL`, `MEMORY USAGE` and
//! the failover scenario's `SIGKILL` all reach that one node.

use std::{collections::HashMap, time::Duration};

use anyhow::{bail, Context};
use redis::aio::MultiplexedConnection;

/// How long one connect or command to a node may take (a killed node must
/// not stall the harness).
const NODE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub enum RedisSpec {
    Single(String),
    Sentinel {
        sentinels: Vec<String>,
        master: String,
    },
    Cluster {
        seeds: Vec<String>,
    },
}

impl RedisSpec {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            let (hosts, master) = rest
                .split_once('/')
                .context("redis+sentinel:// needs /MASTER_NAME")?;
            Ok(Self::Sentinel {
                sentinels: hosts.split(',').map(str::to_owned).collect(),
                master: master.to_owned(),
            })
        } else if let Some(rest) = url.strip_prefix("redis+cluster://") {
            Ok(Self::Cluster {
                seeds: rest
                    .trim_end_matches('/')
                    .split(',')
                    .map(str::to_owned)
                    .collect(),
            })
        } else if url.starts_with("redis://") {
            Ok(Self::Single(url.to_owned()))
        } else {
            bail!("unsupported Redis URL {url:?}")
        }
    }

    /// `host:port` of the primary that holds `key` now.
    pub async fn primary_of(&self, key: &str) -> anyhow::Result<String> {
        match self {
            Self::Single(url) => {
                let info = redis::Client::open(url.as_str())?
                    .get_connection_info()
                    .clone();
                Ok(info.addr().to_string())
            }
            Self::Sentinel { sentinels, master } => {
                for sentinel in sentinels {
                    let asked = async {
                        let mut conn = connect(sentinel).await?;
                        let addr: Vec<String> = timed(
                            redis::cmd("SENTINEL")
                                .arg("get-master-addr-by-name")
                                .arg(master)
                                .query_async(&mut conn),
                        )
                        .await?;
                        anyhow::Ok(addr)
                    };
                    if let Ok([host, port]) = asked.await.as_deref() {
                        return Ok(format!("{host}:{port}"));
                    }
                }
                bail!("no sentinel of {sentinels:?} names a primary for {master}")
            }
            Self::Cluster { seeds } => {
                for seed in seeds {
                    if let Ok(Some(addr)) = slot_owner(seed, key).await {
                        return Ok(addr);
                    }
                }
                bail!("no cluster node of {seeds:?} names a primary for {key}")
            }
        }
    }
}

/// Asks one cluster node which primary serves `key`'s slot.
async fn slot_owner(node: &str, key: &str) -> anyhow::Result<Option<String>> {
    let mut conn = connect(node).await?;
    let slot: i64 = timed(
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut conn),
    )
    .await?;
    let nodes: String = timed(redis::cmd("CLUSTER").arg("NODES").query_async(&mut conn)).await?;
    Ok(owner_in_nodes(&nodes, slot))
}

/// The `host:port` of the healthy primary whose slot ranges hold `slot`, in
/// `CLUSTER NODES` output (`id host:port@cport flags master ping pong epoch
/// link range…`).
fn owner_in_nodes(nodes: &str, slot: i64) -> Option<String> {
    nodes.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let flags = fields.get(2)?;
        if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
            return None;
        }
        let serves = fields.iter().skip(8).any(|range| {
            let mut ends = range.splitn(2, '-').map(|end| end.parse::<i64>().ok());
            match (ends.next().flatten(), ends.next()) {
                (Some(first), None) => first == slot,
                (Some(first), Some(Some(last))) => (first..=last).contains(&slot),
                _ => false, // a migrating/importing slot: [slot->-id]
            }
        });
        let addr = fields.get(1)?.split('@').next()?;
        serves.then(|| addr.to_owned())
    })
}

async fn timed<T>(
    command: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> anyhow::Result<T> {
    Ok(tokio::time::timeout(NODE_TIMEOUT, command).await??)
}

/// A plain connection to one node (`host:port`).
pub async fn connect(addr: &str) -> anyhow::Result<MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://{addr}"))?;
    timed(client.get_multiplexed_async_connection())
        .await
        .with_context(|| format!("connecting to Redis at {addr}"))
}

/// Plain connections to the nodes of one topology, opened on first use.
pub struct Nodes {
    pub spec: RedisSpec,
    conns: HashMap<String, MultiplexedConnection>,
}

impl Nodes {
    pub fn new(spec: RedisSpec) -> Self {
        Self {
            spec,
            conns: HashMap::new(),
        }
    }

    /// The connection to the primary that holds `key`.
    pub async fn for_key(&mut self, key: &str) -> anyhow::Result<&mut MultiplexedConnection> {
        let addr = match &self.spec {
            // The URL may carry a password or a database: use it as given.
            RedisSpec::Single(url) => {
                if !self.conns.contains_key(url) {
                    let client = redis::Client::open(url.as_str())?;
                    let conn = timed(client.get_multiplexed_async_connection()).await?;
                    self.conns.insert(url.clone(), conn);
                }
                url.clone()
            }
            spec => {
                let addr = spec.primary_of(key).await?;
                if !self.conns.contains_key(&addr) {
                    let conn = connect(&addr).await?;
                    self.conns.insert(addr.clone(), conn);
                }
                addr
            }
        };
        Ok(self.conns.get_mut(&addr).expect("inserted above"))
    }

    /// Runs `cmd` on the primary that holds `key`.
    pub async fn query<T: redis::FromRedisValue>(
        &mut self,
        key: &str,
        cmd: &redis::Cmd,
    ) -> anyhow::Result<T> {
        let conn = self.for_key(key).await?;
        timed(cmd.query_async(conn)).await
    }
}

/// One field of `INFO SECTION` on the node at `addr`.
pub async fn info_field(addr: &str, section: &str, field: &str) -> anyhow::Result<Option<String>> {
    let mut conn = connect(addr).await?;
    let info: String = timed(redis::cmd("INFO").arg(section).query_async(&mut conn)).await?;
    Ok(info
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
a1 127.0.0.1:7101@17101 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7102@17102 master - 0 0 2 connected 5461-10922 [10923->-c3]
c3 127.0.0.1:7103@17103 master,fail - 0 0 3 disconnected
d4 127.0.0.1:7104@17104 slave a1 0 0 1 connected
e5 127.0.0.1:7106@17106 master - 0 0 7 connected 10923-16383
";

    #[test]
    fn the_owner_of_a_slot_is_the_healthy_primary_serving_it() {
        assert_eq!(owner_in_nodes(NODES, 0).as_deref(), Some("127.0.0.1:7101"));
        assert_eq!(
            owner_in_nodes(NODES, 5461).as_deref(),
            Some("127.0.0.1:7102")
        );
        assert_eq!(
            owner_in_nodes(NODES, 16383).as_deref(),
            Some("127.0.0.1:7106")
        );
    }

    #[test]
    fn the_url_forms_of_redis_url_parse() {
        let RedisSpec::Sentinel { sentinels, master } =
            RedisSpec::parse("redis+sentinel://127.0.0.1:26201,127.0.0.1:26202/mymaster").unwrap()
        else {
            panic!("not sentinel")
        };
        assert_eq!(sentinels, ["127.0.0.1:26201", "127.0.0.1:26202"]);
        assert_eq!(master, "mymaster");
        let RedisSpec::Cluster { seeds } =
            RedisSpec::parse("redis+cluster://127.0.0.1:7101,127.0.0.1:7102").unwrap()
        else {
            panic!("not cluster")
        };
        assert_eq!(seeds, ["127.0.0.1:7101", "127.0.0.1:7102"]);
        assert!(RedisSpec::parse("http://x").is_err());
    }
}
