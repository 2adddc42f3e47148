//! Results: HDR latency histograms, one row per measurement, the printed
//! table and its JSON twin, and the server's RSS read from /proc.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies in microseconds, 1 µs to 60 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

pub fn record(hist: &mut Histogram<u64>, latency: Duration) {
    let micros = (latency.as_micros() as u64).clamp(1, 60_000_000);
    hist.saturating_record(micros);
}

/// One line of the results table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    /// `mem`, `redis`, `redis→redis2`, `echo`, `machine`, …
    pub target: String,
    /// `closed(c=64)`, `fixed(2000/s)`, …
    pub mode: String,
    /// Operations per second (what an operation is depends on the scenario).
    pub throughput: f64,
    pub ops: u64,
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub server_rss_mib: Option<f64>,
    /// Free-form: ratios, targets, per-socket RSS.
    pub note: String,
}

impl Row {
    pub fn new(scenario: &str, target: &str, mode: impl Into<String>) -> Self {
        Self {
            scenario: scenario.into(),
            target: target.into(),
            mode: mode.into(),
            throughput: 0.0,
            ops: 0,
            errors: 0,
            p50_ms: None,
            p99_ms: None,
            max_ms: None,
            server_rss_mib: None,
            note: String::new(),
        }
    }

    /// Fills throughput and latency from a histogram gathered over `elapsed`.
    pub fn with_hist(mut self, hist: &Histogram<u64>, elapsed: Duration) -> Self {
        self.ops = hist.len();
        self.throughput = hist.len() as f64 / elapsed.as_secs_f64().max(1e-9);
        if !hist.is_empty() {
            self.p50_ms = Some(hist.value_at_quantile(0.50) as f64 / 1000.0);
            self.p99_ms = Some(hist.value_at_quantile(0.99) as f64 / 1000.0);
            self.max_ms = Some(hist.max() as f64 / 1000.0);
        }
        self
    }

    pub fn rss(mut self, pid: Option<u32>) -> Self {
        self.server_rss_mib = pid.and_then(rss_kib).map(|k| k as f64 / 1024.0);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
}

/// VmRSS of a process in KiB, if it can be read.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// CPU time (user + system) a process has used so far, from /proc.
pub fn cpu_time(pid: u32) -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (u64, u64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    let ticks = clock_ticks_per_second();
    Some(std::time::Duration::from_secs_f64(
        (utime + stime) as f64 / ticks,
    ))
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU time used by each of several processes over one measurement.
pub struct CpuMeter {
    start: Vec<(String, u32, Option<std::time::Duration>)>,
}

impl CpuMeter {
    /// `(name, pid)` of each process to watch.
    pub fn start(processes: &[(&str, u32)]) -> Self {
        Self {
            start: processes
                .iter()
                .map(|(name, pid)| (name.to_string(), *pid, cpu_time(*pid)))
                .collect(),
        }
    }

    /// "CPU per op: tether 61 µs, loadgen 38 µs, redis 9 µs (sum 108 µs: at
    /// most 18.5k ops/s on 2 cores)" for `ops` operations.
    pub fn per_op_note(&self, ops: u64) -> String {
        if ops == 0 {
            return String::new();
        }
        let mut parts = Vec::new();
        let mut sum = 0.0;
        for (name, pid, before) in &self.start {
            if let (Some(before), Some(after)) = (before, cpu_time(*pid)) {
                let micros = (after - *before).as_secs_f64() * 1e6 / ops as f64;
                sum += micros;
                parts.push(format!("{name} {micros:.0} µs"));
            }
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
        format!(
            "CPU per op: {} (sum {sum:.0} µs: at most {:.1}k ops/s on {cores} cores)",
            parts.join(", "),
            cores * 1e6 / sum / 1000.0
        )
    }
}

fn opt(v: Option<f64>, precision: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.precision$}"))
}

pub fn print_header() {
    println!(
        "{:<10} {:<14} {:<26} {:>10} {:>8} {:>6} {:>8} {:>8} {:>8} {:>7}  note",
        "scenario",
        "target",
        "mode",
        "ops/s",
        "ops",
        "errors",
        "p50 ms",
        "p99 ms",
        "max ms",
        "RSS MiB"
    );
}

pub fn print_row(r: &Row) {
    println!(
        "{:<10} {:<14} {:<26} {:>10.1} {:>8} {:>6} {:>8} {:>8} {:>8} {:>7}  {}",
        r.scenario,
        r.target,
        r.mode,
        r.throughput,
        r.ops,
        r.errors,
        opt(r.p50_ms, 2),
        opt(r.p99_ms, 2),
        opt(r.max_ms, 1),
        opt(r.server_rss_mib, 1),
        r.note
    );
}

pub fn print_table(rows: &[Row]) {
    print_header();
    rows.iter().for_each(print_row);
}

/// Everything one run produced, as written to the JSON file.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub started_unix: u64,
    pub load_average_before: String,
    pub settings: serde_json::Value,
    pub rows: &'a [Row],
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
