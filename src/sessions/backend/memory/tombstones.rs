//! Why recently deleted sessions ended, kept for [`TOMBSTONE_TTL_MS`] as the
//! Redis store's `{prefix}ended:{sid}` keys are.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use crate::sessions::backend::TOMBSTONE_TTL_MS;

/// Tombstones by sid, expiring on this process's monotonic clock: deletes
/// carry no `now_ms`, and a tombstone never leaves the process anyway.
#[derive(Default)]
pub(super) struct Tombstones {
    reasons: HashMap<String, (String, Instant)>,
    /// Every tombstone ever written, in expiry order (the TTL is constant),
    /// so pruning pops from the front and costs O(1) per tombstone.
    by_expiry: VecDeque<(Instant, String)>,
}

const TTL: Duration = Duration::from_millis(TOMBSTONE_TTL_MS as u64);

impl Tombstones {
    pub(super) fn insert(&mut self, sid: &str, reason: &str) {
        let now = Instant::now();
        self.prune(now);
        let expires = now + TTL;
        self.reasons
            .insert(sid.to_owned(), (reason.to_owned(), expires));
        self.by_expiry.push_back((expires, sid.to_owned()));
    }

    pub(super) fn reason(&mut self, sid: &str) -> Option<String> {
        self.prune(Instant::now());
        self.reasons.get(sid).map(|(reason, _)| reason.clone())
    }

    fn prune(&mut self, now: Instant) {
        while let Some((expires, _)) = self.by_expiry.front() {
            if *expires > now {
                break;
            }
            let Some((expires, sid)) = self.by_expiry.pop_front() else {
                break;
            };
            // A sid tombstoned twice keeps the later tombstone.
            if self.reasons.get(&sid).is_some_and(|(_, e)| *e == expires) {
                self.reasons.remove(&sid);
            }
        }
    }
}
