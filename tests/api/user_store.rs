//! The user store against both real backends: every case runs once on SQLite
//! and once on PostgreSQL, each on its own fresh database.

use std::time::{Duration, Instant};

use tether::db::{Backend, Db, DbError};
use tether::domain::{Permission, PermissionSet, RoleName, Username};
use uuid::Uuid;

use crate::test_db::TestDb;

/// Declares each case as `sqlite::<case>` and `postgres::<case>` tests.
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let test_db = crate::test_db::TestDb::sqlite();
                    super::$case(&test_db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let name = concat!("user_store::postgres::", stringify!($case));
                    let Some(test_db) = crate::test_db::TestDb::postgres(name) else {
                        return;
                    };
                    super::$case(&test_db).await;
                }
            )*
        }
    };
}

on_both_backends!(
    migrations_apply_once_and_then_have_nothing_to_do,
    seeded_roles_grant_their_permissions,
    created_users_can_be_found_by_id_by_name_and_in_the_list,
    a_taken_username_is_refused,
    an_unknown_role_is_refused_and_nothing_is_written,
    set_roles_replaces_the_roles_and_so_the_permissions,
    set_disabled_marks_the_user_disabled,
    find_credentials_returns_the_stored_password_hash,
    find_users_returns_the_known_users_among_the_ids,
);

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";

fn name(raw: &str) -> Username {
    Username::parse(raw).expect("valid username")
}

fn roles(raw: &[&str]) -> Vec<RoleName> {
    raw.iter()
        .map(|r| RoleName::parse(r).expect("valid role name"))
        .collect()
}

fn set(permissions: &[Permission]) -> PermissionSet {
    permissions.iter().copied().collect()
}

async fn migrated(test_db: &TestDb) -> Db {
    let db = Db::connect(&test_db.url).expect("connect");
    db.run_migrations().await.expect("migrations");
    db
}

async fn migrations_apply_once_and_then_have_nothing_to_do(test_db: &TestDb) {
    let db = Db::connect(&test_db.url).expect("connect");
    let first = db.run_migrations().await.expect("first run");
    assert!(!first.is_empty(), "a fresh database has pending migrations");
    let second = db.run_migrations().await.expect("second run");
    assert!(second.is_empty(), "nothing left to apply: {second:?}");
    db.ping().await.expect("ping");
    assert_eq!(db.count_users().await.expect("count"), 0);
}

async fn seeded_roles_grant_their_permissions(test_db: &TestDb) {
    let db = migrated(test_db).await;
    let cases = [
        ("admin", set(&Permission::ALL)),
        ("user", set(&[Permission::ChatRead, Permission::ChatWrite])),
        ("messages-admin", set(&[Permission::ReadAdminMessages])),
    ];
    for (role, expected) in cases {
        let user = db
            .create_user(&name(&format!("holds-{role}")), HASH, &roles(&[role]))
            .await
            .expect("create");
        assert_eq!(user.roles, vec![role.to_owned()]);
        assert_eq!(user.permissions, expected, "role {role}");
    }
    let both = db
        .create_user(&name("both"), HASH, &roles(&["user", "messages-admin"]))
        .await
        .expect("create");
    assert_eq!(
        both.roles,
        vec!["messages-admin", "user"],
        "roles are sorted"
    );
    assert_eq!(
        both.permissions,
        set(&[
            Permission::ChatRead,
            Permission::ChatWrite,
            Permission::ReadAdminMessages
        ])
    );
}

async fn created_users_can_be_found_by_id_by_name_and_in_the_list(test_db: &TestDb) {
    let db = migrated(test_db).await;
    let bob = db
        .create_user(&name("bob"), HASH, &roles(&["user"]))
        .await
        .expect("create bob");
    let alice = db
        .create_user(&name("alice"), HASH, &[])
        .await
        .expect("create alice");
    assert_eq!(bob.id.get_version_num(), 4);
    assert!(!bob.disabled);
    assert_eq!(bob.created_at, bob.updated_at);
    assert!(alice.roles.is_empty());
    assert_eq!(alice.permissions, PermissionSet::EMPTY);

    assert_eq!(db.find_user(bob.id).await.expect("find"), Some(bob.clone()));
    assert_eq!(
        db.find_user_by_username(&name("bob")).await.expect("find"),
        Some(bob.clone())
    );
    assert_eq!(db.find_user(Uuid::new_v4()).await.expect("find"), None);
    assert_eq!(
        db.find_user_by_username(&name("carol"))
            .await
            .expect("find"),
        None
    );

    let listed = db.list_users().await.expect("list");
    assert_eq!(listed, vec![alice, bob], "ordered by username");
    assert_eq!(db.count_users().await.expect("count"), 2);
}

async fn a_taken_username_is_refused(test_db: &TestDb) {
    let db = migrated(test_db).await;
    db.create_user(&name("alice"), HASH, &roles(&["user"]))
        .await
        .expect("first");
    let again = db
        .create_user(&name("alice"), HASH, &roles(&["admin"]))
        .await;
    assert!(matches!(again, Err(DbError::UsernameTaken)), "{again:?}");
    assert_eq!(db.count_users().await.expect("count"), 1);
}

async fn an_unknown_role_is_refused_and_nothing_is_written(test_db: &TestDb) {
    let db = migrated(test_db).await;
    let result = db
        .create_user(&name("alice"), HASH, &roles(&["user", "wizard"]))
        .await;
    assert!(
        matches!(&result, Err(DbError::UnknownRole(r)) if r == "wizard"),
        "{result:?}"
    );
    assert_eq!(db.count_users().await.expect("count"), 0);
    assert_eq!(
        db.find_user_by_username(&name("alice"))
            .await
            .expect("find"),
        None
    );
}

async fn set_roles_replaces_the_roles_and_so_the_permissions(test_db: &TestDb) {
    let db = migrated(test_db).await;
    let user = db
        .create_user(&name("alice"), HASH, &roles(&["user"]))
        .await
        .expect("create");

    let admin = db
        .set_roles(user.id, &roles(&["admin"]))
        .await
        .expect("set roles");
    assert_eq!(admin.roles, vec!["admin"]);
    assert_eq!(admin.permissions, set(&Permission::ALL));
    assert!(admin.updated_at >= user.updated_at);
    assert_eq!(admin.created_at, user.created_at);

    let refused = db
        .set_roles(user.id, &roles(&["messages-admin", "nope"]))
        .await;
    assert!(
        matches!(&refused, Err(DbError::UnknownRole(r)) if r == "nope"),
        "{refused:?}"
    );
    let unchanged = db.find_user(user.id).await.expect("find").expect("exists");
    assert_eq!(
        unchanged.roles,
        vec!["admin"],
        "a refused change changes nothing"
    );

    // Nobody else holds admin:users: the store keeps it (admin_guard_rails.rs).
    let refused = db.set_roles(user.id, &[]).await;
    assert!(
        matches!(refused, Err(DbError::LastAdministrator)),
        "{refused:?}"
    );
    db.create_user(&name("second-admin"), HASH, &roles(&["admin"]))
        .await
        .expect("create");
    let none = db.set_roles(user.id, &[]).await.expect("clear roles");
    assert!(none.roles.is_empty());
    assert_eq!(none.permissions, PermissionSet::EMPTY);

    let missing = db.set_roles(Uuid::new_v4(), &roles(&["user"])).await;
    assert!(matches!(missing, Err(DbError::NotFound)), "{missing:?}");
}

async fn set_disabled_marks_the_user_disabled(test_db: &TestDb) {
    let db = migrated(test_db).await;
    let user = db
        .create_user(&name("alice"), HASH, &roles(&["user"]))
        .await
        .expect("create");
    let disabled = db.set_disabled(user.id, true).await.expect("disable");
    assert!(disabled.disabled);
    assert_eq!(disabled.roles, user.roles, "roles survive");
    let credentials = db
        .find_credentials(&name("alice"))
        .await
        .expect("credentials")
        .expect("exists");
    assert!(credentials.disabled);
    let enabled = db.set_disabled(user.id, false).await.expect("enable");
    assert!(!enabled.disabled);
    let missing = db.set_disabled(Uuid::new_v4(), true).await;
    assert!(matches!(missing, Err(DbError::NotFound)), "{missing:?}");
}

async fn find_credentials_returns_the_stored_password_hash(test_db: &TestDb) {
    let db = migrated(test_db).await;
    let user = db
        .create_user(&name("alice"), HASH, &[])
        .await
        .expect("create");
    let credentials = db
        .find_credentials(&name("alice"))
        .await
        .expect("credentials")
        .expect("exists");
    assert_eq!(credentials.user_id, user.id);
    assert_eq!(credentials.password_hash, HASH);
    assert!(!credentials.disabled);

    let new_hash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA";
    db.set_password_hash(user.id, new_hash)
        .await
        .expect("set hash");
    let changed = db
        .find_credentials(&name("alice"))
        .await
        .expect("credentials")
        .expect("exists");
    assert_eq!(changed.password_hash, new_hash);

    assert!(db
        .find_credentials(&name("nobody"))
        .await
        .expect("credentials")
        .is_none());
    let missing = db.set_password_hash(Uuid::new_v4(), new_hash).await;
    assert!(matches!(missing, Err(DbError::NotFound)), "{missing:?}");
}

async fn find_users_returns_the_known_users_among_the_ids(test_db: &TestDb) {
    let db = migrated(test_db).await;
    let mut created = Vec::new();
    for (user, role) in [
        ("carol", "user"),
        ("alice", "admin"),
        ("bob", "messages-admin"),
    ] {
        created.push(
            db.create_user(&name(user), HASH, &roles(&[role]))
                .await
                .expect("create"),
        );
    }
    let (carol, alice) = (&created[0], &created[1]);
    let found = db
        .find_users(&[carol.id, Uuid::new_v4(), alice.id, carol.id])
        .await
        .expect("find users");
    assert_eq!(found, vec![alice.clone(), carol.clone()]);
    assert!(db.find_users(&[]).await.expect("empty").is_empty());
}

#[tokio::test]
async fn connecting_to_an_unreachable_postgres_is_unavailable_within_seconds() {
    let started = Instant::now();
    let result = Db::connect("postgres://postgres@127.0.0.1:1/tether");
    assert!(
        matches!(result, Err(DbError::Unavailable(_))),
        "{:?}",
        result.err()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn the_backend_is_chosen_by_the_url() {
    for url in [
        "postgres://u@h/db",
        "postgresql://u:p@h:5432/db?sslmode=disable",
    ] {
        assert_eq!(Backend::from_url(url), Ok(Backend::Postgres), "{url}");
    }
    for url in [
        "sqlite://tether.db",
        "sqlite:///var/lib/tether/tether.db",
        "sqlite:tether.db",
        "file:tether.db",
        "tether.db",
        "/var/lib/tether/tether.db",
    ] {
        assert_eq!(Backend::from_url(url), Ok(Backend::Sqlite), "{url}");
    }
}

#[test]
fn other_database_urls_are_refused_with_a_reason() {
    let err = Backend::from_url("mysql://root:secret@h/db").expect_err("mysql is refused");
    assert!(err.contains("mysql"), "{err}");
    assert!(
        !err.contains("secret"),
        "the URL's password stays out: {err}"
    );
    assert!(Backend::from_url("").is_err());
    assert!(Backend::from_url("sqlite://").is_err());
}

#[test]
fn connect_reports_which_backend_it_chose() {
    let test_db = TestDb::sqlite();
    let db = Db::connect(&test_db.url).expect("connect");
    assert_eq!(db.backend(), Backend::Sqlite);
}
