//! The Prometheus metrics of one server process: a registry of its own (no
//! global: tests run several servers in one process) and a handle for every
//! family, its label values resolved once at start where they are bounded
//! and known, so recording on a hot path is one atomic add, never a lock or
//! a label lookup. README "Metrics" lists the families and their labels.
//!
//! On the lowest floor (it imports only `domain`), so every layer that has
//! something to count can be handed an `Arc<Metrics>` without a cycle.

mod outcomes;

use prometheus::{
    Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use std::sync::atomic::{AtomicU64, Ordering};

use crate::domain::EndReason;
pub use outcomes::{LoginOutcome, MessageOutcome, UpgradeOutcome};

/// Every family, registered in [`Metrics::registry`].
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    pub ws_connections: IntGauge,
    upgrades: [IntCounter; UpgradeOutcome::ALL.len()],
    ws_messages: IntCounterVec,
    logins: [IntCounter; LoginOutcome::ALL.len()],
    /// `tether_logins_total` itself, for the OpenID Connect providers (their
    /// ids come from the configuration, so the label stays bounded).
    logins_by_provider: IntCounterVec,
    /// Provider sign-ins by outcome, for the per-second series.
    provider_logins: [AtomicU64; LoginOutcome::ALL.len()],
    sessions_ended: [IntCounter; EndReason::ALL.len()],
    pub revocation_close: Histogram,
    redis_errors: IntCounterVec,
    bus_events: IntCounterVec,
}

/// The `tether_ws_messages_total` counters of one message type, one per
/// outcome, resolved at start (see `ws::dispatch`).
#[derive(Clone)]
pub struct MessageCounters([IntCounter; MessageOutcome::ALL.len()]);

impl MessageCounters {
    /// Counters registered nowhere, for a dispatcher built without metrics.
    pub fn detached() -> Self {
        Self(std::array::from_fn(|_| {
            IntCounter::new("detached", "not exported").expect("valid name")
        }))
    }

    pub fn record(&self, outcome: MessageOutcome) {
        self.0[outcome as usize].inc();
    }

    fn get(&self, outcome: MessageOutcome) -> u64 {
        self.0[outcome as usize].get()
    }
}

/// Where a Redis command failed (`tether_redis_errors_total{op}`).
#[derive(Debug, Clone, Copy)]
pub enum RedisOp {
    /// Opening a connection to the primary.
    Connect,
    /// A command or a pipeline on an open connection.
    Command,
    /// Opening a pub/sub subscription (event bus, keyspace listener).
    Subscribe,
}

impl RedisOp {
    fn as_str(self) -> &'static str {
        match self {
            RedisOp::Connect => "connect",
            RedisOp::Command => "command",
            RedisOp::Subscribe => "subscribe",
        }
    }
}

/// Buckets of `tether_revocation_close_seconds`: revocation reaches a socket
/// in well under a millisecond on a healthy instance (BENCHMARKS.md), so
/// the fine end matters; a second or more means something is wrong.
const REVOCATION_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Builds and registers every family (process metrics are added by
    /// [`Metrics::with_process_metrics`], for the server only).
    pub fn new() -> Self {
        let registry = Registry::new();
        let reg = Registrar(&registry);
        let upgrades = reg.counter_vec(
            "tether_ws_upgrades_total",
            "WebSocket upgrade requests by outcome.",
            &["outcome"],
        );
        let logins = reg.counter_vec(
            "tether_logins_total",
            "Sign-in attempts by provider and outcome.",
            &["provider", "outcome"],
        );
        let sessions_ended = reg.counter_vec(
            "tether_sessions_ended_total",
            "Sessions ended, by reason; each counted once over all instances sharing Redis.",
            &["reason"],
        );
        let build_info = reg.gauge_vec(
            "tether_build_info",
            "Always 1; the version of the running binary.",
            &["version"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let metrics = Self {
            http_requests: reg.counter_vec(
                "tether_http_requests_total",
                "HTTP requests by matched route pattern, method and status.",
                &["route", "method", "status"],
            ),
            http_duration: reg.histogram_vec(
                HistogramOpts::new(
                    "tether_http_request_duration_seconds",
                    "Time to the response head, by matched route pattern and method.",
                ),
                &["route", "method"],
            ),
            ws_connections: reg.gauge(
                "tether_ws_connections",
                "WebSockets open on this instance.",
            ),
            upgrades: UpgradeOutcome::ALL.map(|o| upgrades.with_label_values(&[o.as_str()])),
            ws_messages: reg.counter_vec(
                "tether_ws_messages_total",
                "WebSocket client messages by type (a registered type or `unknown`) and outcome.",
                &["type", "outcome"],
            ),
            logins: LoginOutcome::ALL.map(|o| logins.with_label_values(&["password", o.as_str()])),
            logins_by_provider: logins,
            provider_logins: Default::default(),
            sessions_ended: EndReason::ALL
                .map(|r| sessions_ended.with_label_values(&[r.as_str()])),
            revocation_close: reg.histogram(
                HistogramOpts::new(
                    "tether_revocation_close_seconds",
                    "From this instance learning that a session ended to a socket's close frame being sent.",
                )
                .buckets(REVOCATION_BUCKETS.to_vec()),
            ),
            redis_errors: reg.counter_vec(
                "tether_redis_errors_total",
                "Failed Redis operations, by kind.",
                &["op"],
            ),
            bus_events: reg.counter_vec(
                "tether_bus_events_total",
                "Events sent to (`out`) and received from (`in`) other instances over Redis.",
                &["type", "direction"],
            ),
            registry,
        };
        // Present from the start at 0, so a dashboard shows them before
        // the first error.
        for op in [RedisOp::Connect, RedisOp::Command, RedisOp::Subscribe] {
            metrics.redis_errors.with_label_values(&[op.as_str()]);
        }
        metrics
    }

    /// Adds the standard `process_*` metrics (resident memory, open file
    /// descriptors, CPU seconds, …) read from `/proc` at each scrape.
    pub fn with_process_metrics(self) -> Self {
        let process = prometheus::process_collector::ProcessCollector::for_self();
        if let Err(e) = self.registry.register(Box::new(process)) {
            log::warn!("event=process_metrics_unavailable error={e}");
        }
        self
    }

    /// The text exposition format, version 0.0.4.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            log::error!("event=metrics_encode_failed error={e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// One HTTP request: `route` is the matched pattern (or a fixed
    /// stand-in), `method` one of a fixed set; both bounded by the caller.
    pub fn http_request(&self, route: &str, method: &str, status: &str, seconds: f64) {
        self.http_requests
            .with_label_values(&[route, method, status])
            .inc();
        self.http_duration
            .with_label_values(&[route, method])
            .observe(seconds);
    }

    pub fn upgrade(&self, outcome: UpgradeOutcome) {
        self.upgrades[outcome as usize].inc();
    }

    pub fn login(&self, outcome: LoginOutcome) {
        self.logins[outcome as usize].inc();
    }

    /// A sign-in through the configured OpenID Connect provider `provider`.
    pub fn provider_login(&self, provider: &str, outcome: LoginOutcome) {
        self.logins_by_provider
            .with_label_values(&[provider, outcome.as_str()])
            .inc();
        self.provider_logins[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn session_ended(&self, reason: EndReason) {
        self.sessions_ended[reason as usize].inc();
    }

    /// The counter of one reason, for a store that counts by itself.
    pub fn sessions_ended_counter(&self, reason: EndReason) -> IntCounter {
        self.sessions_ended[reason as usize].clone()
    }

    pub fn redis_error(&self, op: RedisOp) {
        self.redis_errors.with_label_values(&[op.as_str()]).inc();
    }

    /// `kind` is an event's fixed name (`Event::kind`).
    pub fn bus_event(&self, kind: &'static str, outgoing: bool) {
        let direction = if outgoing { "out" } else { "in" };
        self.bus_events.with_label_values(&[kind, direction]).inc();
    }

    /// The counters of one message type (`unknown` for types not registered).
    pub fn message_counters(&self, kind: &str) -> MessageCounters {
        MessageCounters(
            MessageOutcome::ALL.map(|o| self.ws_messages.with_label_values(&[kind, o.as_str()])),
        )
    }

    /// Totals so far, for the per-second series (`stats`).
    pub fn totals(&self, message_types: &[MessageCounters]) -> Totals {
        Totals {
            messages: MessageOutcome::ALL
                .map(|o| message_types.iter().map(|c| c.get(o)).sum::<u64>()),
            logins: LoginOutcome::ALL.map(|o| {
                self.logins[o as usize].get()
                    + self.provider_logins[o as usize].load(Ordering::Relaxed)
            }),
            sessions_ended: self.sessions_ended.each_ref().map(IntCounter::get),
        }
    }
}

/// Running totals of the counters the per-second series are made of, in the
/// order of each outcome's `ALL`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub messages: [u64; MessageOutcome::ALL.len()],
    pub logins: [u64; LoginOutcome::ALL.len()],
    pub sessions_ended: [u64; EndReason::ALL.len()],
}

/// Registers families; a name clash is a programming error caught by the
/// first test that builds a `Metrics`.
struct Registrar<'a>(&'a Registry);

impl Registrar<'_> {
    fn add<C: prometheus::core::Collector + Clone + 'static>(&self, c: C) -> C {
        self.0
            .register(Box::new(c.clone()))
            .expect("metric families have distinct names");
        c
    }
    fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
    }
    fn gauge(&self, name: &str, help: &str) -> IntGauge {
        self.add(IntGauge::new(name, help).expect("valid metric"))
    }
    fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
    }
    fn histogram(&self, opts: HistogramOpts) -> Histogram {
        self.add(Histogram::with_opts(opts).expect("valid metric"))
    }
    fn histogram_vec(&self, opts: HistogramOpts, labels: &[&str]) -> HistogramVec {
        self.add(HistogramVec::new(opts, labels).expect("valid metric"))
    }
}
