//! `Username`: the sign-in name of a user.

use super::ParseError;

/// A user's sign-in name: 1–64 characters of ASCII letters, digits, `.`, `_`
/// or `-`. Kept narrow so names are safe in logs, URLs and terminals.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.is_empty() {
            return Err(ParseError("username must not be empty".into()));
        }
        if raw.len() > Self::MAX_LEN {
            return Err(ParseError(format!(
                "username must be at most {} characters",
                Self::MAX_LEN
            )));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(ParseError(
                "username may contain only letters, digits, '.', '_' and '-'".into(),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names_and_refuses_odd_ones() {
        assert!(Username::parse("alice.b-c_1").is_ok());
        assert!(Username::parse("").is_err());
        assert!(Username::parse("a b").is_err());
        assert!(Username::parse("ålice").is_err());
        assert!(Username::parse(&"a".repeat(65)).is_err());
    }
}
