//! argon2id hashing and verification, off the async executor and bounded.
//!
//! Hashing is deliberately expensive (OWASP: m=19456 KiB, t=2, p=1). It runs on
//! a fixed set of dedicated threads (`TETHER_MAX_CONCURRENT_HASHES`), so a burst
//! of sign-ins queues instead of starving every other request of CPU, and the
//! 19 MiB each hash allocates is reused by the same few threads: on tokio's
//! blocking pool every new thread kept its own (the benchmark saw RSS climb to
//! 0.6–1.7 GiB). Unknown users are verified against a dummy hash, so a sign-in
//! costs the same whether or not the user exists.

use std::sync::Arc;

use argon2::{
    password_hash::{
        rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString,
    },
    Algorithm, Argon2, Params, Version,
};
use tokio::sync::{mpsc, oneshot};

use crate::domain::Password;

fn argon2() -> Argon2<'static> {
    // Params::new only fails for out-of-range values; these are constants.
    let params = Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password synchronously (CLI, bootstrap). Prefer [`Hasher::hash`] in the server.
pub fn hash_blocking(password: &Password) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2()
        .hash_password(password.expose().as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    Ok(hash.to_string())
}

fn verify_blocking(password: &Password, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok(),
        Err(e) => {
            log::error!("event=bad_password_hash error={e}");
            false
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Sign-ins waiting for a hashing thread before callers wait to enqueue.
const QUEUE: usize = 1024;

/// The server's password hasher: `threads` dedicated threads, fed by a queue.
/// The threads end when the last `Hasher` clone is dropped.
#[derive(Clone)]
pub struct Hasher {
    jobs: mpsc::Sender<Job>,
    dummy_hash: Arc<str>,
}

impl Hasher {
    pub fn new(threads: usize) -> anyhow::Result<Self> {
        let dummy = Password::parse("tether-dummy-password-for-unknown-users".into())
            .map_err(|e| anyhow::anyhow!(e))?;
        let (jobs, queue) = mpsc::channel::<Job>(QUEUE);
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || loop {
                    // One idle thread waits on the queue; the others on the lock.
                    let job = queue
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .blocking_recv();
                    match job {
                        Some(job) => job(),
                        None => break,
                    }
                })?;
        }
        Ok(Self {
            jobs,
            dummy_hash: hash_blocking(&dummy)?.into(),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| anyhow::anyhow!("password hashing threads are gone"))?;
        Ok(result.await?)
    }

    /// `true` if `password` matches `phc`. With `phc = None` (unknown user) it
    /// does the same work against a dummy hash and returns `false`.
    pub async fn verify(&self, password: Password, phc: Option<String>) -> anyhow::Result<bool> {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.to_string());
        let ok = self.run(move || verify_blocking(&password, &phc)).await?;
        Ok(ok && known)
    }

    pub async fn hash(&self, password: Password) -> anyhow::Result<String> {
        self.run(move || hash_blocking(&password)).await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let pw = Password::parse("correct horse".into()).unwrap();
        let phc = hash_blocking(&pw).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_blocking(&pw, &phc));
        let wrong = Password::parse("wrong horse".into()).unwrap();
        assert!(!verify_blocking(&wrong, &phc));
        assert!(!verify_blocking(&pw, "not a hash"));
    }
}
