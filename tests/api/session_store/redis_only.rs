//! What only the Redis store has: a key layout operators rely on (README,
//! "Redis key layout"), keyspace notifications, and timeouts.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use tether::{
    domain::Disappearance,
    sessions::backend::{redis::KeyspaceNotice, RedisBackend, SessionBackend, StoreError},
};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{create, redis_store, IDLE_MS, LIFETIME_MS};
use crate::test_redis::SERVER_CONFIG;

const KEYSPACE_EVENTS: &str = "notify-keyspace-events";

#[tokio::test]
async fn redis_store_keys_follow_the_documented_layout() {
    let name = "session_store::redis_only::redis_store_keys_follow_the_documented_layout";
    let Some(store) = redis_store(name).await else {
        return;
    };
    let redis = store.redis.as_ref().unwrap();
    let user = Uuid::new_v4();
    let sid = create(&store.backend, Some(user), LIFETIME_MS).await;
    let anonymous_sid = create(&store.backend, None, LIFETIME_MS).await;
    let ended_sid = create(&store.backend, None, LIFETIME_MS).await;
    assert!(store.backend.delete(&ended_sid, "admin").await.unwrap());
    let census = HashMap::from([(sid.clone(), 2)]);
    store
        .backend
        .record_sockets("instance-1", &census, 30_000, super::now_ms())
        .await
        .unwrap();

    let p = &redis.prefix;
    let session_key = format!("{p}session:{{{sid}}}");
    let index_key = format!("{p}user:{{{user}}}:sessions");
    let layout = [
        (session_key.clone(), "hash"),
        (format!("{p}session:{{{anonymous_sid}}}"), "hash"),
        (format!("{p}sessions"), "zset"),
        (index_key.clone(), "zset"),
        (format!("{p}ended:{{{ended_sid}}}"), "string"),
        (format!("{p}{{census}}:instance-1"), "hash"),
        (format!("{p}{{census}}:instances"), "zset"),
    ];
    let mut expected: Vec<String> = layout.iter().map(|(key, _)| key.clone()).collect();
    expected.sort();
    assert_eq!(redis.keys(), expected);

    let mut raw = redis.raw_connection();
    for (key, kind) in &layout {
        let actual: String = ::redis::cmd("TYPE").arg(key).query(&mut raw).unwrap();
        assert_eq!(actual, *kind, "type of {key}");
    }
    let fields: Vec<String> = ::redis::cmd("HKEYS")
        .arg(&session_key)
        .query(&mut raw)
        .unwrap();
    let fields: HashSet<&str> = fields.iter().map(String::as_str).collect();
    assert_eq!(
        fields,
        HashSet::from(["state", "uid", "created", "abs", "seen", "exp", "ip", "ua"])
    );
    let ttl: i64 = ::redis::cmd("PTTL")
        .arg(&session_key)
        .query(&mut raw)
        .unwrap();
    assert!(ttl > 0 && ttl <= IDLE_MS, "session PTTL {ttl}");
    // `exp` says when the key expires, so that a read needs no PTTL.
    let exp: i64 = ::redis::cmd("HGET")
        .arg(&session_key)
        .arg("exp")
        .query(&mut raw)
        .unwrap();
    let by_ttl = super::now_ms() + ttl;
    assert!(
        (exp - by_ttl).abs() < 2_000,
        "exp {exp}, now + PTTL {by_ttl}"
    );
    for index in [&index_key, &format!("{p}sessions")] {
        let ttl: i64 = ::redis::cmd("PTTL").arg(index).query(&mut raw).unwrap();
        assert!(
            ttl > LIFETIME_MS - 5_000 && ttl <= LIFETIME_MS,
            "{index} PTTL {ttl}"
        );
    }
    let count: String = ::redis::cmd("HGET")
        .arg(format!("{p}{{census}}:instance-1"))
        .arg(&sid)
        .query(&mut raw)
        .unwrap();
    assert_eq!(count, "2");
}

/// Starts `backend`'s keyspace listener and waits until it has subscribed.
async fn listen(backend: &RedisBackend) -> mpsc::Receiver<KeyspaceNotice> {
    let (notices, received) = mpsc::channel(16);
    let subscribed = backend.spawn_keyspace_listener(notices);
    tokio::time::timeout(Duration::from_secs(5), subscribed)
        .await
        .expect("the listener subscribes within 5 s")
        .expect("the listener is running");
    received
}

async fn next_notice(received: &mut mpsc::Receiver<KeyspaceNotice>) -> KeyspaceNotice {
    tokio::time::timeout(Duration::from_secs(3), received.recv())
        .await
        .expect("a keyspace notice within 3 s")
        .expect("the listener is running")
}

#[tokio::test]
async fn the_keyspace_listener_reports_deleted_and_expired_sessions_and_nothing_else() {
    let name = "session_store::redis_only::the_keyspace_listener_reports_deleted_and_expired_sessions_and_nothing_else";
    let Some(store) = redis_store(name).await else {
        return;
    };
    let redis = store.redis.as_ref().unwrap();
    let _config = SERVER_CONFIG.write().await;
    let _restore = redis.restore_config_on_drop(KEYSPACE_EVENTS);
    redis.config_set(KEYSPACE_EVENTS, "");
    let mut notices = listen(&store.backend).await;
    assert!(
        redis.config_get(KEYSPACE_EVENTS).contains('E'),
        "the listener switched notifications on"
    );

    // Keys of this prefix that are not sessions, and sessions of another prefix.
    let ended = create(&store.backend, None, LIFETIME_MS).await;
    assert!(store.backend.delete(&ended, "admin").await.unwrap());
    let other = RedisBackend::connect(&redis.url, &format!("{}other:", redis.prefix))
        .await
        .unwrap();
    let elsewhere = create(&other, None, LIFETIME_MS).await;
    redis.delete_key(&other.session_key(&elsewhere));
    redis.delete_key(&format!("{}ended:{{{ended}}}", redis.prefix));

    let sid = create(&store.backend, None, LIFETIME_MS).await;
    redis.delete_key(&store.backend.session_key(&sid));
    assert_eq!(
        next_notice(&mut notices).await,
        KeyspaceNotice::SessionGone {
            sid: ended,
            seen: Disappearance::Deleted
        },
        "tether's own delete is reported too (its tombstone says why)"
    );
    assert_eq!(
        next_notice(&mut notices).await,
        KeyspaceNotice::SessionGone {
            sid,
            seen: Disappearance::Deleted
        }
    );

    let short = create(&store.backend, None, 50).await;
    assert_eq!(
        next_notice(&mut notices).await,
        KeyspaceNotice::SessionGone {
            sid: short,
            seen: Disappearance::Expired
        }
    );
}

#[tokio::test]
async fn the_keyspace_listener_hears_the_database_its_url_selects() {
    let name =
        "session_store::redis_only::the_keyspace_listener_hears_the_database_its_url_selects";
    let Some(store) = redis_store(name).await else {
        return;
    };
    let redis = store.redis.as_ref().unwrap();
    let _config = SERVER_CONFIG.write().await;
    let _restore = redis.restore_config_on_drop(KEYSPACE_EVENTS);
    let in_db_5 = RedisBackend::connect(&format!("{}/5", redis.url), &redis.prefix)
        .await
        .unwrap();
    let mut notices = listen(&in_db_5).await;
    let in_db_0 = create(&store.backend, None, LIFETIME_MS).await;
    redis.delete_key(&store.backend.session_key(&in_db_0));
    let sid = create(&in_db_5, None, LIFETIME_MS).await;
    assert!(in_db_5.delete(&sid, "admin").await.unwrap());
    assert_eq!(
        next_notice(&mut notices).await,
        KeyspaceNotice::SessionGone {
            sid,
            seen: Disappearance::Deleted
        },
        "only database 5's delete"
    );
}

#[tokio::test]
async fn enable_keyspace_events_adds_e_g_x_and_keeps_existing_flags() {
    let name =
        "session_store::redis_only::enable_keyspace_events_adds_e_g_x_and_keeps_existing_flags";
    let Some(store) = redis_store(name).await else {
        return;
    };
    let redis = store.redis.as_ref().unwrap();
    let _config = SERVER_CONFIG.write().await;
    let _restore = redis.restore_config_on_drop(KEYSPACE_EVENTS);

    redis.config_set(KEYSPACE_EVENTS, "Kl");
    assert!(store.backend.enable_keyspace_events().await.unwrap());
    let flags = redis.config_get(KEYSPACE_EVENTS);
    for flag in ['K', 'l', 'E', 'g', 'x'] {
        assert!(flags.contains(flag), "{flag} missing from {flags:?}");
    }

    // `A` already covers `g` and `x`.
    redis.config_set(KEYSPACE_EVENTS, "AK");
    assert!(store.backend.enable_keyspace_events().await.unwrap());
    let flags = redis.config_get(KEYSPACE_EVENTS);
    for flag in ['A', 'K', 'E'] {
        assert!(flags.contains(flag), "{flag} missing from {flags:?}");
    }
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

/// A worker's clone has a connection of its own, to the same keys: what one
/// writes, the other reads, both ways.
#[tokio::test]
async fn a_worker_clone_reads_and_writes_the_same_sessions() {
    let name = "session_store::redis_only::a_worker_clone_reads_and_writes_the_same_sessions";
    let Some(store) = redis_store(name).await else {
        return;
    };
    let worker = store.backend.for_worker();
    let from_shared = create(&store.backend, Some(Uuid::new_v4()), LIFETIME_MS).await;
    let from_worker = create(&worker, None, LIFETIME_MS).await;
    let now = super::now_ms();
    for (reader, sid) in [(&worker, &from_shared), (&store.backend, &from_worker)] {
        assert!(reader.load(sid, now).await.unwrap().is_some(), "{sid}");
    }
    assert!(worker.delete(&from_shared, "admin").await.unwrap());
    assert!(store
        .backend
        .load(&from_shared, now)
        .await
        .unwrap()
        .is_none());
}

/// A session stored before the hash carried `exp` still loads, its expiry
/// read from the key's TTL; its next refresh adds `exp`.
#[tokio::test]
async fn a_session_stored_without_exp_loads_with_its_ttl() {
    let name = "session_store::redis_only::a_session_stored_without_exp_loads_with_its_ttl";
    let Some(store) = redis_store(name).await else {
        return;
    };
    let redis = store.redis.as_ref().unwrap();
    let sid = create(&store.backend, Some(Uuid::new_v4()), LIFETIME_MS).await;
    let key = format!("{}session:{{{sid}}}", redis.prefix);
    let mut raw = redis.raw_connection();
    let _: i64 = ::redis::cmd("HDEL")
        .arg(&key)
        .arg(&["exp", "seen", "ip", "ua"][..])
        .query(&mut raw)
        .unwrap();
    let _: i64 = ::redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(20_000)
        .query(&mut raw)
        .unwrap();
    let now = super::now_ms();
    let old = store.backend.load(&sid, now).await.unwrap().unwrap();
    assert!(
        (old.expires_at_ms - (now + 20_000)).abs() < 2_000,
        "expires {} ms from now",
        old.expires_at_ms - now
    );
    let renewed = store.backend.touch(&sid, IDLE_MS, now).await.unwrap();
    let exp: i64 = ::redis::cmd("HGET")
        .arg(&key)
        .arg("exp")
        .query(&mut raw)
        .unwrap();
    assert_eq!(Some(exp), renewed);
    assert_eq!(exp, now + IDLE_MS);
}
