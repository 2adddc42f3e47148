//! `Password`: a plaintext password on its way to argon2id, never logged.

use secrecy::{ExposeSecret, SecretString};

use super::ParseError;

/// A plaintext password. `Debug` prints `[REDACTED]` (secrecy), so a password
/// cannot reach a log line by accident.
#[derive(Debug, Clone)]
pub struct Password(SecretString);

impl Password {
    /// Longest password accepted; argon2 would take any length, but unbounded
    /// input is a cheap way to burn memory.
    pub const MAX_LEN: usize = 1024;
    /// Shortest password accepted for a *new* password.
    pub const MIN_NEW_LEN: usize = 8;

    /// A password offered at sign-in: anything non-empty and bounded.
    pub fn parse(raw: String) -> Result<Self, ParseError> {
        if raw.is_empty() {
            return Err(ParseError("password must not be empty".into()));
        }
        if raw.len() > Self::MAX_LEN {
            return Err(ParseError(format!(
                "password must be at most {} bytes",
                Self::MAX_LEN
            )));
        }
        Ok(Self(SecretString::from(raw)))
    }

    /// A password being set: as `parse`, and at least `MIN_NEW_LEN` characters.
    pub fn parse_new(raw: String) -> Result<Self, ParseError> {
        if raw.chars().count() < Self::MIN_NEW_LEN {
            return Err(ParseError(format!(
                "password must be at least {} characters",
                Self::MIN_NEW_LEN
            )));
        }
        Self::parse(raw)
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_password() {
        let p = Password::parse("hunter2-hunter2".into()).unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn new_passwords_have_a_minimum_length() {
        assert!(Password::parse_new("short".into()).is_err());
        assert!(Password::parse_new("long enough".into()).is_ok());
        assert!(Password::parse(String::new()).is_err());
    }
}
