//! Redis Cluster: the cluster client every command connection is opened
//! from (redis-rs routes each command to its slot's primary and follows
//! `MOVED` and failovers itself), and a watcher of which nodes are primaries
//! now, for what redis-rs does not cover: keyspace notifications, which
//! each primary publishes only to its own subscribers.

use std::{sync::Weak, time::Duration};

use anyhow::Context as _;
use redis::{
    cluster::ClusterClientBuilder, cluster_async::ClusterConnection, ConnectionAddr,
    IntoConnectionInfo as _, RedisConnectionInfo,
};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::watch;

use super::{Inner, RedisLink};
use crate::config::RedisNode;

/// How often the watcher asks the cluster for its nodes: the bound on how
/// long a new primary (after a failover) goes without a keyspace listener.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long a node may take to answer the watcher.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// The nodes of the cluster as one of them last described them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterNodes {
    /// `HOST:PORT` of every primary that serves slots and is not failing, sorted.
    pub primaries: Vec<String>,
    /// `HOST:PORT` of every node not failing (primaries and replicas), sorted.
    pub all: Vec<String>,
}

/// What the link keeps of a Cluster.
pub(super) struct Cluster {
    pub(super) client: redis::cluster::ClusterClient,
    password: Option<SecretString>,
    pub(super) nodes: watch::Sender<ClusterNodes>,
}

impl Cluster {
    /// A client for one node of the cluster, `HOST:PORT` as CLUSTER NODES names it.
    pub(super) fn node_client(&self, addr: &str) -> anyhow::Result<redis::Client> {
        let (host, port) = addr
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse().ok()?)))
            .with_context(|| format!("cluster node {addr:?} is not HOST:PORT"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let node = RedisNode {
            host: host.to_owned(),
            port,
        };
        Ok(redis::Client::open(info(&node, self.password.as_ref()))?)
    }
}

/// Connects to the cluster through its seed `nodes`, reads its topology, and
/// keeps reading it every [`POLL_EVERY`].
pub(super) async fn connect(
    seeds: &[RedisNode],
    password: Option<&SecretString>,
) -> anyhow::Result<RedisLink> {
    let mut builder = ClusterClientBuilder::new(seeds.iter().map(|node| info(node, None)))
        .connection_timeout(ANSWER_WITHIN)
        .response_timeout(ANSWER_WITHIN);
    if let Some(password) = password {
        builder = builder.password(password.expose_secret());
    }
    let client = builder
        .build()
        .context("REDIS_URL names no usable cluster node")?;
    let mut connection = tokio::time::timeout(ANSWER_WITHIN * 2, client.get_async_connection())
        .await
        .context("no cluster node answered in time")?
        .context("no cluster node answered")?;
    let nodes = read_nodes(&mut connection).await?;
    anyhow::ensure!(
        !nodes.primaries.is_empty(),
        "the cluster named no primary that serves slots"
    );
    log::info!(
        "event=redis_cluster_found primaries={}",
        nodes.primaries.join(",")
    );
    let cluster = Cluster {
        client,
        password: password.cloned(),
        nodes: watch::channel(nodes).0,
    };
    let first = seeds.first().context("REDIS_URL names no cluster node")?;
    let seed = redis::Client::open(info(first, password))?;
    let link = RedisLink::new(first.to_string(), seed, 0, false, Some(cluster));
    tokio::spawn(watch_nodes(
        connection,
        std::sync::Arc::downgrade(&link.inner),
    ));
    Ok(link)
}

/// Until the link is dropped: reads the cluster's nodes every
/// [`POLL_EVERY`], and publishes them when they changed (a failover, a node
/// that failed or came back).
async fn watch_nodes(mut connection: ClusterConnection, link: Weak<Inner>) {
    loop {
        tokio::time::sleep(POLL_EVERY).await;
        let Some(inner) = link.upgrade() else {
            return;
        };
        let Some(cluster) = &inner.cluster else {
            return;
        };
        match tokio::time::timeout(ANSWER_WITHIN, read_nodes(&mut connection)).await {
            Ok(Ok(nodes)) if !nodes.primaries.is_empty() => {
                cluster.nodes.send_if_modified(|known| {
                    if *known == nodes {
                        return false;
                    }
                    log::warn!(
                        "event=redis_cluster_changed primaries={} nodes={}",
                        nodes.primaries.join(","),
                        nodes.all.len()
                    );
                    *known = nodes;
                    true
                });
            }
            Ok(Ok(_no_primary)) => log::warn!("event=redis_cluster_unknown error=\"no primary\""),
            Ok(Err(e)) => log::warn!("event=redis_cluster_unknown error=\"{e:#}\""),
            Err(_) => log::warn!("event=redis_cluster_unknown error=\"no answer in time\""),
        }
    }
}

async fn read_nodes(connection: &mut ClusterConnection) -> anyhow::Result<ClusterNodes> {
    let text: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(connection)
        .await
        .context("CLUSTER NODES")?;
    Ok(parse_nodes(&text))
}

/// Reads `CLUSTER NODES`: one line per node, `id addr flags primary-id
/// ping pong epoch link slot…`, the address `HOST:PORT@BUSPORT[,HOSTNAME]`.
fn parse_nodes(text: &str) -> ClusterNodes {
    let mut nodes = ClusterNodes::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(addr), Some(flags)) = (fields.get(1), fields.get(2)) else {
            continue;
        };
        let addr = addr.split(['@', ',']).next().unwrap_or_default();
        let failing = flags
            .split(',')
            .any(|f| matches!(f, "fail" | "fail?" | "noaddr" | "handshake"));
        if addr.starts_with(':') || addr.is_empty() || failing {
            continue;
        }
        nodes.all.push(addr.to_owned());
        let serves_slots = fields.len() > 8;
        if flags.split(',').any(|f| f == "master") && serves_slots {
            nodes.primaries.push(addr.to_owned());
        }
    }
    nodes.primaries.sort();
    nodes.all.sort();
    nodes
}

fn info(node: &RedisNode, password: Option<&SecretString>) -> redis::ConnectionInfo {
    let mut settings = RedisConnectionInfo::default().set_db(0);
    if let Some(password) = password {
        settings = settings.set_password(password.expose_secret());
    }
    ConnectionAddr::Tcp(node.host.clone(), node.port)
        .into_connection_info()
        .expect("a TCP address is always connection info")
        .set_redis_settings(settings)
}

#[cfg(test)]
mod tests {
    use super::parse_nodes;

    #[test]
    fn primaries_are_the_live_masters_that_serve_slots() {
        let text = "\
a1 127.0.0.1:7101@17101 myself,master - 0 0 1 connected 0-5460
a2 127.0.0.1:7102@17102,host-b master - 0 0 2 connected 5461-10922
a3 127.0.0.1:7103@17103 master,fail - 0 0 3 connected 10923-16383
a4 127.0.0.1:7104@17104 slave a1 0 0 1 connected
a5 127.0.0.1:7105@17105 master - 0 0 7 connected
a6 :0@0 master,noaddr - 0 0 0 disconnected
";
        let nodes = parse_nodes(text);
        assert_eq!(nodes.primaries, ["127.0.0.1:7101", "127.0.0.1:7102"]);
        assert_eq!(
            nodes.all,
            [
                "127.0.0.1:7101",
                "127.0.0.1:7102",
                "127.0.0.1:7104",
                "127.0.0.1:7105"
            ]
        );
    }
}
