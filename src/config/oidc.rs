//! `TETHER_OIDC_PROVIDERS` and the `TETHER_OIDC_<ID>_…` variables: the
//! OpenID Connect providers users may sign in through, parsed once.

use secrecy::SecretString;

use super::{invalid, ConfigError};
use crate::domain::RoleName;

/// A provider's id: lowercase ASCII letters, digits and `-` (it appears in
/// URLs and, upper-cased, in variable names). `password` is the local sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProviderId(String);

impl ProviderId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 32
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && raw != "password";
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "{raw:?} is not a provider id (1-32 lowercase letters, digits or '-'; not \"password\")"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `TETHER_OIDC_<ENV_ID>_<suffix>`, ENV_ID upper-cased with `-` → `_`.
    pub fn var(&self, suffix: &str) -> String {
        format!(
            "TETHER_OIDC_{}_{suffix}",
            self.0.to_ascii_uppercase().replace('-', "_")
        )
    }
}

impl std::fmt::Display for ProviderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One OpenID Connect provider, as configured.
#[derive(Debug, Clone)]
pub struct OidcProviderConfig {
    pub id: ProviderId,
    /// Exactly as the provider writes it in `iss` (discovery at
    /// `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    pub client_id: String,
    /// `None`: a public client, protected by PKCE alone.
    pub client_secret: Option<SecretString>,
    /// The button text (`_NAME`; default the id).
    pub name: String,
    /// `_SCOPES`, space- or comma-separated; always holds `openid`.
    pub scopes: Vec<String>,
    /// `_ROLES_CLAIM`: a claim holding a list of tether role names, applied
    /// at every sign-in.
    pub roles_claim: Option<String>,
    /// `_DEFAULT_ROLES`: the roles of a user created at first sign-in when no
    /// roles claim applies.
    pub default_roles: Vec<RoleName>,
}

pub(super) fn providers(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<OidcProviderConfig>, ConfigError> {
    const LIST: &str = "TETHER_OIDC_PROVIDERS";
    let Some(list) = get(LIST) else {
        return Ok(Vec::new());
    };
    let mut providers: Vec<OidcProviderConfig> = Vec::new();
    for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let id = ProviderId::parse(raw).map_err(|reason| invalid(LIST, reason))?;
        if providers.iter().any(|p| p.id == id) {
            return Err(invalid(LIST, format!("{raw:?} is listed twice")));
        }
        providers.push(provider(get, id)?);
    }
    Ok(providers)
}

fn provider(
    get: &impl Fn(&str) -> Option<String>,
    id: ProviderId,
) -> Result<OidcProviderConfig, ConfigError> {
    let required = |suffix: &str| {
        let var = id.var(suffix);
        get(&var).ok_or_else(|| invalid(var, "is required for this provider"))
    };
    let issuer_var = id.var("ISSUER");
    let issuer = required("ISSUER")?.trim().to_owned();
    check_issuer(&issuer).map_err(|reason| invalid(issuer_var, reason))?;
    let scopes = match get(&id.var("SCOPES")) {
        Some(v) => {
            let mut scopes: Vec<String> = v
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if !scopes.iter().any(|s| s == "openid") {
                scopes.insert(0, "openid".into());
            }
            scopes
        }
        None => vec!["openid".into(), "profile".into(), "email".into()],
    };
    let roles_var = id.var("DEFAULT_ROLES");
    let default_roles = match get(&roles_var) {
        Some(v) => v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|r| RoleName::parse(r).map_err(|e| invalid(roles_var.clone(), e.0)))
            .collect::<Result<_, _>>()?,
        None => vec![RoleName::parse("user").expect("a valid role name")],
    };
    Ok(OidcProviderConfig {
        client_id: required("CLIENT_ID")?.trim().to_owned(),
        client_secret: get(&id.var("CLIENT_SECRET")).map(SecretString::from),
        name: get(&id.var("NAME")).unwrap_or_else(|| id.to_string()),
        roles_claim: get(&id.var("ROLES_CLAIM")).map(|c| c.trim().to_owned()),
        issuer,
        scopes,
        default_roles,
        id,
    })
}

/// `https://`, or `http://` on a loopback host (development and tests); no
/// query or fragment (the issuer is compared with `iss` exactly).
fn check_issuer(issuer: &str) -> Result<(), String> {
    let url = openidconnect::url::Url::parse(issuer)
        .map_err(|e| format!("{issuer:?} is not a URL ({e})"))?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!("{issuer:?} must have no user, query or fragment"));
    }
    let loopback = match url.host() {
        Some(openidconnect::url::Host::Domain(d)) => d == "localhost",
        Some(openidconnect::url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(openidconnect::url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "{issuer:?} must be https:// (http:// only on a loopback address)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<Vec<OidcProviderConfig>, ConfigError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        providers(&|k: &str| map.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn providers_are_read_in_order_with_their_defaults() {
        let list = parse(&[
            ("TETHER_OIDC_PROVIDERS", "corp-sso, google"),
            (
                "TETHER_OIDC_CORP_SSO_ISSUER",
                "http://127.0.0.1:9000/realms/x",
            ),
            ("TETHER_OIDC_CORP_SSO_CLIENT_ID", "tether"),
            ("TETHER_OIDC_CORP_SSO_CLIENT_SECRET", "s"),
            ("TETHER_OIDC_CORP_SSO_ROLES_CLAIM", "tether_roles"),
            ("TETHER_OIDC_CORP_SSO_DEFAULT_ROLES", "user,messages-admin"),
            ("TETHER_OIDC_GOOGLE_ISSUER", "https://accounts.google.com"),
            ("TETHER_OIDC_GOOGLE_CLIENT_ID", "g"),
            ("TETHER_OIDC_GOOGLE_NAME", "Google"),
            ("TETHER_OIDC_GOOGLE_SCOPES", "email"),
        ])
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].id.as_str(), "corp-sso");
        assert_eq!(list[0].name, "corp-sso");
        assert_eq!(list[0].scopes, ["openid", "profile", "email"]);
        assert_eq!(list[0].roles_claim.as_deref(), Some("tether_roles"));
        assert_eq!(list[0].default_roles.len(), 2);
        assert!(list[0].client_secret.is_some());
        assert_eq!(list[1].name, "Google");
        assert_eq!(list[1].scopes, ["openid", "email"]);
        assert!(list[1].client_secret.is_none());
        assert_eq!(list[1].default_roles[0].as_str(), "user");
    }

    #[test]
    fn invalid_settings_name_their_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("TETHER_OIDC_PROVIDERS", "Bad_Id")],
                "TETHER_OIDC_PROVIDERS",
            ),
            (
                &[("TETHER_OIDC_PROVIDERS", "password")],
                "TETHER_OIDC_PROVIDERS",
            ),
            (&[("TETHER_OIDC_PROVIDERS", "a")], "TETHER_OIDC_A_ISSUER"),
            (
                &[
                    ("TETHER_OIDC_PROVIDERS", "a"),
                    ("TETHER_OIDC_A_ISSUER", "http://idp.example.com"),
                    ("TETHER_OIDC_A_CLIENT_ID", "c"),
                ],
                "TETHER_OIDC_A_ISSUER",
            ),
            (
                &[
                    ("TETHER_OIDC_PROVIDERS", "a"),
                    ("TETHER_OIDC_A_ISSUER", "https://idp.example.com"),
                ],
                "TETHER_OIDC_A_CLIENT_ID",
            ),
            (
                &[
                    ("TETHER_OIDC_PROVIDERS", "a"),
                    ("TETHER_OIDC_A_ISSUER", "https://idp.example.com"),
                    ("TETHER_OIDC_A_CLIENT_ID", "c"),
                    ("TETHER_OIDC_A_DEFAULT_ROLES", "Admin"),
                ],
                "TETHER_OIDC_A_DEFAULT_ROLES",
            ),
        ];
        for (pairs, var) in cases {
            let err = parse(pairs).unwrap_err();
            assert_eq!(err.var, *var, "{pairs:?}");
        }
    }

    #[test]
    fn the_issuer_is_https_or_loopback_http() {
        assert!(check_issuer("https://login.microsoftonline.com/t/v2.0").is_ok());
        assert!(check_issuer("http://localhost:8081/realms/r").is_ok());
        assert!(check_issuer("http://[::1]:9").is_ok());
        assert!(check_issuer("http://10.0.0.1").is_err());
        assert!(check_issuer("ftp://127.0.0.1").is_err());
        assert!(check_issuer("https://idp.example.com/?x=1").is_err());
        assert!(check_issuer("not a url").is_err());
    }
}
