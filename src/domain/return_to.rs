//! `ReturnTo`: where a browser lands after signing in through a provider.

/// A path on this site: starts with exactly one `/`, with no scheme, no
/// backslash and no control character, so it can never name another host
/// (`//evil.example`, `/\evil.example`, `https://…`). Anything else becomes `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    /// Never fails: an unusable value is `/`.
    pub fn parse(raw: Option<&str>) -> Self {
        match raw {
            Some(path) if Self::is_local_path(path) => Self(path.to_owned()),
            _ => Self("/".into()),
        }
    }

    fn is_local_path(path: &str) -> bool {
        path.starts_with('/')
            && !path.starts_with("//")
            && path.len() <= 2048
            && !path.contains('\\')
            && !path.chars().any(|c| c.is_control() || c.is_whitespace())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::ReturnTo;

    #[test]
    fn only_a_local_path_survives() {
        for ok in ["/", "/#/admin", "/#/sessions?x=1", "/a/b"] {
            assert_eq!(ReturnTo::parse(Some(ok)).as_str(), ok);
        }
        for bad in [
            "",
            "//evil.example",
            "https://evil.example/",
            "/\\evil.example",
            "\\\\evil.example",
            "evil.example",
            "javascript:alert(1)",
            "/\t/evil.example",
            "/ /x",
        ] {
            assert_eq!(ReturnTo::parse(Some(bad)).as_str(), "/", "{bad:?}");
        }
        assert_eq!(ReturnTo::parse(None).as_str(), "/");
    }
}
