//! `RoleName`: the name of a role in the user store (`admin`, `user`, …).

use super::ParseError;

/// A role name: 1–64 characters of lowercase ASCII letters, digits, `-`, `_`
/// or `:`. Whether the role exists is the user store's question.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct RoleName(String);

impl RoleName {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | ':')
            });
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ParseError(format!(
                "invalid role name {raw:?}: use 1-64 lowercase letters, digits, '-', '_' or ':'"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RoleName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
