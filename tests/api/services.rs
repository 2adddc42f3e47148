//! Skip-or-fail policy for tests that need an external service.
//!
//! On a developer machine without Redis or PostgreSQL, such tests print a
//! `SKIPPED` line naming the test, the service and why, and pass. In CI
//! (`CI=true`) a missing service is a failure: CI must prove everything.

/// Reports that `service` is unreachable for `test`. Panics in CI.
pub fn service_missing(test: &str, service: &str, why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{test}: {service} is required in CI but not reachable: {why}");
    }
    // Straight to the stderr handle: `eprintln!` is captured (and hidden) for
    // passing tests, and a skip must be seen.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {service} not reachable ({why})"
    );
}

/// Admin URL of the test PostgreSQL server (`TETHER_TEST_POSTGRES_URL`).
pub fn postgres_admin_url() -> String {
    std::env::var("TETHER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// URL of the test Redis server (`TETHER_TEST_REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("TETHER_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}
