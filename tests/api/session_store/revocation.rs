//! What revocation relies on: a tombstone saying why a session was deleted
//! (for instances that learn of it from a keyspace notification), and a
//! batched check of which sessions still exist (the re-validation sweep).

use std::time::Duration;

use tether::sessions::backend::{SessionBackend, TOMBSTONE_TTL_MS};
use uuid::Uuid;

use super::{create, new_sid, now_ms, session, Store, LIFETIME_MS};

async fn delete_leaves_the_reason_the_session_ended<B: SessionBackend + Clone>(store: Store<B>) {
    let sid = create(&store.backend, Some(Uuid::new_v4()), LIFETIME_MS).await;
    assert_eq!(store.backend.ended_reason(&sid).await.unwrap(), None);

    assert!(store.backend.delete(&sid, "admin").await.unwrap());
    let reason = store.backend.ended_reason(&sid).await.unwrap();
    assert_eq!(reason.as_deref(), Some("admin"));
    if let Some(redis) = &store.redis {
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg(format!("{}ended:{{{sid}}}", redis.prefix))
            .query(&mut redis.raw_connection())
            .unwrap();
        assert!(
            ttl > TOMBSTONE_TTL_MS - 5_000 && ttl <= TOMBSTONE_TTL_MS,
            "tombstone PTTL {ttl}"
        );
    }
}

async fn only_a_session_that_existed_leaves_a_tombstone<B: SessionBackend + Clone>(
    store: Store<B>,
) {
    let unknown = new_sid();
    assert!(!store.backend.delete(&unknown, "admin").await.unwrap());
    assert_eq!(store.backend.ended_reason(&unknown).await.unwrap(), None);

    // A second delete finds nothing, so the first reason stands.
    let sid = create(&store.backend, None, LIFETIME_MS).await;
    assert!(store.backend.delete(&sid, "logout").await.unwrap());
    assert!(!store.backend.delete(&sid, "admin").await.unwrap());
    let reason = store.backend.ended_reason(&sid).await.unwrap();
    assert_eq!(reason.as_deref(), Some("logout"));
    if let Some(redis) = &store.redis {
        let tombstones: Vec<String> = redis
            .keys()
            .into_iter()
            .filter(|key| key.contains("ended:"))
            .collect();
        assert_eq!(tombstones, [format!("{}ended:{{{sid}}}", redis.prefix)]);
    }
}

async fn a_session_ended_without_the_store_has_no_reason<B: SessionBackend + Clone>(
    store: Store<B>,
) {
    if store.redis.is_some() {
        let sid = create(&store.backend, None, LIFETIME_MS).await;
        store.delete_behind_the_back(&sid).await;
        assert_eq!(store.backend.ended_reason(&sid).await.unwrap(), None);
    }
    let sid = new_sid();
    let new = session(None, LIFETIME_MS);
    store
        .backend
        .create(&sid, new, 100, now_ms())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.backend.ended_reason(&sid).await.unwrap(), None);
}

async fn deleting_a_users_sessions_tombstones_each<B: SessionBackend + Clone>(store: Store<B>) {
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let alices = [
        create(&store.backend, Some(alice), LIFETIME_MS).await,
        create(&store.backend, Some(alice), LIFETIME_MS).await,
    ];
    let bobs = create(&store.backend, Some(bob), LIFETIME_MS).await;

    let deleted = store.backend.delete_user_sessions(alice, "disabled").await;
    assert_eq!(deleted.unwrap().len(), 2);
    for sid in &alices {
        let reason = store.backend.ended_reason(sid).await.unwrap();
        assert_eq!(reason.as_deref(), Some("disabled"), "tombstone of {sid}");
    }
    assert_eq!(store.backend.ended_reason(&bobs).await.unwrap(), None);
    if let Some(index) = store.raw_global_index() {
        assert_eq!(
            index,
            [bobs].into(),
            "deleted sessions left in the global index"
        );
    }
}

async fn existing_tells_live_sessions_from_deleted_and_expired_ones<B: SessionBackend + Clone>(
    store: Store<B>,
) {
    let live = create(&store.backend, Some(Uuid::new_v4()), LIFETIME_MS).await;
    let deleted = create(&store.backend, None, LIFETIME_MS).await;
    assert!(store.backend.delete(&deleted, "logout").await.unwrap());
    let behind_the_back = create(&store.backend, None, LIFETIME_MS).await;
    store.delete_behind_the_back(&behind_the_back).await;
    let idle = new_sid();
    let new = session(None, LIFETIME_MS);
    store
        .backend
        .create(&idle, new, 100, now_ms())
        .await
        .unwrap();
    let short_lived = create(&store.backend, None, 5_000).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let sids = [
        live,
        deleted,
        behind_the_back,
        idle,
        new_sid(),
        short_lived.clone(),
    ];
    let existing = store.backend.existing(&sids, now_ms()).await.unwrap();
    assert_eq!(existing, [true, false, false, false, false, true]);

    // Judged by `now_ms`, like every read: past its deadline, it is gone.
    let deadline = store.backend.load(&short_lived, now_ms()).await.unwrap();
    let deadline = deadline.unwrap().absolute_deadline_ms;
    let existing = store.backend.existing(&[short_lived], deadline).await;
    assert_eq!(existing.unwrap(), [false]);
    assert!(store
        .backend
        .existing(&[], now_ms())
        .await
        .unwrap()
        .is_empty());
}

async fn existing_answers_in_order_over_many_batches<B: SessionBackend + Clone>(store: Store<B>) {
    let live = [
        create(&store.backend, None, LIFETIME_MS).await,
        create(&store.backend, None, LIFETIME_MS).await,
        create(&store.backend, None, LIFETIME_MS).await,
    ];
    // Live sessions at the start, across the 1000-key batch boundary, and at the end.
    let mut sids: Vec<String> = (0..2_500).map(|_| new_sid()).collect();
    let positions = [0, 1_000, 2_499];
    for (position, sid) in positions.iter().zip(&live) {
        sids[*position] = sid.clone();
    }
    let existing = store.backend.existing(&sids, now_ms()).await.unwrap();
    assert_eq!(existing.len(), sids.len());
    let found: Vec<usize> = (0..existing.len()).filter(|&i| existing[i]).collect();
    assert_eq!(found, positions);
}

conformance!(
    delete_leaves_the_reason_the_session_ended,
    only_a_session_that_existed_leaves_a_tombstone,
    a_session_ended_without_the_store_has_no_reason,
    deleting_a_users_sessions_tombstones_each,
    existing_tells_live_sessions_from_deleted_and_expired_ones,
    existing_answers_in_order_over_many_batches,
);
