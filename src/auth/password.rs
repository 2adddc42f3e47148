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
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher as _, SaltString},
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

thread_local! {
    /// Argon2's working memory (19 MiB at our parameters), kept by each
    /// hashing thread. Allocating it per verification made glibc keep the
    /// freed blocks in per-thread arenas: +117 MB RSS after 20 sign-ins.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn verify_blocking(password: &Password, phc: &str) -> bool {
    match verify_in_place(password, phc) {
        Ok(matches) => matches,
        Err(e) => {
            log::error!("event=bad_password_hash error={e}");
            false
        }
    }
}

/// What `PasswordVerifier::verify_password` does, but hashing into this
/// thread's reused memory, and comparing in constant time.
fn verify_in_place(password: &Password, phc: &str) -> argon2::password_hash::Result<bool> {
    use argon2::password_hash::{Error, Output};
    let parsed = PasswordHash::new(phc)?;
    let expected = parsed.hash.ok_or(Error::Password)?;
    let stored = Params::try_from(&parsed)?;
    let params = Params::new(
        stored.m_cost(),
        stored.t_cost(),
        stored.p_cost(),
        Some(expected.len()),
    )?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let hasher = Argon2::new(
        Algorithm::try_from(parsed.algorithm)?,
        version,
        params.clone(),
    );
    let mut salt = [0u8; 64];
    let salt = parsed
        .salt
        .ok_or(Error::SaltInvalid(
            argon2::password_hash::errors::InvalidValue::Malformed,
        ))?
        .decode_b64(&mut salt)?;
    let mut out = vec![0u8; expected.len()];
    hash_into(&hasher, &params, password, salt, &mut out)?;
    Ok(Output::new(&out)? == expected)
}

/// Runs argon2 in this thread's reused working memory.
fn hash_into(
    hasher: &Argon2<'_>,
    params: &Params,
    password: &Password,
    salt: &[u8],
    out: &mut [u8],
) -> argon2::Result<()> {
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        if blocks.len() < params.block_count() {
            blocks.resize(params.block_count(), argon2::Block::default());
        }
        hasher.hash_password_into_with_memory(
            password.expose().as_bytes(),
            salt,
            out,
            &mut blocks[..params.block_count()],
        )
    })
}

/// What `PasswordHasher::hash_password` does (a PHC string with a fresh
/// salt), but in this thread's reused memory: for the hashing threads, where
/// a fresh 19 MiB per hash was kept by glibc (+136 MB RSS after 8 users were
/// created through the admin API).
fn hash_in_place(password: &Password) -> anyhow::Result<String> {
    use argon2::password_hash::{Output, ParamsString};
    let hasher = argon2();
    let params = hasher.params().clone();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(anyhow_err)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    hash_into(&hasher, &params, password, salt_bytes, &mut out).map_err(anyhow_err)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(anyhow_err)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(anyhow_err)?),
    };
    Ok(phc.to_string())
}

fn anyhow_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("hashing failed: {e}")
}

type Job = Box<dyn FnOnce() + Send>;

/// Why a hash or verification did not run.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The queue is full (`TETHER_MAX_QUEUED_HASHES`): refused at once, so a
    /// flood of sign-ins cannot make everyone wait without bound.
    #[error("password hashing is busy")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// A full queue is "try again shortly" (503 with `Retry-After`), never a wait.
impl From<HashError> for crate::error::ApiError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => Self::Unavailable(anyhow::anyhow!("password hashing queue full")),
            HashError::Failed(e) => Self::Internal(e),
        }
    }
}

/// The server's password hasher: `threads` dedicated threads, fed by a
/// queue of at most `max_queued` jobs. The threads end when the last
/// `Hasher` clone is dropped.
#[derive(Clone)]
pub struct Hasher {
    jobs: mpsc::Sender<Job>,
    dummy_hash: Arc<str>,
}

impl Hasher {
    pub fn new(threads: usize, max_queued: usize) -> anyhow::Result<Self> {
        let dummy = Password::parse("tether-dummy-password-for-unknown-users".into())
            .map_err(|e| anyhow::anyhow!(e))?;
        let (jobs, queue) = mpsc::channel::<Job>(max_queued.max(1));
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
    ) -> Result<T, HashError> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => HashError::Busy,
            mpsc::error::TrySendError::Closed(_) => {
                HashError::Failed(anyhow::anyhow!("password hashing threads are gone"))
            }
        })?;
        result.await.map_err(|e| HashError::Failed(e.into()))
    }

    /// `true` if `password` matches `phc`. With `phc = None` (unknown user) it
    /// does the same work against a dummy hash and returns `false`.
    pub async fn verify(&self, password: Password, phc: Option<String>) -> Result<bool, HashError> {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.to_string());
        let ok = self.run(move || verify_blocking(&password, &phc)).await?;
        Ok(ok && known)
    }

    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        Ok(self.run(move || hash_in_place(&password)).await??)
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

    #[test]
    fn in_place_hashes_match_the_crates_own_format_and_verify_both_ways() {
        use argon2::PasswordVerifier as _;
        let pw = Password::parse("correct horse".into()).unwrap();
        let phc = hash_in_place(&pw).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let reference = hash_blocking(&pw).unwrap();
        assert_eq!(phc.len(), reference.len(), "{phc} vs {reference}");
        assert_ne!(phc, hash_in_place(&pw).unwrap(), "a fresh salt every time");
        // Our verifier and the crate's accept it; a wrong password is refused.
        assert!(verify_blocking(&pw, &phc));
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(argon2().verify_password(b"correct horse", &parsed).is_ok());
        assert!(argon2().verify_password(b"wrong horse", &parsed).is_err());
    }
}
