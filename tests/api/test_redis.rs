//! A private Redis key prefix per test, swept when the test ends, so tests
//! share one Redis server without seeing each other's keys.

use std::time::Duration;

use crate::services;

/// Keys under `prefix` on the Redis at `url` belong to one test; every one of
/// them is deleted when this value is dropped (even if the test panics).
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
}

impl TestRedis {
    /// `None` (after reporting the skip, or panicking in CI) when Redis is
    /// unreachable. Blocks briefly, so it works under any async test runtime.
    pub async fn new(test_name: &str) -> Option<TestRedis> {
        let url = services::redis_url();
        if let Err(why) = ping(&url) {
            services::service_missing(test_name, "Redis", &why);
            return None;
        }
        let prefix = format!("tether-test:{}:", uuid::Uuid::new_v4().simple());
        Some(TestRedis { url, prefix })
    }

    /// A plain blocking connection, for tests that look at or change Redis
    /// behind the store's back (raw `DEL`, `EXISTS`, `KEYS` under the prefix).
    pub fn raw_connection(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
            .expect("connect to the test Redis")
    }

    /// Every key under this test's prefix, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut self.raw_connection())
            .expect("KEYS under the test prefix");
        keys.sort();
        keys
    }

    /// Deletes a key behind the store's back, as `redis-cli DEL` would.
    pub fn delete_key(&self, key: &str) {
        let _: i64 = redis::cmd("DEL")
            .arg(key)
            .query(&mut self.raw_connection())
            .expect("DEL in the test Redis");
    }

    fn sweep(&self) -> redis::RedisResult<()> {
        let mut connection = redis::Client::open(self.url.as_str())?
            .get_connection_with_timeout(Duration::from_secs(2))?;
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query(&mut connection)?;
            if !keys.is_empty() {
                let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut connection)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Err(e) = self.sweep() {
            eprintln!("could not delete test keys under {}: {e}", self.prefix);
        }
    }
}

fn ping(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut connection = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .map_err(|e| e.to_string())?;
    redis::cmd("PING")
        .query::<String>(&mut connection)
        .map(drop)
        .map_err(|e| e.to_string())
}
