//! The start-up lock's contract (`Db::startup_lock`), on both backends: one
//! holder at a time per database, a bounded wait that names the lock, work
//! done under it kept on release, and no lock outliving a holder that fails.
//! Each `Db::connect` below has connections of its own, as another process would.

use std::time::Duration;

use tether::db::{Db, StartupLock};
use tether::domain::{RoleName, Username};

use crate::helpers::PATIENCE;
use crate::test_db::TestDb;

/// Declares each case as `sqlite::<case>` and `postgres::<case>` tests.
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(&crate::test_db::TestDb::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let name = concat!("startup_lock::postgres::", stringify!($case));
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
    a_second_holder_gives_up_naming_the_lock_until_the_first_releases_it,
    a_lock_dropped_without_release_is_released,
    work_done_under_the_lock_is_kept_on_release,
    a_handle_that_holds_the_lock_takes_it_again_at_once,
);

/// How long a contender waits in these tests before giving up: the lock is
/// held throughout, so any bound shows the give-up path.
const SHORT_WAIT: Duration = Duration::from_millis(300);

async fn migrated(test_db: &TestDb) -> Db {
    let db = Db::connect(&test_db.url).expect("connect");
    db.run_migrations().await.expect("migrations");
    db
}

/// `Some(error text)` if `db` cannot take the lock within `SHORT_WAIT`.
async fn refused(db: &Db) -> Option<String> {
    match db.startup_lock_within(SHORT_WAIT).await {
        Ok(lock) => {
            lock.release().await.expect("release");
            None
        }
        Err(e) => Some(format!("{e:#}")),
    }
}

async fn taken_within_patience(db: &Db) -> StartupLock {
    db.startup_lock_within(PATIENCE)
        .await
        .expect("the lock is free again")
}

async fn a_second_holder_gives_up_naming_the_lock_until_the_first_releases_it(test_db: &TestDb) {
    let first = migrated(test_db).await;
    let second = Db::connect(&test_db.url).expect("connect");
    let held = first.startup_lock().await.expect("lock");
    let error = refused(&second).await.expect("held elsewhere: refused");
    assert!(error.contains("start-up lock"), "{error}");
    held.release().await.expect("release");
    taken_within_patience(&second)
        .await
        .release()
        .await
        .expect("release");
}

async fn a_lock_dropped_without_release_is_released(test_db: &TestDb) {
    let first = migrated(test_db).await;
    let second = Db::connect(&test_db.url).expect("connect");
    let held = first.startup_lock().await.expect("lock");
    assert!(refused(&second).await.is_some());
    // As when the holder's work fails with `?`: its connection closes.
    drop(held);
    taken_within_patience(&second)
        .await
        .release()
        .await
        .expect("release");
}

async fn work_done_under_the_lock_is_kept_on_release(test_db: &TestDb) {
    let db = migrated(test_db).await;
    let lock = db.startup_lock().await.expect("lock");
    let lent: Db = lock.clone();
    lock.create_user(
        &Username::parse("olga").unwrap(),
        "not-a-real-hash",
        &[RoleName::parse("user").unwrap()],
    )
    .await
    .expect("create under the lock");
    lock.release().await.expect("release");

    let elsewhere = Db::connect(&test_db.url).expect("connect");
    let olga = elsewhere
        .find_user_by_username(&Username::parse("olga").unwrap())
        .await
        .expect("query");
    assert_eq!(olga.map(|u| u.roles), Some(vec!["user".to_owned()]));
    // A handle lent out by the lock does not outlive it.
    assert!(lent.count_users().await.is_err());
}

async fn a_handle_that_holds_the_lock_takes_it_again_at_once(test_db: &TestDb) {
    let db = migrated(test_db).await;
    let other = Db::connect(&test_db.url).expect("connect");
    let outer = db.startup_lock().await.expect("lock");
    // Migrating through the holding handle takes the lock again, nested.
    let applied = outer.run_migrations().await.expect("nested migrations");
    assert!(applied.is_empty(), "{applied:?}");
    // Releasing the nested lock left the outer one held.
    assert!(refused(&other).await.is_some());
    outer.release().await.expect("release");
    taken_within_patience(&other)
        .await
        .release()
        .await
        .expect("release");
}
