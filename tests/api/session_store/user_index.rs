//! The per-user index: a user's sessions are listed and deleted together,
//! without scanning, and the index does not collect dead entries.

use std::{collections::HashSet, time::Duration};

use tether::sessions::backend::SessionBackend;
use uuid::Uuid;

use super::{create, new_sid, now_ms, session, Store, LIFETIME_MS};

async fn user_sessions_are_listed_per_user<B: SessionBackend + Clone>(store: Store<B>) {
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let alice_sids: HashSet<String> = [
        create(&store.backend, Some(alice), LIFETIME_MS).await,
        create(&store.backend, Some(alice), LIFETIME_MS).await,
    ]
    .into();
    let bob_sid = create(&store.backend, Some(bob), LIFETIME_MS).await;
    create(&store.backend, None, LIFETIME_MS).await;

    let listed = store
        .backend
        .list_user_sessions(alice, now_ms())
        .await
        .unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|(sid, _)| sid.clone())
            .collect::<HashSet<_>>(),
        alice_sids
    );
    assert!(listed.iter().all(|(_, s)| s.user_id == Some(alice)));
    let listed = store
        .backend
        .list_user_sessions(bob, now_ms())
        .await
        .unwrap();
    assert_eq!(
        listed.into_iter().map(|(sid, _)| sid).collect::<Vec<_>>(),
        [bob_sid]
    );
}

async fn deleting_a_users_sessions_spares_everyone_else<B: SessionBackend + Clone>(
    store: Store<B>,
) {
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let mut alice_sids = vec![
        create(&store.backend, Some(alice), LIFETIME_MS).await,
        create(&store.backend, Some(alice), LIFETIME_MS).await,
    ];
    let bob_sid = create(&store.backend, Some(bob), LIFETIME_MS).await;
    let anonymous_sid = create(&store.backend, None, LIFETIME_MS).await;

    let mut deleted = store
        .backend
        .delete_user_sessions(alice, "disabled")
        .await
        .unwrap();
    deleted.sort();
    alice_sids.sort();
    assert_eq!(deleted, alice_sids);
    for sid in &alice_sids {
        store.assert_nothing_stored(sid).await;
    }
    assert!(store
        .backend
        .list_user_sessions(alice, now_ms())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.raw_index(alice),
        store.redis.as_ref().map(|_| HashSet::new())
    );
    for sid in [&bob_sid, &anonymous_sid] {
        assert!(store.backend.load(sid, now_ms()).await.unwrap().is_some());
    }
    assert_eq!(
        store
            .backend
            .list_user_sessions(bob, now_ms())
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .backend
        .delete_user_sessions(alice, "disabled")
        .await
        .unwrap()
        .is_empty());
}

async fn a_deleted_session_leaves_its_users_index<B: SessionBackend + Clone>(store: Store<B>) {
    let user = Uuid::new_v4();
    let sid = create(&store.backend, Some(user), LIFETIME_MS).await;
    let kept = create(&store.backend, Some(user), LIFETIME_MS).await;
    assert!(store.backend.delete(&sid, "logout").await.unwrap());
    if let Some(index) = store.raw_index(user) {
        assert_eq!(index, HashSet::from([kept.clone()]));
    }
    let listed = store
        .backend
        .list_user_sessions(user, now_ms())
        .await
        .unwrap();
    assert_eq!(
        listed.into_iter().map(|(sid, _)| sid).collect::<Vec<_>>(),
        [kept]
    );
}

async fn expired_sessions_are_pruned_from_the_users_index<B: SessionBackend + Clone>(
    store: Store<B>,
) {
    let user = Uuid::new_v4();
    let short_lived = create(&store.backend, Some(user), 200).await;
    let idle = new_sid();
    let new = session(Some(user), LIFETIME_MS);
    store
        .backend
        .create(&idle, new, 200, now_ms())
        .await
        .unwrap();
    let alive = create(&store.backend, Some(user), LIFETIME_MS).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A create prunes members past their deadline.
    let later = create(&store.backend, Some(user), LIFETIME_MS).await;
    if let Some(index) = store.raw_index(user) {
        assert!(
            !index.contains(&short_lived),
            "past its deadline, still indexed"
        );
    }
    // A list drops members whose session is gone for any reason.
    let listed = store
        .backend
        .list_user_sessions(user, now_ms())
        .await
        .unwrap();
    let listed: HashSet<String> = listed.into_iter().map(|(sid, _)| sid).collect();
    assert_eq!(listed, HashSet::from([alive.clone(), later.clone()]));
    if let Some(index) = store.raw_index(user) {
        assert_eq!(index, HashSet::from([alive, later]));
    }
}

/// Sign-ins racing "delete every session of this user": whatever the
/// interleaving, no session can end up outside its user's index, so a
/// second revoke-all, after the race, leaves none alive. (With the index
/// entry written before the hash, a sign-in indexed just before the first
/// revoke took the index, and stored just after it deleted what it named,
/// would survive both.)
async fn no_sign_in_racing_a_revoke_all_escapes_the_next_one<
    B: SessionBackend + Clone + 'static,
>(
    store: Store<B>,
) {
    let user = Uuid::new_v4();
    let mut created = Vec::new();
    for _round in 0..10 {
        let sign_ins: Vec<_> = (0..20)
            .map(|_| {
                let backend = store.backend.clone();
                tokio::spawn(async move { create(&backend, Some(user), LIFETIME_MS).await })
            })
            .collect();
        let backend = store.backend.clone();
        let revoke =
            tokio::spawn(
                async move { backend.delete_user_sessions(user, "password_changed").await },
            );
        for sign_in in sign_ins {
            created.push(sign_in.await.unwrap());
        }
        revoke.await.unwrap().unwrap();
    }
    store
        .backend
        .delete_user_sessions(user, "password_changed")
        .await
        .unwrap();
    for sid in &created {
        let alive = store.backend.load(sid, now_ms()).await.unwrap();
        assert!(alive.is_none(), "session {sid} escaped two revoke-alls");
    }
}

conformance!(
    no_sign_in_racing_a_revoke_all_escapes_the_next_one,
    user_sessions_are_listed_per_user,
    deleting_a_users_sessions_spares_everyone_else,
    a_deleted_session_leaves_its_users_index,
    expired_sessions_are_pruned_from_the_users_index,
);
