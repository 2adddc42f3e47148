//! Instances and CLI commands started at the same moment on a fresh database
//! (`docker compose --scale`, a Kubernetes rollout) all come up, and exactly
//! one first admin is created: migrations and the admin bootstrap are
//! serialized by the start-up lock (README, "Instances start together").

use std::{
    collections::HashMap,
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use futures_util::future::join_all;
use tether::{config::Config, db::Db, startup::Application};

use crate::{helpers::ADMIN_PASSWORD, test_db::TestDb};

/// How many instances start at once in one test process.
const INSTANCES: usize = 6;
/// A bound on how long a test waits for `tether serve` to listen, so a hang
/// fails the test instead of stalling the suite. Not a performance target.
const SERVE_PATIENCE: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_instances_built_at_once_on_a_fresh_postgres_database_all_start_with_one_admin() {
    let test = "start_together::six_instances_built_at_once_on_a_fresh_postgres_database_all_start_with_one_admin";
    let Some(db) = TestDb::postgres(test) else {
        return;
    };
    instances_built_at_once_all_start_with_one_admin(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_instances_built_at_once_on_a_fresh_sqlite_file_all_start_with_one_admin() {
    instances_built_at_once_all_start_with_one_admin(&TestDb::sqlite()).await;
}

#[test]
fn servers_and_cli_commands_started_at_once_on_a_fresh_postgres_database_all_come_up() {
    let test = "start_together::servers_and_cli_commands_started_at_once_on_a_fresh_postgres_database_all_come_up";
    let Some(db) = TestDb::postgres(test) else {
        return;
    };
    processes_started_at_once_all_come_up(&db);
}

#[test]
fn servers_and_cli_commands_started_at_once_on_a_fresh_sqlite_file_all_come_up() {
    processes_started_at_once_all_come_up(&TestDb::sqlite());
}

async fn instances_built_at_once_all_start_with_one_admin(db: &TestDb) {
    let vars: HashMap<&str, &str> = [
        ("TETHER_BIND", "127.0.0.1:0"),
        ("DATABASE_URL", db.url.as_str()),
        ("TETHER_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ]
    .into();
    let config = Config::from_lookup(|k| vars.get(k).map(|v| v.to_string())).expect("config");
    let builds = (0..INSTANCES).map(|_| Application::build(config.clone()));
    let mut failures = Vec::new();
    let mut apps = Vec::new();
    for built in join_all(builds).await {
        match built {
            Ok(app) => apps.push(app),
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    for app in apps {
        let handle = app.handle();
        let server = tokio::spawn(app.run_until_stopped());
        handle.stop(false).await;
        let _ = server.await;
    }
    assert!(
        failures.is_empty(),
        "{} of {INSTANCES} instances failed to start: {failures:#?}",
        failures.len()
    );
    assert_only_the_first_admin(db).await;
}

/// The user store holds exactly one user: the bootstrapped admin.
async fn assert_only_the_first_admin(db: &TestDb) {
    let store = Db::connect(&db.url).expect("connect");
    let users = store.list_users().await.expect("list users");
    let names: Vec<(&str, &[String])> = users
        .iter()
        .map(|u| (u.username.as_str(), u.roles.as_slice()))
        .collect();
    assert_eq!(names, [("admin", &["admin".to_owned()][..])]);
}

/// Three `tether migrate`, one `tether users list` and two `tether serve`,
/// all spawned before any is waited for.
fn processes_started_at_once_all_come_up(db: &TestDb) {
    let commands: [&[&str]; 6] = [
        &["migrate"],
        &["serve"],
        &["migrate"],
        &["users", "list"],
        &["serve"],
        &["migrate"],
    ];
    let mut children: Vec<(&[&str], Running)> = commands
        .iter()
        .map(|args| {
            (
                *args,
                Running(tether(&db.url, args).spawn().expect("spawn tether")),
            )
        })
        .collect();

    let mut failures = Vec::new();
    let mut admins_created = 0;
    for (args, child) in &mut children {
        let outcome = if args[0] == "serve" {
            child.listening()
        } else {
            child.finished()
        };
        match outcome {
            Ok(log) => admins_created += log.matches("event=admin_created").count(),
            Err(log) => failures.push(format!("tether {}: {log}", args.join(" "))),
        }
    }
    drop(children);
    assert!(
        failures.is_empty(),
        "{} of {} processes failed: {failures:#?}",
        failures.len(),
        commands.len()
    );
    assert_eq!(admins_created, 1, "exactly one server creates the admin");

    let list = tether(&db.url, &["users", "list"])
        .output()
        .expect("tether users list");
    let stdout = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{stdout}");
    let users: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(users.len(), 1, "one user, the admin: {stdout}");
    assert_eq!(
        users[0].split_whitespace().nth(1),
        Some("admin"),
        "{stdout}"
    );
}

/// The real binary against `url` alone, away from any developer's `.env`.
/// No admin password: a server that creates the admin logs a generated one.
fn tether(url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tether"));
    command
        .args(args)
        .env_clear()
        .env("DATABASE_URL", url)
        .env("TETHER_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A `tether` process this test started; killed when dropped (a server runs
/// until then).
struct Running(Child);

impl Running {
    /// Waits for a command to exit: its log if it succeeded, else its output.
    fn finished(&mut self) -> Result<String, String> {
        // Both pipes drained at once, so neither can fill and stall the child.
        let stdout = self
            .0
            .stdout
            .take()
            .map(|out| std::thread::spawn(|| read_all(out)));
        let stderr = self.0.stderr.take().map(read_all).unwrap_or_default();
        let stdout = stdout.and_then(|t| t.join().ok()).unwrap_or_default();
        let status = self.0.wait().expect("wait for tether");
        if status.success() {
            Ok(stderr)
        } else {
            Err(format!("{status}\n{stdout}{stderr}"))
        }
    }

    /// Waits (at most `SERVE_PATIENCE`) for a server to log that it listens:
    /// its log up to that line, or what it logged before exiting or stalling.
    fn listening(&mut self) -> Result<String, String> {
        let stderr = self.0.stderr.take().expect("stderr is piped");
        let (lines, seen) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + SERVE_PATIENCE;
        let mut log = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match seen.recv_timeout(left) {
                Ok(line) => {
                    log.push_str(&line);
                    log.push('\n');
                    if line.contains("event=listening") {
                        return Ok(log);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.0.wait().expect("wait for tether");
                    return Err(format!("exited ({status}) before listening:\n{log}"));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("not listening after {SERVE_PATIENCE:?}:\n{log}"));
                }
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read_all(mut from: impl std::io::Read) -> String {
    let mut text = String::new();
    let _ = from.read_to_string(&mut text);
    text
}
