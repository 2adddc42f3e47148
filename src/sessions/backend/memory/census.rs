//! The socket census kept in process: how many sockets each instance has
//! open per session, with the same lapse and staleness rules as Redis's
//! `{prefix}{census}:<instance>` and `{prefix}{census}:instances`.

use std::collections::HashMap;

/// The latest census each instance recorded.
#[derive(Default)]
pub(super) struct Census {
    by_instance: HashMap<String, InstanceCensus>,
}

struct InstanceCensus {
    counts: HashMap<String, usize>,
    recorded_at_ms: i64,
    /// As the Redis hash's `PEXPIRE`: after this, the counts are gone.
    lapses_at_ms: i64,
}

impl Census {
    /// Replaces `instance`'s census (never adds to it).
    pub(super) fn record(
        &mut self,
        instance: &str,
        counts: &HashMap<String, usize>,
        ttl_ms: i64,
        now_ms: i64,
    ) {
        let counts = counts
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(sid, &n)| (sid.clone(), n))
            .collect();
        let census = InstanceCensus {
            counts,
            recorded_at_ms: now_ms,
            lapses_at_ms: now_ms.saturating_add(ttl_ms),
        };
        self.by_instance.insert(instance.to_owned(), census);
    }

    /// The instances heard from within `stale_after_ms`, forgetting the others.
    pub(super) fn live(&mut self, now_ms: i64, stale_after_ms: i64) -> Vec<String> {
        let live_since = now_ms.saturating_sub(stale_after_ms);
        self.by_instance
            .retain(|_, census| census.recorded_at_ms >= live_since);
        self.by_instance.keys().cloned().collect()
    }

    /// `key`'s count summed over `instances` (lapsed censuses count 0).
    pub(super) fn count_on(&self, instances: &[String], key: &str, now_ms: i64) -> usize {
        instances
            .iter()
            .filter_map(|i| self.by_instance.get(i))
            .filter(|census| census.lapses_at_ms > now_ms)
            .filter_map(|census| census.counts.get(key))
            .sum()
    }

    /// Sums the counts of `sids` over the instances heard from within
    /// `stale_after_ms`, forgetting the others.
    pub(super) fn counts(
        &mut self,
        sids: &[String],
        now_ms: i64,
        stale_after_ms: i64,
    ) -> HashMap<String, usize> {
        let live_since = now_ms.saturating_sub(stale_after_ms);
        self.by_instance
            .retain(|_, census| census.recorded_at_ms >= live_since);
        let mut totals = HashMap::new();
        for census in self.by_instance.values() {
            if census.lapses_at_ms <= now_ms {
                continue;
            }
            for sid in sids {
                if let Some(&n) = census.counts.get(sid) {
                    *totals.entry(sid.clone()).or_default() += n;
                }
            }
        }
        totals
    }
}
