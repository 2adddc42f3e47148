//! A session's life: created, read, renewed, deleted, expired; and the
//! guarantee that no write brings a deleted session back.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use tether::sessions::backend::{
    memory::PURGE_EVERY_CREATES, MemoryBackend, SessionBackend, MAX_CLIENT_FIELD_CHARS,
};
use uuid::Uuid;

use super::{
    create, new_sid, now_ms, session, session_created_at, state, Store, IDLE_MS, LIFETIME_MS,
};

async fn created_session_loads_back_as_stored<B: SessionBackend + Clone>(store: Store<B>) {
    let user = Uuid::new_v4();
    let sid = new_sid();
    let new = session(Some(user), LIFETIME_MS);
    let now = now_ms();
    store
        .backend
        .create(&sid, new.clone(), IDLE_MS, now)
        .await
        .unwrap();

    let loaded = store
        .backend
        .load(&sid, now)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(loaded.state, new.state);
    assert_eq!(loaded.user_id, Some(user));
    assert_eq!(loaded.created_at_ms, new.created_at_ms);
    assert_eq!(loaded.absolute_deadline_ms, new.absolute_deadline_ms);
    assert!(loaded.expires_at_ms > now + IDLE_MS - 1_000 && loaded.expires_at_ms <= now + IDLE_MS);
}

async fn unknown_sid_loads_as_none<B: SessionBackend + Clone>(store: Store<B>) {
    assert_eq!(
        store.backend.load(&new_sid(), now_ms()).await.unwrap(),
        None
    );
}

async fn update_state_replaces_the_state<B: SessionBackend + Clone>(store: Store<B>) {
    let sid = create(&store.backend, None, LIFETIME_MS).await;
    let updated = state(&[("user", "\"bob\""), ("theme", "\"dark\"")]);
    let written = store
        .backend
        .update_state(&sid, updated.clone(), IDLE_MS, now_ms());
    assert!(written.await.unwrap());
    let loaded = store.backend.load(&sid, now_ms()).await.unwrap().unwrap();
    assert_eq!(loaded.state, updated);
}

async fn update_and_touch_on_a_deleted_session_write_nothing<B: SessionBackend + Clone>(
    store: Store<B>,
) {
    let sid = create(&store.backend, Some(Uuid::new_v4()), LIFETIME_MS).await;
    assert!(store.backend.delete(&sid, "logout").await.unwrap());
    assert!(
        !store.backend.delete(&sid, "logout").await.unwrap(),
        "deleted twice"
    );

    let update = store
        .backend
        .update_state(&sid, state(&[]), IDLE_MS, now_ms());
    assert!(!update.await.unwrap());
    assert_eq!(
        store.backend.touch(&sid, IDLE_MS, now_ms()).await.unwrap(),
        None
    );
    store.assert_nothing_stored(&sid).await;
}

async fn a_session_deleted_behind_the_stores_back_stays_deleted<B: SessionBackend + Clone>(
    store: Store<B>,
) {
    let sid = create(&store.backend, None, LIFETIME_MS).await;
    store.delete_behind_the_back(&sid).await;

    let update = store
        .backend
        .update_state(&sid, state(&[]), IDLE_MS, now_ms());
    assert!(!update.await.unwrap());
    assert_eq!(
        store.backend.touch(&sid, IDLE_MS, now_ms()).await.unwrap(),
        None
    );
    store.assert_nothing_stored(&sid).await;
}

async fn touch_never_extends_past_the_absolute_deadline<B: SessionBackend + Clone>(
    store: Store<B>,
) {
    let sid = create(&store.backend, None, 5_000).await;
    let deadline = store.backend.load(&sid, now_ms()).await.unwrap().unwrap();
    let deadline = deadline.absolute_deadline_ms;

    let now = now_ms();
    let expires = store.backend.touch(&sid, 100, now).await.unwrap();
    assert_eq!(expires, Some(now + 100), "a short idle TTL is kept");
    let expires = store.backend.touch(&sid, IDLE_MS, now_ms()).await.unwrap();
    assert_eq!(expires, Some(deadline), "a long idle TTL is clamped");
    let loaded = store.backend.load(&sid, now_ms()).await.unwrap().unwrap();
    assert!(loaded.expires_at_ms <= deadline);
}

async fn a_session_past_its_absolute_deadline_is_gone<B: SessionBackend + Clone>(store: Store<B>) {
    let sid = create(&store.backend, None, 10_000).await;
    let deadline = store.backend.load(&sid, now_ms()).await.unwrap().unwrap();
    let deadline = deadline.absolute_deadline_ms;
    assert_eq!(store.backend.load(&sid, deadline).await.unwrap(), None);
    assert_eq!(
        store.backend.touch(&sid, IDLE_MS, deadline).await.unwrap(),
        None
    );
    store.assert_nothing_stored(&sid).await;

    // And in real time, however active the session was.
    let sid = create(&store.backend, None, 300).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(store
        .backend
        .touch(&sid, IDLE_MS, now_ms())
        .await
        .unwrap()
        .is_some());
    tokio::time::sleep(Duration::from_millis(250)).await;
    store.assert_nothing_stored(&sid).await;
}

async fn a_session_dead_on_arrival_is_not_stored<B: SessionBackend + Clone>(store: Store<B>) {
    let sid = new_sid();
    let new = session(None, 0);
    store
        .backend
        .create(&sid, new, IDLE_MS, now_ms())
        .await
        .unwrap();
    store.assert_nothing_stored(&sid).await;
}

async fn an_idle_session_expires_after_its_idle_ttl<B: SessionBackend + Clone>(store: Store<B>) {
    let sid = new_sid();
    let new = session(None, LIFETIME_MS);
    store
        .backend
        .create(&sid, new, 300, now_ms())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(450)).await;
    store.assert_nothing_stored(&sid).await;
}

async fn touching_keeps_an_active_session_alive<B: SessionBackend + Clone>(store: Store<B>) {
    let sid = new_sid();
    let new = session(None, LIFETIME_MS);
    store
        .backend
        .create(&sid, new, 400, now_ms())
        .await
        .unwrap();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let touched = store.backend.touch(&sid, 400, now_ms()).await.unwrap();
        assert!(touched.is_some(), "expired while active");
    }
    assert!(store.backend.load(&sid, now_ms()).await.unwrap().is_some());
}

async fn writes_racing_a_delete_never_resurrect_the_session<B: SessionBackend + Clone>(
    store: Store<B>,
) {
    const WRITES: usize = 500;
    let sid = create(&store.backend, Some(Uuid::new_v4()), LIFETIME_MS).await;
    let deleted = Arc::new(AtomicBool::new(false));
    let mut writes = Vec::with_capacity(WRITES);
    let mut deletion = None;
    for i in 0..WRITES {
        if i == WRITES / 2 {
            let (backend, sid, deleted) = (store.backend.clone(), sid.clone(), deleted.clone());
            deletion = Some(tokio::spawn(async move {
                let existed = backend.delete(&sid, "logout").await.unwrap();
                deleted.store(true, Ordering::SeqCst);
                existed
            }));
        }
        let (backend, sid, deleted) = (store.backend.clone(), sid.clone(), deleted.clone());
        writes.push(tokio::spawn(async move {
            let after_delete = deleted.load(Ordering::SeqCst);
            let written = if i % 2 == 0 {
                let state = state(&[("n", &i.to_string())]);
                backend
                    .update_state(&sid, state, IDLE_MS, now_ms())
                    .await
                    .unwrap()
            } else {
                backend
                    .touch(&sid, IDLE_MS, now_ms())
                    .await
                    .unwrap()
                    .is_some()
            };
            assert!(
                !(after_delete && written),
                "write {i} landed after the delete"
            );
        }));
    }
    assert!(
        deletion.unwrap().await.unwrap(),
        "the session existed when deleted"
    );
    for write in writes {
        write.await.unwrap();
    }
    store.assert_nothing_stored(&sid).await;
    assert_eq!(store.raw_session_keys(), Vec::<String>::new());
}

async fn ping_answers<B: SessionBackend + Clone>(store: Store<B>) {
    store.backend.ping().await.unwrap();
}

async fn client_ip_user_agent_and_last_seen_load_back<B: SessionBackend + Clone>(store: Store<B>) {
    let sid = new_sid();
    let now = now_ms();
    let mut new = session(Some(Uuid::new_v4()), LIFETIME_MS);
    new.client_ip = Some("2001:db8::1".into());
    new.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64)".into());
    store.backend.create(&sid, new, IDLE_MS, now).await.unwrap();

    let loaded = store.backend.load(&sid, now).await.unwrap().unwrap();
    assert_eq!(loaded.client_ip.as_deref(), Some("2001:db8::1"));
    assert_eq!(
        loaded.user_agent.as_deref(),
        Some("Mozilla/5.0 (X11; Linux x86_64)")
    );
    assert_eq!(loaded.last_seen_ms, now, "creation is the first activity");
}

async fn unknown_client_ip_and_user_agent_load_back_as_none<B: SessionBackend + Clone>(
    store: Store<B>,
) {
    for unknown in [None, Some(String::new())] {
        let sid = new_sid();
        let mut new = session(None, LIFETIME_MS);
        new.client_ip = unknown.clone();
        new.user_agent = unknown;
        store
            .backend
            .create(&sid, new, IDLE_MS, now_ms())
            .await
            .unwrap();
        let loaded = store.backend.load(&sid, now_ms()).await.unwrap().unwrap();
        assert_eq!((loaded.client_ip, loaded.user_agent), (None, None));
    }
}

async fn over_long_client_ip_and_user_agent_are_cut_to_256_characters<B: SessionBackend + Clone>(
    store: Store<B>,
) {
    assert_eq!(MAX_CLIENT_FIELD_CHARS, 256);
    let sid = new_sid();
    let mut new = session(None, LIFETIME_MS);
    new.client_ip = Some("1".repeat(300));
    // Two bytes each: the cut counts characters and never splits one.
    new.user_agent = Some("é".repeat(300));
    store
        .backend
        .create(&sid, new, IDLE_MS, now_ms())
        .await
        .unwrap();

    let loaded = store.backend.load(&sid, now_ms()).await.unwrap().unwrap();
    assert_eq!(loaded.client_ip, Some("1".repeat(256)));
    assert_eq!(loaded.user_agent, Some("é".repeat(256)));
}

async fn touch_and_update_state_move_last_seen<B: SessionBackend + Clone>(store: Store<B>) {
    let sid = new_sid();
    let created = now_ms() - 10_000;
    let new = session_created_at(None, created, LIFETIME_MS);
    store
        .backend
        .create(&sid, new, IDLE_MS, created)
        .await
        .unwrap();
    let loaded = store.backend.load(&sid, created).await.unwrap().unwrap();
    assert_eq!(loaded.last_seen_ms, created);

    let touched_at = created + 4_000;
    let touched = store.backend.touch(&sid, IDLE_MS, touched_at).await;
    assert!(touched.unwrap().is_some());
    let loaded = store.backend.load(&sid, touched_at).await.unwrap().unwrap();
    assert_eq!(loaded.last_seen_ms, touched_at);
    assert_eq!(loaded.created_at_ms, created, "creation time never moves");

    let updated_at = created + 7_000;
    let updated = store
        .backend
        .update_state(&sid, state(&[("n", "1")]), IDLE_MS, updated_at);
    assert!(updated.await.unwrap());
    let loaded = store.backend.load(&sid, updated_at).await.unwrap().unwrap();
    assert_eq!(loaded.last_seen_ms, updated_at);
}

conformance!(
    created_session_loads_back_as_stored,
    unknown_sid_loads_as_none,
    update_state_replaces_the_state,
    update_and_touch_on_a_deleted_session_write_nothing,
    a_session_deleted_behind_the_stores_back_stays_deleted,
    touch_never_extends_past_the_absolute_deadline,
    a_session_past_its_absolute_deadline_is_gone,
    a_session_dead_on_arrival_is_not_stored,
    an_idle_session_expires_after_its_idle_ttl,
    touching_keeps_an_active_session_alive,
    writes_racing_a_delete_never_resurrect_the_session,
    ping_answers,
    client_ip_user_agent_and_last_seen_load_back,
    unknown_client_ip_and_user_agent_load_back_as_none,
    over_long_client_ip_and_user_agent_are_cut_to_256_characters,
    touch_and_update_state_move_last_seen,
);

#[tokio::test]
async fn memory_store_sweeps_abandoned_sessions() {
    let store = MemoryBackend::new();
    let start = now_ms();
    for _ in 0..PURGE_EVERY_CREATES / 2 {
        let new = session(None, LIFETIME_MS);
        store.create(&new_sid(), new, 10, start).await.unwrap();
    }
    for i in 0..PURGE_EVERY_CREATES {
        let new = session(None, LIFETIME_MS);
        store
            .create(&new_sid(), new, IDLE_MS, start + 1_000 + i as i64)
            .await
            .unwrap();
    }
    assert!(
        store.stored_count() <= PURGE_EVERY_CREATES as usize,
        "abandoned sessions piled up: {}",
        store.stored_count()
    );
}
