//! The socket census: how many sockets each session has open right now,
//! summed over every instance that reported recently.

use std::{collections::HashMap, time::Duration};

use tether::sessions::backend::SessionBackend;

use super::{new_sid, now_ms, Store};

const TTL_MS: i64 = 30_000;
const STALE_AFTER_MS: i64 = 10_000;

fn census(entries: &[(&String, usize)]) -> HashMap<String, usize> {
    entries
        .iter()
        .map(|(sid, n)| ((*sid).clone(), *n))
        .collect()
}

/// Sockets of `sid` in a `socket_counts` answer (absent means none).
fn sockets(counts: &HashMap<String, usize>, sid: &str) -> usize {
    counts.get(sid).copied().unwrap_or(0)
}

async fn socket_counts_sum_over_instances<B: SessionBackend + Clone>(store: Store<B>) {
    let [a, b, c, none] = [new_sid(), new_sid(), new_sid(), new_sid()];
    let now = now_ms();
    let first = census(&[(&a, 2), (&b, 1)]);
    store
        .backend
        .record_sockets("instance-1", &first, TTL_MS, now)
        .await
        .unwrap();
    let second = census(&[(&a, 1), (&c, 4)]);
    store
        .backend
        .record_sockets("instance-2", &second, TTL_MS, now)
        .await
        .unwrap();

    let sids = [a.clone(), b.clone(), c.clone(), none.clone()];
    let counts = store
        .backend
        .socket_counts(&sids, now, STALE_AFTER_MS)
        .await;
    let counts = counts.unwrap();
    let summed: Vec<usize> = sids.iter().map(|sid| sockets(&counts, sid)).collect();
    assert_eq!(summed, [3, 1, 4, 0]);
    let nothing_asked = store.backend.socket_counts(&[], now, STALE_AFTER_MS).await;
    assert!(nothing_asked.unwrap().is_empty());
}

async fn a_stale_instances_counts_are_ignored_and_forgotten<B: SessionBackend + Clone>(
    store: Store<B>,
) {
    let sid = new_sid();
    let now = now_ms();
    let stale_at = now - STALE_AFTER_MS - 1;
    let stale = census(&[(&sid, 5)]);
    store
        .backend
        .record_sockets("crashed", &stale, TTL_MS, stale_at)
        .await
        .unwrap();
    let live = census(&[(&sid, 1)]);
    store
        .backend
        .record_sockets("alive", &live, TTL_MS, now)
        .await
        .unwrap();

    let sids = [sid.clone()];
    let counts = store
        .backend
        .socket_counts(&sids, now, STALE_AFTER_MS)
        .await;
    assert_eq!(sockets(&counts.unwrap(), &sid), 1);
    // Forgotten, not just skipped: a more lenient reader no longer sees it.
    let counts = store.backend.socket_counts(&sids, now, TTL_MS).await;
    assert_eq!(sockets(&counts.unwrap(), &sid), 1);
    if let Some(instances) = store.raw_zset("{census}:instances") {
        assert_eq!(instances, ["alive".to_owned()].into());
    }
}

async fn record_sockets_replaces_the_instances_census<B: SessionBackend + Clone>(store: Store<B>) {
    let [a, b] = [new_sid(), new_sid()];
    let sids = [a.clone(), b.clone()];
    let now = now_ms();
    let before = census(&[(&a, 2), (&b, 1)]);
    store
        .backend
        .record_sockets("instance", &before, TTL_MS, now)
        .await
        .unwrap();
    let after = census(&[(&a, 1), (&b, 0)]);
    store
        .backend
        .record_sockets("instance", &after, TTL_MS, now)
        .await
        .unwrap();

    let counts = store
        .backend
        .socket_counts(&sids, now, STALE_AFTER_MS)
        .await;
    let counts = counts.unwrap();
    assert_eq!((sockets(&counts, &a), sockets(&counts, &b)), (1, 0));

    store
        .backend
        .record_sockets("instance", &HashMap::new(), TTL_MS, now)
        .await
        .unwrap();
    let counts = store
        .backend
        .socket_counts(&sids, now, STALE_AFTER_MS)
        .await;
    let counts = counts.unwrap();
    assert_eq!((sockets(&counts, &a), sockets(&counts, &b)), (0, 0));
}

async fn a_census_lapses_after_its_ttl<B: SessionBackend + Clone>(store: Store<B>) {
    let sid = new_sid();
    let counts = census(&[(&sid, 3)]);
    store
        .backend
        .record_sockets("instance", &counts, 200, now_ms())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let sids = [sid.clone()];
    let counts = store
        .backend
        .socket_counts(&sids, now_ms(), STALE_AFTER_MS)
        .await;
    assert_eq!(sockets(&counts.unwrap(), &sid), 0);
    if let Some(redis) = &store.redis {
        assert_eq!(
            redis.keys(),
            Vec::<String>::new(),
            "census keys outlived their TTL"
        );
    }
}

conformance!(
    socket_counts_sum_over_instances,
    a_stale_instances_counts_are_ignored_and_forgotten,
    record_sockets_replaces_the_instances_census,
    a_census_lapses_after_its_ttl,
);
