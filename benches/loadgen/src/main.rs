//! `loadgen`: tether's benchmark harness (issue 5). `loadgen run` drives
//! running servers over loopback and prints one table (also written as JSON);
//! `loadgen echo-server` is the bare actix-ws baseline it compares against.
//! `benches/run.sh` starts everything and runs both; see BENCHMARKS.md.

mod echo;
mod hold;
mod http;
mod load;
mod scenarios;
mod stats;
mod topology;
mod ws;

use std::{path::PathBuf, time::SystemTime};

use anyhow::Context;
use clap::{Parser, Subcommand};
use scenarios::{Bench, Sizes, Target, Topology};

#[derive(Parser)]
#[command(about = "Load generator for tether's benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Parsed once at start; the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Serve the bare baseline: actix-ws echo on /ws, no auth.
    EchoServer {
        #[arg(long, default_value = "127.0.0.1:18090")]
        bind: String,
    },
    /// Run scenarios against running servers.
    Run(RunArgs),
    /// Hold idle sockets for `run`'s idle scenario (started by it; JSON lines on stdin/stdout).
    Hold,
}

#[derive(clap::Args)]
struct RunArgs {
    /// tether with in-process sessions: base URL and pid (for RSS).
    #[arg(long)]
    mem: Option<String>,
    #[arg(long)]
    mem_pid: Option<u32>,
    /// tether with Redis sessions.
    #[arg(long)]
    redis: Option<String>,
    #[arg(long)]
    redis_pid: Option<u32>,
    /// A second Redis-backed tether sharing the first one's Redis and database.
    #[arg(long)]
    redis2: Option<String>,
    #[arg(long)]
    redis2_pid: Option<u32>,
    /// The echo server (`loadgen echo-server`).
    #[arg(long)]
    echo: Option<String>,
    #[arg(long)]
    echo_pid: Option<u32>,
    /// Password of the `admin` user on every tether under test.
    #[arg(long, env = "TETHER_ADMIN_PASSWORD")]
    admin_password: String,
    /// Redis the Redis-backed instances use (for the raw DEL path).
    #[arg(long)]
    redis_url: Option<String>,
    /// Their TETHER_REDIS_PREFIX.
    #[arg(long, default_value = "tether:")]
    redis_prefix: String,
    /// A Redis topology with two tether instances on it (issue 14): `cluster`
    /// or `sentinel`, also the label of its first instance's rows.
    #[arg(long, requires_all = ["topology_url", "topo"])]
    topology: Option<String>,
    /// Its `REDIS_URL` (`redis+cluster://…` or `redis+sentinel://…`).
    #[arg(long)]
    topology_url: Option<String>,
    /// `.ci/redis-topologies`, which `failover` runs to bring a killed node back.
    #[arg(long)]
    topology_script: Option<PathBuf>,
    /// The tether instances on the topology: base URLs and pids.
    #[arg(long)]
    topo: Option<String>,
    #[arg(long)]
    topo_pid: Option<u32>,
    #[arg(long)]
    topo2: Option<String>,
    #[arg(long)]
    topo2_pid: Option<u32>,
    /// Comma-separated: idle,me,upgrade,messages,revoke,chat,login,failover
    /// (default: all, in that order; failover only with --topology).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Smaller sizes and shorter runs.
    #[arg(long)]
    quick: bool,
    /// Seconds per timed measurement (overrides the mode's default).
    #[arg(long)]
    secs: Option<f64>,
    /// Idle socket levels (overrides the mode's default), e.g. 1000,5000,10000,19000.
    #[arg(long, value_delimiter = ',')]
    idle_levels: Vec<usize>,
    /// Seconds to hold each idle level before reading RSS (longer gives a
    /// heap profiler time to take a snapshot, see BENCHMARKS.md).
    #[arg(long)]
    idle_hold: Option<f64>,
    /// Primaries the `failover` scenario kills (overrides the mode's default: 10, quick 5).
    #[arg(long)]
    failovers: Option<usize>,
    /// Where to write the JSON results.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Default order: `idle` first, while the servers' RSS is still clean, and
/// `login` last, because argon2id's 19 MiB per hash leaves the servers'
/// allocators holding hundreds of MiB (see BENCHMARKS.md). `failover`
/// (with `--topology` only) after everything, since it kills Redis nodes.
const ALL: [&str; 8] = [
    "idle", "me", "upgrade", "messages", "revoke", "chat", "login", "failover",
];

/// The pid in `INFO server`, if this Redis runs on this machine (loopback).
async fn redis_pid(url: &str) -> Option<u32> {
    let client = redis::Client::open(url).ok()?;
    let host = client.get_connection_info().addr().to_string();
    if !host.contains("127.0.0.1") && !host.contains("localhost") && !host.contains("::1") {
        return None;
    }
    let mut connection = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut connection)
        .await
        .ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::EchoServer { bind } => echo::serve(&bind),
        // One thread: on two cores shared with the server, a multi-thread
        // client spent 49 µs of CPU per `me` request (cross-thread wake-ups)
        // against 30 µs on one, CPU the server under test then lacked.
        Command::Run(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(run(args)),
        Command::Hold => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(hold::serve()),
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let load_before = stats::load_average();
    let mut sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    if let Some(secs) = args.secs {
        sizes.secs = secs;
    }
    if !args.idle_levels.is_empty() {
        sizes.idle_levels = args.idle_levels.clone();
    }
    if let Some(hold) = args.idle_hold {
        sizes.idle_hold_secs = hold;
    }
    if let Some(failovers) = args.failovers {
        sizes.failovers = failovers;
    }
    let mut targets = Vec::new();
    for (label, url, pid) in [
        ("mem", &args.mem, args.mem_pid),
        ("redis", &args.redis, args.redis_pid),
    ] {
        if let Some(url) = url {
            let server = http::Server::new(label, url, pid);
            let target = Target::prepare(server, &args.admin_password)
                .await
                .with_context(|| format!("preparing {label} at {url}"))?;
            targets.push(target);
        }
    }
    let topology = match (&args.topology, &args.topology_url, &args.topo) {
        (Some(name), Some(url), Some(base)) => {
            let server = http::Server::new(name, base, args.topo_pid);
            let target = Target::prepare(server, &args.admin_password)
                .await
                .with_context(|| format!("preparing {name} at {base}"))?;
            targets.push(target);
            let second = match &args.topo2 {
                Some(base) => Some(
                    Target::prepare(
                        http::Server::new(&format!("{name}2"), base, args.topo2_pid),
                        &args.admin_password,
                    )
                    .await?,
                ),
                None => None,
            };
            Some(Topology {
                name: name.clone(),
                redis: topology::RedisSpec::parse(url)?,
                script: args.topology_script.clone(),
                second,
            })
        }
        _ => None,
    };
    let second = match &args.redis2 {
        Some(url) => Some(
            Target::prepare(
                http::Server::new("redis2", url, args.redis2_pid),
                &args.admin_password,
            )
            .await?,
        ),
        None => None,
    };
    let echo = args
        .echo
        .as_deref()
        .map(|url| http::Server::new("echo", url, args.echo_pid));
    let mut bench = Bench {
        sizes,
        targets,
        second,
        echo,
        redis_url: args.redis_url.clone(),
        redis_pid: match &args.redis_url {
            Some(url) => redis_pid(url).await,
            None => None,
        },
        redis_prefix: args.redis_prefix.clone(),
        topology,
        rows: Vec::new(),
    };
    let chosen: Vec<String> = if args.scenarios.is_empty() {
        ALL.iter().map(|s| s.to_string()).collect()
    } else {
        args.scenarios.clone()
    };
    println!("load average before: {load_before}");
    stats::print_header();
    for scenario in &chosen {
        let outcome = match scenario.as_str() {
            "login" => scenarios::login::run(&mut bench).await,
            "me" => scenarios::me::run(&mut bench).await,
            "upgrade" => scenarios::upgrade::run(&mut bench).await,
            "messages" => scenarios::messages::run(&mut bench).await,
            "idle" => scenarios::idle::run(&mut bench).await,
            "revoke" => scenarios::revoke::run(&mut bench).await,
            "chat" => scenarios::chat::run(&mut bench).await,
            "failover" if bench.topology.is_none() => {
                eprintln!("scenario failover skipped: it needs --topology");
                Ok(())
            }
            "failover" => scenarios::failover::run(&mut bench).await,
            other => anyhow::bail!("unknown scenario {other:?} (known: {})", ALL.join(",")),
        };
        if let Err(e) = outcome {
            // One failing scenario must not lose the others' numbers.
            eprintln!("scenario {scenario} failed: {e:#}");
            let mut row = stats::Row::new(scenario, "-", "failed");
            row.note = format!("{e:#}");
            bench.push(row);
        }
    }
    println!();
    println!(
        "== results (load average before: {load_before}, after: {})",
        stats::load_average()
    );
    stats::print_table(&bench.rows);
    if let Some(out) = &args.out {
        let report = stats::Report {
            started_unix: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            load_average_before: load_before,
            settings: serde_json::to_value(&bench.sizes)?,
            rows: &bench.rows,
        };
        std::fs::write(out, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", out.display()))?;
        println!("written: {}", out.display());
    }
    Ok(())
}
