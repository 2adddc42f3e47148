//! Usernames are case-insensitive: `alice` and `Alice` are one account, kept
//! as it was typed at creation; sign-in matches regardless of case. A store
//! from before, holding names that differ only by case, is refused by the
//! migration with the names it has to settle.

use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use reqwest::header::COOKIE;
use serde_json::{json, Value};

use crate::{
    cli::run_plain,
    helpers::{tether_cli, TestApp},
    test_db::TestDb,
};

crate::on_every_stack!(
    names_are_unique_regardless_of_case,
    sign_in_matches_any_case_and_shows_the_name_as_created,
);

async fn create(app: &TestApp, admin_cookie: &str, username: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/admin/users"))
        .header(COOKIE, admin_cookie)
        .json(&json!({"username": username, "password": "long-enough-pw", "roles": ["user"]}))
        .send()
        .await
        .unwrap()
}

async fn names_are_unique_regardless_of_case(app: TestApp) {
    let admin = app.login_admin().await;
    app.create_user("mallory", &["user"]).await;
    for taken in ["Mallory", "MALLORY", "mallorY"] {
        let res = create(&app, &admin.cookie, taken).await;
        assert_eq!(res.status(), 409, "{taken}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "conflict");
    }
    let out = tether_cli(
        &app,
        &[
            "users",
            "add",
            "MaLLoRy",
            "--role",
            "user",
            "--password-stdin",
        ],
        "long-enough-pw",
    )
    .await;
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("taken"), "{}", out.stderr);
    let users = app.state.db.list_users().await.unwrap();
    let names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["admin", "mallory"]);
    // The first mallory keeps her password.
    assert!(app.try_login("mallory", "mallory-password").await.is_ok());
}

async fn sign_in_matches_any_case_and_shows_the_name_as_created(app: TestApp) {
    let admin = app.login_admin().await;
    assert_eq!(create(&app, &admin.cookie, "Alice").await.status(), 201);
    app.create_user("bob", &["user"]).await;
    app.create_user("Carol", &["user"]).await;
    for typed in ["alice", "ALICE", "Alice"] {
        let alice = app
            .try_login(typed, "long-enough-pw")
            .await
            .unwrap_or_else(|status| panic!("{typed}: {status}"));
        assert_eq!(alice.me(&app).await["user"]["username"], "Alice", "{typed}");
    }
    assert_eq!(
        app.try_login("alice", "wrong-password").await.err(),
        Some(401)
    );
    // The CLI finds her by any case too.
    let out = tether_cli(
        &app,
        &["users", "set-roles", "ALICE", "user", "messages-admin"],
        "",
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    let id = app.user_id("alice").await;
    let alice = app.state.db.find_user(id).await.unwrap().unwrap();
    assert_eq!(alice.username, "Alice");
    assert_eq!(alice.roles, ["messages-admin", "user"]);
    // Listed by name ignoring case, as typed.
    let list: Value = admin
        .get(&app.url("/api/admin/users"))
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "Alice", "bob", "Carol"]);
}

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Applies the migrations before the one that folds names: the schema a
/// store had until now.
fn previous_schema<DB: diesel::backend::Backend>(
    conn: &mut impl MigrationHarness<DB>,
    source: fn() -> EmbeddedMigrations,
) {
    loop {
        let pending = conn.pending_migrations(source()).unwrap();
        let next = pending.first().expect("the migration is still to come");
        if next
            .name()
            .to_string()
            .ends_with("_case_insensitive_usernames")
        {
            return;
        }
        conn.run_next_migration(source()).unwrap();
    }
}

const COLLIDING: &str = "INSERT INTO users (id, username, password_hash) VALUES \
    ('00000000-0000-4000-8000-000000000001', 'Alice', 'x'), \
    ('00000000-0000-4000-8000-000000000002', 'alice', 'x'), \
    ('00000000-0000-4000-8000-000000000003', 'BOB', 'x'), \
    ('00000000-0000-4000-8000-000000000004', 'bob', 'x'), \
    ('00000000-0000-4000-8000-000000000005', 'Bob', 'x'), \
    ('00000000-0000-4000-8000-000000000006', 'Carol', 'x')";

/// `tether migrate` on that store: refused, naming exactly the colliding
/// users, changing nothing; once they are renamed, it goes through and the
/// names are unique regardless of case from then on.
fn migrating_refuses_names_differing_only_by_case(
    db: &TestDb,
    execute: &mut dyn FnMut(&str) -> Result<usize, String>,
    still_pending: &mut dyn FnMut() -> bool,
) {
    execute(COLLIDING).unwrap();
    let env = [("DATABASE_URL", db.url.as_str())];
    let out = run_plain(&env, &["migrate"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    for named in [r#""Alice" and "alice""#, r#""BOB" and "Bob" and "bob""#] {
        assert!(out.stderr.contains(named), "{named}: {}", out.stderr);
    }
    assert!(!out.stderr.contains("Carol"), "{}", out.stderr);
    assert!(out.stderr.contains("Rename"), "{}", out.stderr);
    assert!(still_pending(), "nothing was migrated");

    assert_eq!(
        execute("UPDATE users SET username = 'alice-2' WHERE username = 'alice'"),
        Ok(1)
    );
    assert_eq!(
        execute("UPDATE users SET username = 'bob-' || id WHERE username <> 'Bob' AND lower(username) = 'bob'"),
        Ok(2)
    );
    let out = run_plain(&env, &["migrate"]);
    assert!(out.ok, "{}", out.stderr);
    assert!(!still_pending());
    let carol = "INSERT INTO users (id, username, password_hash) VALUES \
        ('00000000-0000-4000-8000-000000000007', 'CAROL', 'x')";
    assert!(
        execute(carol).is_err(),
        "the store refuses a name taken in another case"
    );
}

#[test]
fn the_migration_names_colliding_users_on_sqlite() {
    let db = TestDb::sqlite();
    let path = db.url.strip_prefix("sqlite://").unwrap().to_owned();
    let mut conn = SqliteConnection::establish(&path).unwrap();
    previous_schema(&mut conn, || SQLITE);
    let conn = std::cell::RefCell::new(conn);
    migrating_refuses_names_differing_only_by_case(
        &db,
        &mut |sql| {
            diesel::sql_query(sql)
                .execute(&mut *conn.borrow_mut())
                .map_err(|e| e.to_string())
        },
        &mut || {
            let mut conn = conn.borrow_mut();
            !conn.pending_migrations(SQLITE).unwrap().is_empty()
        },
    );
}

#[test]
fn the_migration_names_colliding_users_on_postgres() {
    let Some(db) = TestDb::postgres("usernames::the_migration_names_colliding_users_on_postgres")
    else {
        return;
    };
    let mut conn = PgConnection::establish(&db.url).unwrap();
    previous_schema(&mut conn, || POSTGRES);
    let conn = std::cell::RefCell::new(conn);
    migrating_refuses_names_differing_only_by_case(
        &db,
        &mut |sql| {
            diesel::sql_query(sql)
                .execute(&mut *conn.borrow_mut())
                .map_err(|e| e.to_string())
        },
        &mut || {
            let mut conn = conn.borrow_mut();
            !conn.pending_migrations(POSTGRES).unwrap().is_empty()
        },
    );
}
