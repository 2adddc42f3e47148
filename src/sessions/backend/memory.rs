//! In-process session store. INTERFACE STUB — being implemented.

/// Sessions in this process's memory: neither shared nor durable.
#[derive(Clone, Default)]
pub struct MemoryBackend {}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }
}

impl super::SessionBackend for MemoryBackend {
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
