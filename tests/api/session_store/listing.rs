//! Listing sessions for the admin screens and the CLI: every session or one
//! user's, newest first, a page at a time, with dead entries dropped.

use std::{collections::HashSet, time::Duration};

use tether::sessions::backend::{SessionBackend, SessionPage};
use uuid::Uuid;

use super::{new_sid, now_ms, session_created_at, Store, IDLE_MS, LIFETIME_MS};

/// Creates one session per owner, each created 1 ms after the one before
/// (so each has its own deadline); returns the sids, oldest first.
async fn create_in_order<B: SessionBackend>(store: &B, owners: &[Option<Uuid>]) -> Vec<String> {
    let base = now_ms();
    let mut sids = Vec::with_capacity(owners.len());
    for (i, &owner) in owners.iter().enumerate() {
        let sid = new_sid();
        let new = session_created_at(owner, base + i as i64, LIFETIME_MS);
        store.create(&sid, new, IDLE_MS, now_ms()).await.unwrap();
        sids.push(sid);
    }
    sids
}

fn sids_of(page: &SessionPage) -> Vec<String> {
    page.sessions.iter().map(|(sid, _)| sid.clone()).collect()
}

fn newest_first(sids: &[String]) -> Vec<String> {
    sids.iter().rev().cloned().collect()
}

async fn every_session_is_listed_newest_first<B: SessionBackend + Clone>(store: Store<B>) {
    let (alice, bob) = (Some(Uuid::new_v4()), Some(Uuid::new_v4()));
    let sids = create_in_order(&store.backend, &[alice, bob, None, alice, bob]).await;

    let page = store.backend.list_sessions(None, 0, 10, now_ms()).await;
    let page = page.unwrap();
    assert_eq!(page.total, 5);
    assert_eq!(sids_of(&page), newest_first(&sids));
    let (_, newest) = &page.sessions[0];
    assert_eq!(newest.user_id, bob);
    assert_eq!(newest.client_ip.as_deref(), Some("203.0.113.7"));
}

async fn pages_follow_offset_and_limit<B: SessionBackend + Clone>(store: Store<B>) {
    let owners = [None; 7];
    let all = newest_first(&create_in_order(&store.backend, &owners).await);

    for (offset, expected) in [
        (0, &all[0..3]),
        (3, &all[3..6]),
        (6, &all[6..]),
        (9, &[][..]),
    ] {
        let page = store.backend.list_sessions(None, offset, 3, now_ms()).await;
        let page = page.unwrap();
        assert_eq!(page.total, 7, "total at offset {offset}");
        assert_eq!(sids_of(&page), expected, "page at offset {offset}");
    }
    let empty = store.backend.list_sessions(None, 0, 0, now_ms()).await;
    let empty = empty.unwrap();
    assert_eq!((empty.total, empty.sessions.len()), (7, 0));
}

async fn a_users_listing_holds_only_that_users_sessions<B: SessionBackend + Clone>(
    store: Store<B>,
) {
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let owners = [Some(alice), Some(bob), Some(alice), None, Some(alice)];
    let sids = create_in_order(&store.backend, &owners).await;
    let alices = newest_first(&[sids[0].clone(), sids[2].clone(), sids[4].clone()]);

    let page = store
        .backend
        .list_sessions(Some(alice), 0, 10, now_ms())
        .await;
    let page = page.unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(sids_of(&page), alices);
    assert!(page.sessions.iter().all(|(_, s)| s.user_id == Some(alice)));

    let page = store
        .backend
        .list_sessions(Some(alice), 1, 1, now_ms())
        .await;
    let page = page.unwrap();
    assert_eq!((page.total, sids_of(&page)), (3, vec![alices[1].clone()]));

    let nobody = store
        .backend
        .list_sessions(Some(Uuid::new_v4()), 0, 10, now_ms());
    assert_eq!(
        nobody.await.unwrap(),
        SessionPage {
            total: 0,
            sessions: Vec::new()
        }
    );
}

async fn listing_drops_expired_and_deleted_sessions<B: SessionBackend + Clone>(store: Store<B>) {
    let user = Uuid::new_v4();
    let now = now_ms();
    let short_lived = new_sid();
    let new = session_created_at(Some(user), now, 200);
    store
        .backend
        .create(&short_lived, new, IDLE_MS, now)
        .await
        .unwrap();
    let idle = new_sid();
    let new = session_created_at(Some(user), now, LIFETIME_MS);
    store.backend.create(&idle, new, 200, now).await.unwrap();
    let sids = create_in_order(&store.backend, &[Some(user); 4]).await;
    let (kept_a, deleted, kept_b, behind_the_back) = (&sids[0], &sids[1], &sids[2], &sids[3]);
    assert!(store.backend.delete(deleted, "admin").await.unwrap());
    store.delete_behind_the_back(behind_the_back).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The newest entry is gone: the page is refilled from further down.
    let page = store.backend.list_sessions(None, 0, 2, now_ms()).await;
    assert_eq!(sids_of(&page.unwrap()), [kept_b.clone(), kept_a.clone()]);
    // A listing that reaches every entry counts exactly the live ones.
    let page = store.backend.list_sessions(None, 0, 10, now_ms()).await;
    let page = page.unwrap();
    assert_eq!(sids_of(&page), [kept_b.clone(), kept_a.clone()]);
    assert_eq!(page.total, 2);
    let live = HashSet::from([kept_a.clone(), kept_b.clone()]);
    if let Some(index) = store.raw_global_index() {
        assert_eq!(index, live, "dead entries left in the global index");
    }

    let page = store
        .backend
        .list_sessions(Some(user), 0, 10, now_ms())
        .await;
    let page = page.unwrap();
    assert_eq!(sids_of(&page), [kept_b.clone(), kept_a.clone()]);
    assert_eq!(page.total, 2);
    if let Some(index) = store.raw_index(user) {
        assert_eq!(index, live, "dead entries left in the user's index");
    }
}

async fn a_users_listing_prunes_the_global_index_too<B: SessionBackend + Clone>(store: Store<B>) {
    let user = Uuid::new_v4();
    let sids = create_in_order(&store.backend, &[Some(user), Some(user)]).await;
    store.delete_behind_the_back(&sids[1]).await;

    let page = store
        .backend
        .list_sessions(Some(user), 0, 10, now_ms())
        .await;
    assert_eq!(sids_of(&page.unwrap()), [sids[0].clone()]);
    if let Some(index) = store.raw_global_index() {
        assert_eq!(index, HashSet::from([sids[0].clone()]));
    }
}

conformance!(
    every_session_is_listed_newest_first,
    pages_follow_offset_and_limit,
    a_users_listing_holds_only_that_users_sessions,
    listing_drops_expired_and_deleted_sessions,
    a_users_listing_prunes_the_global_index_too,
);
