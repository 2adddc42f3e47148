//! The per-second series behind `GET /api/admin/stats` and the admin screen's
//! Live tab: open sockets, messages by outcome, sign-ins by outcome and
//! sessions ended by reason, for the last 15 minutes.
//!
//! Once a second each instance turns its counters (`metrics`) into one
//! [`Point`] (what happened in that second, and the sockets open at its
//! end) and keeps it in a ring of [`WINDOW`] points. With Redis it also
//! publishes the point (`redis.rs`), and a reader sums every instance's
//! points second by second, as the socket census is summed. Memory is
//! bounded: the ring here, and [`WINDOW`] points per instance in Redis.

mod redis;

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    domain::EndReason,
    metrics::{LoginOutcome, MessageCounters, MessageOutcome, Metrics, Totals},
    redis_link::PrimaryConnection,
    time::{now_ms, rfc3339},
};

/// Seconds kept: 15 minutes.
pub const WINDOW: usize = 900;

/// One instance's second. `t` is the Unix second the sample was taken in;
/// the counts are what happened since the previous sample. The field names
/// are short: this is what each instance writes to Redis every second
/// (README "Redis key layout").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    pub t: i64,
    /// Sockets open on the instance when the sample was taken.
    pub s: u64,
    /// Messages, in the order of `MessageOutcome::ALL`.
    pub m: Vec<u64>,
    /// Sign-ins, in the order of `LoginOutcome::ALL`.
    pub l: Vec<u64>,
    /// Sessions ended, in the order of `EndReason::ALL`.
    pub e: Vec<u64>,
}

impl Point {
    fn between(t: i64, sockets: u64, before: &Totals, now: &Totals) -> Self {
        let delta = |a: &[u64], b: &[u64]| -> Vec<u64> {
            a.iter().zip(b).map(|(a, b)| b.saturating_sub(*a)).collect()
        };
        Point {
            t,
            s: sockets,
            m: delta(&before.messages, &now.messages),
            l: delta(&before.logins, &now.logins),
            e: delta(&before.sessions_ended, &now.sessions_ended),
        }
    }

    /// Two samples that fell in one second (timer jitter) become one.
    fn absorb(&mut self, later: Point) {
        let add = |a: &mut Vec<u64>, b: Vec<u64>| {
            a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
        };
        self.s = later.s;
        add(&mut self.m, later.m);
        add(&mut self.l, later.l);
        add(&mut self.e, later.e);
    }
}

/// Where this instance's points are shared with the others.
struct Shared {
    conn: PrimaryConnection,
    prefix: String,
    instance: String,
}

/// What counts the open sockets (the hub; a closure keeps this module below `ws`).
pub type SocketCount = Arc<dyn Fn() -> usize + Send + Sync>;

/// The series of this instance, and the way to everyone's.
#[derive(Clone)]
pub struct LiveStats {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: Arc<Metrics>,
    message_types: Vec<MessageCounters>,
    sockets: SocketCount,
    ring: Mutex<VecDeque<Point>>,
    shared: Option<Shared>,
}

impl LiveStats {
    /// `message_types`: the message counters of every registered type and
    /// `unknown` (summed per outcome). `redis`: the connection, key prefix
    /// and this instance's id, when instances share Redis.
    pub fn new(
        metrics: Arc<Metrics>,
        message_types: Vec<MessageCounters>,
        sockets: SocketCount,
        redis: Option<(PrimaryConnection, String, String)>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                metrics,
                message_types,
                sockets,
                ring: Mutex::new(VecDeque::with_capacity(WINDOW)),
                shared: redis.map(|(conn, prefix, instance)| Shared {
                    conn,
                    prefix,
                    instance,
                }),
            }),
        }
    }

    /// Samples once a second, just after each second starts, for as long
    /// as the runtime lives.
    pub fn spawn_sampler(&self) {
        let stats = self.clone();
        tokio::spawn(async move {
            let mut before = stats.totals();
            loop {
                let into_second = (now_ms().rem_euclid(1000)) as u64;
                tokio::time::sleep(Duration::from_millis(1000 - into_second + SAMPLE_AFTER_MS))
                    .await;
                let now = stats.totals();
                let t = now_ms().div_euclid(1000);
                let sockets = (stats.inner.sockets)() as u64;
                stats.inner.metrics.ws_connections.set(sockets as i64);
                let point = Point::between(t, sockets, &before, &now);
                before = now;
                stats.keep(point.clone());
                if let Some(shared) = &stats.inner.shared {
                    if let Err(e) = redis::publish(shared, &point).await {
                        log::warn!("event=stats_publish_failed error={e}");
                    }
                }
            }
        });
    }

    fn totals(&self) -> Totals {
        self.inner.metrics.totals(&self.inner.message_types)
    }

    fn keep(&self, point: Point) {
        let mut ring = self.inner.ring.lock().unwrap_or_else(|p| p.into_inner());
        match ring.back_mut() {
            Some(last) if last.t == point.t => last.absorb(point),
            _ => {
                if ring.len() == WINDOW {
                    ring.pop_front();
                }
                ring.push_back(point);
            }
        }
    }

    /// The last [`WINDOW`] seconds, summed over every instance that reported
    /// in them (with Redis), as the JSON of `GET /api/admin/stats`.
    pub async fn snapshot(&self) -> anyhow::Result<StatsSeries> {
        // The second just begun is not sampled yet anywhere.
        let end = now_ms().div_euclid(1000) - 1;
        let start = end - WINDOW as i64 + 1;
        let (points, instances) = match &self.inner.shared {
            Some(shared) => redis::read_all(shared, start).await?,
            None => {
                let ring = self.inner.ring.lock().unwrap_or_else(|p| p.into_inner());
                (ring.iter().cloned().collect(), 1)
            }
        };
        let mut sum = Summed::new();
        for point in points {
            if (start..=end).contains(&point.t) {
                sum.add((point.t - start) as usize, &point);
            }
        }
        Ok(sum.into_series(end, instances))
    }
}

/// How long after a second starts it is sampled.
const SAMPLE_AFTER_MS: u64 = 20;

/// Series being summed, one slot per second of the window.
struct Summed {
    sockets: Vec<u64>,
    messages: Vec<Vec<u64>>,
    logins: Vec<Vec<u64>>,
    ended: Vec<Vec<u64>>,
}

impl Summed {
    fn new() -> Self {
        let series = |n: usize| vec![vec![0; WINDOW]; n];
        Self {
            sockets: vec![0; WINDOW],
            messages: series(MessageOutcome::ALL.len()),
            logins: series(LoginOutcome::ALL.len()),
            ended: series(EndReason::ALL.len()),
        }
    }

    fn add(&mut self, slot: usize, point: &Point) {
        let add = |series: &mut Vec<Vec<u64>>, values: &[u64]| {
            for (s, v) in series.iter_mut().zip(values) {
                s[slot] += v;
            }
        };
        self.sockets[slot] += point.s;
        add(&mut self.messages, &point.m);
        add(&mut self.logins, &point.l);
        add(&mut self.ended, &point.e);
    }

    fn into_series(self, end: i64, instances: usize) -> StatsSeries {
        fn named(
            names: impl Iterator<Item = &'static str>,
            series: Vec<Vec<u64>>,
        ) -> BTreeMap<String, Vec<u64>> {
            names.map(str::to_owned).zip(series).collect()
        }
        StatsSeries {
            interval_secs: 1,
            seconds: WINDOW,
            end: rfc3339(end * 1000),
            instances,
            sockets: self.sockets,
            messages: named(
                MessageOutcome::ALL.iter().map(|o| o.as_str()),
                self.messages,
            ),
            logins: named(LoginOutcome::ALL.iter().map(|o| o.as_str()), self.logins),
            sessions_ended: named(EndReason::ALL.iter().map(|r| r.as_str()), self.ended),
        }
    }
}

/// The body of `GET /api/admin/stats`: one value per second, oldest first,
/// the last one the second that ended at `end`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsSeries {
    /// Seconds per value (always 1).
    pub interval_secs: u32,
    /// Values per series (900: 15 minutes).
    pub seconds: usize,
    /// When the last second ended (RFC 3339).
    pub end: String,
    /// Instances whose seconds were summed.
    pub instances: usize,
    /// Sockets open at the end of each second, over every instance.
    pub sockets: Vec<u64>,
    /// Messages by outcome (`ok`, `forbidden`, `bad_request`, `unknown_type`,
    /// `rate_limited`, `unavailable`, `internal`).
    pub messages: BTreeMap<String, Vec<u64>>,
    /// Sign-ins by outcome (`success`, `invalid_credentials`, `rate_limited`,
    /// `unavailable`, `bad_request`, `forbidden`, `error`).
    pub logins: BTreeMap<String, Vec<u64>>,
    /// Sessions ended by reason (the six `EndReason`s).
    pub sessions_ended: BTreeMap<String, Vec<u64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> LiveStats {
        LiveStats::new(Arc::new(Metrics::new()), Vec::new(), Arc::new(|| 0), None)
    }

    fn point(t: i64, sockets: u64, ok: u64) -> Point {
        let mut m = vec![0; MessageOutcome::ALL.len()];
        m[MessageOutcome::Ok as usize] = ok;
        Point {
            t,
            s: sockets,
            m,
            l: vec![0; LoginOutcome::ALL.len()],
            e: vec![0; EndReason::ALL.len()],
        }
    }

    #[tokio::test]
    async fn two_samples_in_one_second_are_one_point_and_the_ring_is_bounded() {
        // Retried if a second boundary passes meanwhile (the window moves).
        let (stats, json) = loop {
            let stats = stats();
            let now = now_ms().div_euclid(1000);
            for t in (now - 2000)..(now - 2) {
                stats.keep(point(t, 1, 1));
            }
            stats.keep(point(now - 2, 3, 2));
            stats.keep(point(now - 2, 4, 5));
            let series = stats.snapshot().await.unwrap();
            if now_ms().div_euclid(1000) == now {
                break (stats, series);
            }
        };
        assert_eq!(stats.inner.ring.lock().unwrap().len(), WINDOW);
        let ok = &json.messages["ok"];
        let sockets = &json.sockets;
        assert_eq!(ok.len(), WINDOW);
        // The last complete second is `now - 1`: nothing sampled there yet.
        assert_eq!(ok[WINDOW - 1], 0);
        assert_eq!(ok[WINDOW - 2], 7, "the two samples of one second add up");
        assert_eq!(sockets[WINDOW - 2], 4, "sockets: the later sample");
        assert_eq!(ok[0], 1);
    }

    #[test]
    fn a_point_is_what_happened_since_the_last_sample() {
        let before = Totals {
            messages: [5, 1, 0, 0, 0, 0, 0],
            ..Totals::default()
        };
        let now = Totals {
            messages: [9, 1, 2, 0, 0, 0, 0],
            ..Totals::default()
        };
        let p = Point::between(10, 3, &before, &now);
        assert_eq!(p.m, vec![4, 0, 2, 0, 0, 0, 0]);
        assert_eq!((p.t, p.s), (10, 3));
    }
}
