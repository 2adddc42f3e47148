//! The Sentinel watcher: asks the sentinels where the primary of a master
//! name is (every second, at once when a command fails or a sentinel
//! announces `+switch-master`), checks that node answers `ROLE` as a
//! primary, and moves the link there when it changed.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use anyhow::Context as _;
use futures_util::StreamExt as _;
use redis::{
    aio::MultiplexedConnection, AsyncConnectionConfig, ConnectionAddr, ConnectionInfo,
    IntoConnectionInfo as _, RedisConnectionInfo, Value,
};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::Notify;

use super::{Inner, RedisLink};
use crate::config::RedisNode;

/// How often the watcher asks the sentinels even when nothing failed: the
/// bound on how long a failover goes unnoticed by an idle instance.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// The least time between two lookups, however often commands fail.
const MIN_GAP: Duration = Duration::from_millis(100);
/// How long one sentinel, or one candidate primary, may take to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// Finds the primary of `master` through `sentinels`, then keeps following it.
pub(super) async fn connect(
    sentinels: &[RedisNode],
    master: &str,
    password: Option<&SecretString>,
) -> anyhow::Result<RedisLink> {
    let mut watcher = Watcher {
        sentinels: sentinels
            .iter()
            .map(|node| Sentinel {
                info: tcp(node),
                connection: None,
            })
            .collect(),
        master: master.to_owned(),
        password: password.cloned(),
        answered_last: 0,
    };
    let (addr, client) = watcher.primary().await.with_context(|| {
        format!("no sentinel named a reachable primary for {master:?} (REDIS_URL)")
    })?;
    log::info!("event=redis_primary_found master={master} addr={addr}");
    let link = RedisLink::new(addr, client, 0, true, None);
    let recheck = link.inner.recheck.clone();
    let infos = watcher.sentinels.iter().map(|s| s.info.clone()).collect();
    tokio::spawn(hear_switches(
        infos,
        Arc::downgrade(&link.inner),
        recheck.clone(),
    ));
    tokio::spawn(watcher.follow(Arc::downgrade(&link.inner), recheck));
    Ok(link)
}

/// Wakes the watcher on every `+switch-master` a sentinel announces, so the
/// link moves within milliseconds of the switch rather than at the next
/// poll: until the sentinels demote it, the old primary still takes writes,
/// and whatever lands there is lost. Tries the sentinels in turn; stops when
/// the link is dropped.
async fn hear_switches(sentinels: Vec<ConnectionInfo>, link: Weak<Inner>, recheck: Arc<Notify>) {
    for info in sentinels.iter().cycle() {
        if link.strong_count() == 0 {
            return;
        }
        let subscribed = async {
            let client = redis::Client::open(info.clone())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe("+switch-master").await?;
            anyhow::Ok(pubsub)
        };
        let mut pubsub = match tokio::time::timeout(ANSWER_WITHIN, subscribed).await {
            Ok(Ok(pubsub)) => pubsub,
            _ => {
                tokio::time::sleep(POLL_EVERY).await;
                continue;
            }
        };
        let mut switches = pubsub.on_message();
        loop {
            match tokio::time::timeout(POLL_EVERY, switches.next()).await {
                Ok(Some(_switch)) => recheck.notify_one(),
                Ok(None) => break,
                Err(_quiet) if link.strong_count() == 0 => return,
                Err(_quiet) => {}
            }
        }
    }
}

struct Watcher {
    sentinels: Vec<Sentinel>,
    master: String,
    password: Option<SecretString>,
    /// Asked first next time: the last sentinel that answered.
    answered_last: usize,
}

struct Sentinel {
    info: ConnectionInfo,
    connection: Option<MultiplexedConnection>,
}

impl Watcher {
    /// Until the link is dropped: looks the primary up every [`POLL_EVERY`]
    /// or when woken, and moves the link when it changed.
    async fn follow(mut self, link: Weak<Inner>, recheck: Arc<Notify>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(POLL_EVERY) => {}
                () = recheck.notified() => {}
            }
            let Some(inner) = link.upgrade() else {
                return;
            };
            let link = RedisLink { inner };
            let current = link.primary_addr();
            match self.primary_unless(&current).await {
                Ok(Some((addr, client))) => link.moved_to(addr, client),
                Ok(None) => {}
                Err(e) => log::warn!(
                    "event=redis_primary_unknown master={} current={current} error={e:#}",
                    self.master
                ),
            }
            drop(link);
            tokio::time::sleep(MIN_GAP).await;
        }
    }

    /// The primary the sentinels name, checked to answer as one.
    async fn primary(&mut self) -> anyhow::Result<(String, redis::Client)> {
        self.primary_unless("")
            .await?
            .context("the sentinels named no primary")
    }

    /// As [`Watcher::primary`], but `None` when it is still `current`.
    async fn primary_unless(
        &mut self,
        current: &str,
    ) -> anyhow::Result<Option<(String, redis::Client)>> {
        let named = self.named_primary().await?;
        if named == current {
            return Ok(None);
        }
        let client = self.client_for(&named)?;
        anyhow::ensure!(
            answers_as_primary(&client).await?,
            "{named}, named by the sentinels, is not a primary yet"
        );
        Ok(Some((named, client)))
    }

    /// `HOST:PORT` of the primary, from the first sentinel that answers.
    async fn named_primary(&mut self) -> anyhow::Result<String> {
        let count = self.sentinels.len();
        let mut last_error = anyhow::anyhow!("no sentinel configured");
        for i in 0..count {
            let index = (self.answered_last + i) % count;
            match self.ask(index).await {
                Ok(Some(addr)) => {
                    self.answered_last = index;
                    return Ok(addr);
                }
                Ok(None) => {
                    last_error = anyhow::anyhow!(
                        "sentinel {} does not know master {:?}",
                        self.sentinels[index].info.addr(),
                        self.master
                    );
                }
                Err(e) => {
                    self.sentinels[index].connection = None;
                    last_error = e.context(format!(
                        "sentinel {} did not answer",
                        self.sentinels[index].info.addr()
                    ));
                }
            }
        }
        Err(last_error)
    }

    /// `SENTINEL GET-MASTER-ADDR-BY-NAME` on sentinel `index`.
    async fn ask(&mut self, index: usize) -> anyhow::Result<Option<String>> {
        let sentinel = &mut self.sentinels[index];
        let connection = match &sentinel.connection {
            Some(connection) => connection.clone(),
            None => {
                let client = redis::Client::open(sentinel.info.clone())?;
                let connection = client
                    .get_multiplexed_async_connection_with_config(&answer_config())
                    .await?;
                sentinel.connection = Some(connection.clone());
                connection
            }
        };
        let mut connection = connection;
        let reply: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.master)
            .query_async(&mut connection)
            .await?;
        Ok(reply.map(|(host, port)| node_addr(&host, port)))
    }

    fn client_for(&self, addr: &str) -> anyhow::Result<redis::Client> {
        let (host, port) = addr
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse().ok()?)))
            .with_context(|| format!("sentinel named {addr:?}, not HOST:PORT"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let mut settings = RedisConnectionInfo::default().set_db(0);
        if let Some(password) = &self.password {
            settings = settings.set_password(password.expose_secret());
        }
        let info = tcp(&RedisNode {
            host: host.to_owned(),
            port,
        })
        .set_redis_settings(settings);
        Ok(redis::Client::open(info)?)
    }
}

fn tcp(node: &RedisNode) -> ConnectionInfo {
    ConnectionAddr::Tcp(node.host.clone(), node.port)
        .into_connection_info()
        .expect("a TCP address is always connection info")
}

fn node_addr(host: &str, port: u16) -> String {
    RedisNode {
        host: host.to_owned(),
        port,
    }
    .to_string()
}

fn answer_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(ANSWER_WITHIN))
        .set_response_timeout(Some(ANSWER_WITHIN))
}

/// Whether the node behind `client` says `ROLE` = `master`.
async fn answers_as_primary(client: &redis::Client) -> anyhow::Result<bool> {
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&answer_config())
        .await
        .context("the named primary does not answer")?;
    let role: Vec<Value> = redis::cmd("ROLE").query_async(&mut connection).await?;
    let first = role.into_iter().next();
    Ok(matches!(first,
        Some(Value::BulkString(ref b)) if b == b"master")
        || matches!(first, Some(Value::SimpleString(ref s)) if s == "master"))
}
