//! One conformance suite for every session store: each case below is a
//! generic async fn over [`SessionBackend`], run once against
//! [`MemoryBackend`] and once against [`RedisBackend`] (under a private key
//! prefix). For Redis, "nothing left behind" is checked on the raw keys.

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use tether::sessions::backend::{
    memory::PURGE_EVERY_CREATES, MemoryBackend, NewSession, RedisBackend, SessionBackend,
    SessionState, StoreError,
};
use uuid::Uuid;

use crate::test_redis::TestRedis;

const IDLE_MS: i64 = 60_000;
const LIFETIME_MS: i64 = 3_600_000;

/// A store under test, with raw access to Redis when it is the Redis store.
struct Store<B> {
    backend: B,
    redis: Option<TestRedis>,
}

impl<B: SessionBackend + Clone> Store<B> {
    /// Redis keys holding sessions under this test's prefix (none for memory).
    fn raw_session_keys(&self) -> Vec<String> {
        let Some(redis) = &self.redis else {
            return Vec::new();
        };
        redis
            .keys()
            .into_iter()
            .filter(|key| key.contains("session:"))
            .collect()
    }

    /// The members of a user's Redis index (`None` for memory).
    fn raw_index(&self, user_id: Uuid) -> Option<HashSet<String>> {
        let redis = self.redis.as_ref()?;
        let members: Vec<String> = ::redis::cmd("ZRANGE")
            .arg(format!("{}user:{user_id}:sessions", redis.prefix))
            .arg(0)
            .arg(-1)
            .query(&mut redis.raw_connection())
            .expect("ZRANGE the user index");
        Some(members.into_iter().collect())
    }

    /// Deletes a session the way an operator would (`redis-cli DEL`).
    async fn delete_behind_the_back(&self, sid: &str) {
        match &self.redis {
            Some(redis) => redis.delete_key(&format!("{}session:{sid}", redis.prefix)),
            None => assert!(self.backend.delete(sid).await.unwrap()),
        }
    }

    async fn assert_nothing_stored(&self, sid: &str) {
        assert_eq!(self.backend.load(sid, now_ms()).await.unwrap(), None);
        let raw: Vec<String> = self
            .raw_session_keys()
            .into_iter()
            .filter(|key| key.ends_with(sid))
            .collect();
        assert!(raw.is_empty(), "session written back to Redis: {raw:?}");
    }
}

fn memory_store() -> Store<MemoryBackend> {
    Store {
        backend: MemoryBackend::new(),
        redis: None,
    }
}

async fn redis_store(test_name: &str) -> Option<Store<RedisBackend>> {
    let redis = TestRedis::new(test_name).await?;
    let backend = RedisBackend::connect(&redis.url, &redis.prefix)
        .await
        .expect("connect the Redis session store");
    Some(Store {
        backend,
        redis: Some(redis),
    })
}

fn now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since_epoch.as_millis()).unwrap()
}

fn new_sid() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A session for `user_id`, created now, dying `lifetime_ms` from now.
fn session(user_id: Option<Uuid>, lifetime_ms: i64) -> NewSession {
    let now = now_ms();
    NewSession {
        state: state(&[("user", "\"alice\"")]),
        user_id,
        created_at_ms: now,
        absolute_deadline_ms: now + lifetime_ms,
    }
}

/// Creates a session and returns its sid.
async fn create<B: SessionBackend>(store: &B, user_id: Option<Uuid>, lifetime_ms: i64) -> String {
    let sid = new_sid();
    let new = session(user_id, lifetime_ms);
    store.create(&sid, new, IDLE_MS, now_ms()).await.unwrap();
    sid
}

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
    assert!(store.backend.delete(&sid).await.unwrap());
    assert!(!store.backend.delete(&sid).await.unwrap(), "deleted twice");

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

    let mut deleted = store.backend.delete_user_sessions(alice).await.unwrap();
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
        .delete_user_sessions(alice)
        .await
        .unwrap()
        .is_empty());
}

async fn a_deleted_session_leaves_its_users_index<B: SessionBackend + Clone>(store: Store<B>) {
    let user = Uuid::new_v4();
    let sid = create(&store.backend, Some(user), LIFETIME_MS).await;
    let kept = create(&store.backend, Some(user), LIFETIME_MS).await;
    assert!(store.backend.delete(&sid).await.unwrap());
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
                let existed = backend.delete(&sid).await.unwrap();
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

/// Runs every listed case against both stores, as `memory::<case>` and
/// `redis::<case>`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::memory_store()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let name = concat!("session_store::redis::", stringify!($case));
                    let Some(store) = super::redis_store(name).await else {
                        return;
                    };
                    super::$case(store).await;
                }
            )*
        }
    };
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
    user_sessions_are_listed_per_user,
    deleting_a_users_sessions_spares_everyone_else,
    a_deleted_session_leaves_its_users_index,
    expired_sessions_are_pruned_from_the_users_index,
    writes_racing_a_delete_never_resurrect_the_session,
    ping_answers,
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

#[tokio::test]
async fn redis_store_keys_follow_the_documented_layout() {
    let Some(store) =
        redis_store("session_store::redis_store_keys_follow_the_documented_layout").await
    else {
        return;
    };
    let redis = store.redis.as_ref().unwrap();
    let user = Uuid::new_v4();
    let sid = create(&store.backend, Some(user), LIFETIME_MS).await;
    let anonymous_sid = create(&store.backend, None, LIFETIME_MS).await;

    let session_key = format!("{}session:{sid}", redis.prefix);
    let index_key = format!("{}user:{user}:sessions", redis.prefix);
    let mut expected = vec![
        session_key.clone(),
        format!("{}session:{anonymous_sid}", redis.prefix),
        index_key.clone(),
    ];
    expected.sort();
    assert_eq!(redis.keys(), expected);

    let mut raw = redis.raw_connection();
    let fields: Vec<String> = ::redis::cmd("HKEYS")
        .arg(&session_key)
        .query(&mut raw)
        .unwrap();
    let fields: HashSet<&str> = fields.iter().map(String::as_str).collect();
    assert_eq!(
        fields,
        HashSet::from(["state", "uid", "created", "abs", "seen"])
    );
    let ttl: i64 = ::redis::cmd("PTTL")
        .arg(&session_key)
        .query(&mut raw)
        .unwrap();
    assert!(ttl > 0 && ttl <= IDLE_MS, "session PTTL {ttl}");
    let ttl: i64 = ::redis::cmd("PTTL")
        .arg(&index_key)
        .query(&mut raw)
        .unwrap();
    assert!(
        ttl > LIFETIME_MS - 5_000 && ttl <= LIFETIME_MS,
        "index PTTL {ttl}"
    );
}

#[tokio::test]
async fn unreachable_redis_is_unavailable_promptly() {
    let started = Instant::now();
    let result = RedisBackend::connect("redis://127.0.0.1:1", "tether-test:unreachable:").await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "expected Unavailable"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn stalled_redis_is_unavailable_instead_of_hanging() {
    // Accepts connections (the kernel's backlog does) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", silent.local_addr().unwrap());
    let started = Instant::now();
    let result = RedisBackend::connect(&url, "tether-test:stalled:").await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "expected Unavailable"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
