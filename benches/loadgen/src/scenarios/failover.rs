//! `failover` (issue 14, with `--topology` only): the time from a primary's
//! death to the first successful `me` on each instance. Each round signs in
//! a fresh session, waits until the primary holding it (the Sentinel set's
//! primary; on a Cluster the primary of the session key's slot) has its
//! replica in sync, kills that primary with SIGKILL, and fires `me` for the
//! session at both instances every 20 ms until one answers 200; then
//! `.ci/redis-topologies up` brings the killed node back (as a replica).

use std::time::Duration;

use anyhow::{bail, Context};
use tokio::{task::JoinSet, time::Instant};

use super::{Bench, Target, Topology};
use crate::{
    http::{Server, BENCH_PASSWORD},
    stats::{histogram, record, Row},
    topology::info_field,
};

/// How often a new `me` probe leaves while the primary is down.
const PROBE_EVERY: Duration = Duration::from_millis(20);
/// A probe that has no answer by then counts as failed (tether's own Redis
/// deadline is 3 s, so this is never what ends a probe).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// A failover not served by then is an error.
const GIVE_UP: Duration = Duration::from_secs(30);

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let topology = bench
        .topology
        .clone()
        .context("failover needs --topology")?;
    let first = bench
        .targets
        .iter()
        .find(|t| t.label() == topology.name)
        .cloned()
        .context("no instance on the topology")?;
    let instances: Vec<Target> = std::iter::once(first)
        .chain(topology.second.clone())
        .collect();
    let mut hists: Vec<_> = instances.iter().map(|_| histogram()).collect();
    let mut samples: Vec<Vec<String>> = instances.iter().map(|_| Vec::new()).collect();
    let mut errors = vec![0u64; instances.len()];
    let start = Instant::now();
    for _ in 0..bench.sizes.failovers {
        let times = one_failover(bench, &topology, &instances).await?;
        for (i, time) in times.into_iter().enumerate() {
            match time {
                Some(time) => {
                    record(&mut hists[i], time);
                    samples[i].push(format!("{:.2}", time.as_secs_f64()));
                }
                None => errors[i] += 1,
            }
        }
    }
    restore(&topology).await?;
    let what = match topology.name.as_str() {
        "cluster" => "SIGKILL slot's primary",
        _ => "SIGKILL primary",
    };
    for (i, instance) in instances.iter().enumerate() {
        let mut row = Row::new(
            "failover",
            instance.label(),
            format!("{what} x{}", bench.sizes.failovers),
        )
        .with_hist(&hists[i], start.elapsed())
        .rss(instance.server.pid);
        row.throughput = 0.0;
        row.errors = errors[i];
        row.note = format!(
            "time from the kill to the first successful me (ms columns); each, s: {}; target: every instance serves within 10 s",
            samples[i].join(", ")
        );
        bench.push(row);
    }
    Ok(())
}

/// One kill: the time until each instance served `me` (None: not within [`GIVE_UP`]).
async fn one_failover(
    bench: &Bench,
    topology: &Topology,
    instances: &[Target],
) -> anyhow::Result<Vec<Option<Duration>>> {
    restore(topology).await?;
    let first = &instances[0];
    let cookie = first.server.login(&first.users[0], BENCH_PASSWORD).await?;
    let (sid, _) = first.server.session(&cookie).await?;
    for instance in instances {
        instance
            .server
            .me(&cookie)
            .await
            .with_context(|| format!("me on {} before the kill", instance.label()))?;
    }
    let key = format!("{}session:{{{sid}}}", bench.redis_prefix);
    let primary = topology.redis.primary_of(&key).await?;
    wait_replicated(&primary).await?;
    let pid: u32 = info_field(&primary, "server", "process_id")
        .await?
        .context("no process_id in INFO server")?
        .parse()?;
    let killed = tokio::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .await?;
    if !killed.success() {
        bail!("kill -KILL {pid} ({primary}) failed");
    }
    let since = Instant::now();
    let probes = instances
        .iter()
        .map(|instance| first_me(&instance.server, &cookie, since));
    Ok(futures_util::future::join_all(probes).await)
}

/// Fires `me` every [`PROBE_EVERY`] until one answers 200; when it did.
async fn first_me(server: &Server, cookie: &str, since: Instant) -> Option<Duration> {
    let mut probes = JoinSet::new();
    let mut tick = tokio::time::interval(PROBE_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if since.elapsed() >= GIVE_UP {
                    return None;
                }
                let (server, cookie) = (server.clone(), cookie.to_owned());
                probes.spawn(async move {
                    match tokio::time::timeout(PROBE_TIMEOUT, server.me(&cookie)).await {
                        Ok(Ok(())) => Some(Instant::now()),
                        _ => None,
                    }
                });
            }
            Some(done) = probes.join_next() => {
                if let Ok(Some(at)) = done {
                    return Some(at.saturating_duration_since(since));
                }
            }
        }
    }
}

/// Waits until the primary at `addr` has a replica online at its current
/// replication offset, so the kill loses nothing and a replica can take over.
async fn wait_replicated(addr: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + GIVE_UP;
    let target = info_field(addr, "replication", "master_repl_offset")
        .await?
        .context("no master_repl_offset")?
        .parse::<u64>()?;
    loop {
        // slave0:ip=127.0.0.1,port=7104,state=online,offset=1234,lag=0
        let replica = info_field(addr, "replication", "slave0").await?;
        let caught_up = replica.as_deref().is_some_and(|line| {
            line.contains("state=online")
                && line
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("offset="))
                    .and_then(|o| o.parse::<u64>().ok())
                    .is_some_and(|offset| offset >= target)
        });
        if caught_up {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{addr}: no replica in sync within {GIVE_UP:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `.ci/redis-topologies up NAME`: starts any node that is not running and
/// waits until the topology is healthy.
async fn restore(topology: &Topology) -> anyhow::Result<()> {
    let Some(script) = &topology.script else {
        return Ok(());
    };
    let output = tokio::process::Command::new(script)
        .args(["up", &topology.name])
        .output()
        .await
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "{} up {}: {}",
            script.display(),
            topology.name,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
