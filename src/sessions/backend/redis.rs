//! Redis session store. INTERFACE STUB — being implemented.

use super::StoreError;

/// Sessions in Redis under `{prefix}session:{sid}`.
#[derive(Clone)]
pub struct RedisBackend {}

impl RedisBackend {
    /// Connects with connection and response timeouts, so a stalled Redis
    /// makes requests fail (503) rather than hang.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisBackend, StoreError> {
        let _ = (url, prefix);
        todo!()
    }
}

impl super::SessionBackend for RedisBackend {
    async fn create(&self, _: &str, _: super::NewSession, _: i64, _: i64) -> Result<(), super::StoreError> {
        todo!()
    }
    async fn load(&self, _: &str, _: i64) -> Result<Option<super::StoredSession>, super::StoreError> {
        todo!()
    }
    async fn update_state(&self, _: &str, _: super::SessionState, _: i64, _: i64) -> Result<bool, super::StoreError> {
        todo!()
    }
    async fn touch(&self, _: &str, _: i64, _: i64) -> Result<Option<i64>, super::StoreError> {
        todo!()
    }
    async fn delete(&self, _: &str) -> Result<bool, super::StoreError> {
        todo!()
    }
    async fn list_user_sessions(&self, _: uuid::Uuid, _: i64) -> Result<Vec<(String, super::StoredSession)>, super::StoreError> {
        todo!()
    }
    async fn delete_user_sessions(&self, _: uuid::Uuid) -> Result<Vec<String>, super::StoreError> {
        todo!()
    }
    async fn ping(&self) -> Result<(), super::StoreError> {
        todo!()
    }
}
