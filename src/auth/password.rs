//! argon2id hashing and verification, off the async executor and bounded.
//!
//! Hashing is deliberately expensive (OWASP: m=19456 KiB, t=2, p=1). It runs on
//! the blocking pool behind a semaphore, so a burst of sign-ins queues instead
//! of starving every other request of CPU. Unknown users are verified against a
//! dummy hash, so a sign-in costs the same whether or not the user exists.

use std::sync::Arc;

use argon2::{
    password_hash::{
        rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString,
    },
    Algorithm, Argon2, Params, Version,
};
use tokio::sync::Semaphore;

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

/// The server's password hasher: a bounded number of hashes at a time.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    dummy_hash: Arc<str>,
}

impl Hasher {
    pub fn new(max_concurrent: usize) -> anyhow::Result<Self> {
        let dummy = Password::parse("tether-dummy-password-for-unknown-users".into())
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy_hash: hash_blocking(&dummy)?.into(),
        })
    }

    /// `true` if `password` matches `phc`. With `phc = None` (unknown user) it
    /// does the same work against a dummy hash and returns `false`.
    pub async fn verify(&self, password: Password, phc: Option<String>) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await?;
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.to_string());
        let ok = tokio::task::spawn_blocking(move || verify_blocking(&password, &phc)).await?;
        Ok(ok && known)
    }

    pub async fn hash(&self, password: Password) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
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
