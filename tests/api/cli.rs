//! The real `tether` binary's user commands, run while the server is up:
//! they use the same stores and reach its live sockets.

use std::process::Stdio;

use serde_json::json;
use tether::domain::EndReason;
use tether::ws::handlers;
use tether::ws::protocol::{ErrorCode, ServerEvent};

use crate::helpers::{tether_cli, CliOutput, TestApp};

crate::on_every_stack!(
    users_add_creates_a_user_who_can_sign_in_and_list_shows_it,
    set_roles_from_the_cli_applies_to_the_next_socket_message,
    disable_from_the_cli_closes_the_users_sockets,
    bad_input_gets_a_clear_message_and_a_nonzero_exit,
);

async fn tether(app: &TestApp, args: &[&str], stdin: &str) -> CliOutput {
    tether_cli(app, args, stdin).await
}

async fn users_add_creates_a_user_who_can_sign_in_and_list_shows_it(app: TestApp) {
    let out = tether(
        &app,
        &[
            "users",
            "add",
            "ivan",
            "--role",
            "user",
            "--role",
            "messages-admin",
            "--password-stdin",
        ],
        "ivan-secret-pw\n",
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    assert!(!out.stdout.contains("ivan-secret-pw") && !out.stderr.contains("ivan-secret-pw"));
    let ivan = app.login("ivan", "ivan-secret-pw").await;
    assert_eq!(
        ivan.me(&app).await["user"]["roles"],
        json!(["messages-admin", "user"])
    );
    let list = tether(&app, &["users", "list"], "").await;
    assert!(list.ok, "{}", list.stderr);
    let line = list
        .stdout
        .lines()
        .find(|l| l.contains("ivan"))
        .expect("ivan listed");
    assert!(
        line.contains("active") && line.contains("messages-admin,user"),
        "{line}"
    );
    assert!(list.stdout.contains("admin"));
}

async fn set_roles_from_the_cli_applies_to_the_next_socket_message(app: TestApp) {
    let user = app.login_new_user("judy", &["user"]).await;
    let mut socket = user.socket(&app).await;
    assert!(!socket.ask::<handlers::messages::Admin>(json!({})).await.ok);

    let out = tether(
        &app,
        &["users", "set-roles", "judy", "user", "messages-admin"],
        "",
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    // Another process committed the change; the very next message sees it.
    let reply = socket.ask::<handlers::messages::Admin>(json!({})).await;
    assert!(reply.ok, "{reply:?}");

    let out = tether(&app, &["users", "set-roles", "judy", "user"], "").await;
    assert!(out.ok, "{}", out.stderr);
    let reply = socket.ask::<handlers::messages::Admin>(json!({})).await;
    assert_eq!(reply.error.unwrap().code, ErrorCode::Forbidden);
}

async fn disable_from_the_cli_closes_the_users_sockets(app: TestApp) {
    let user = app.login_new_user("ken", &["user"]).await;
    let mut socket = user.socket(&app).await;
    let out = tether(&app, &["users", "disable", "ken"], "").await;
    assert!(out.ok, "{}", out.stderr);
    let (code, events) = socket.closed().await;
    assert_eq!(code, Some(4001));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ServerEvent::SessionRevoked { reason } if *reason == EndReason::Disabled)),
        "{events:?}"
    );
    assert_eq!(user.get(&app.url("/api/auth/me")).await.status(), 401);
    let list = tether(&app, &["users", "list"], "").await;
    assert!(list
        .stdout
        .lines()
        .any(|l| l.contains("ken") && l.contains("disabled")));
}

async fn bad_input_gets_a_clear_message_and_a_nonzero_exit(app: TestApp) {
    app.create_user("lena", &["user"]).await;
    let cases: [(&[&str], &str, &str); 7] = [
        (
            &["users", "add", "x", "--role", "wizard", "--password-stdin"],
            "long-enough-pw",
            "unknown role",
        ),
        (
            &[
                "users",
                "add",
                "bad name",
                "--role",
                "user",
                "--password-stdin",
            ],
            "long-enough-pw",
            "username",
        ),
        (
            &["users", "add", "lena", "--role", "user", "--password-stdin"],
            "long-enough-pw",
            "taken",
        ),
        (
            &["users", "add", "mo", "--role", "user", "--password-stdin"],
            "short",
            "at least",
        ),
        (
            &["users", "add", "mo", "--role", "user"],
            "",
            "--password-stdin",
        ),
        (
            &["users", "set-roles", "nobody", "user"],
            "",
            "no such user",
        ),
        (&["users", "disable", "nobody"], "", "no such user"),
    ];
    for (args, stdin, expected) in cases {
        let out = tether(&app, args, stdin).await;
        assert!(!out.ok, "{args:?} must fail");
        assert!(
            out.stderr.to_lowercase().contains(&expected.to_lowercase()),
            "{args:?}: stderr {:?} should mention {expected:?}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    // No partial writes: nothing was created.
    let list = tether(&app, &["users", "list"], "").await;
    assert!(!list.stdout.contains(" x ") && !list.stdout.contains("mo "));
}

/// Runs the `tether` binary with only `env` (no stores of a test app).
pub(crate) fn run_plain(env: &[(&str, &str)], args: &[&str]) -> CliOutput {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run tether");
    CliOutput {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn an_invalid_setting_stops_start_up_naming_the_variable() {
    for (var, value) in [
        ("TETHER_BIND", "not-an-address"),
        ("DATABASE_URL", "mysql://db/x"),
        ("TETHER_SESSION_IDLE_SECS", "soon"),
    ] {
        let out = run_plain(&[(var, value)], &["serve"]);
        assert!(!out.ok, "{var}");
        assert!(out.stderr.contains(var), "{var}: {}", out.stderr);
    }
}

#[test]
fn migrate_prepares_a_fresh_database_and_is_idempotent() {
    let db = crate::test_db::TestDb::sqlite();
    for _ in 0..2 {
        let out = run_plain(&[("DATABASE_URL", db.url.as_str())], &["migrate"]);
        assert!(out.ok, "{}", out.stderr);
        assert!(out.stdout.contains("up to date"));
    }
    let list = run_plain(&[("DATABASE_URL", db.url.as_str())], &["users", "list"]);
    assert!(list.ok, "{}", list.stderr);
    assert_eq!(
        list.stdout.lines().count(),
        1,
        "only the header: migrate creates no user"
    );
}
