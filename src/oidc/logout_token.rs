//! Back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0, §2.4
//! and §2.6), verified with `jsonwebtoken` against the provider's discovered
//! keys: `openidconnect` parses ID tokens only, and a logout token need not
//! carry what an ID token must (`sub`, `exp`).

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::provider::Discovered;
use crate::config::OidcProviderConfig;

/// The `events` member that makes a JWT a logout token.
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A logout token older than this (by `iat`) is refused.
const MAX_AGE_SECS: i64 = 600;
/// Clock skew allowed on `iat` and `exp`.
const LEEWAY_SECS: u64 = 60;

/// Asymmetric algorithms only, as for ID tokens: never `none` or HMAC.
const ALLOWED: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// Why a logout token was refused (safe to log: never quotes the token).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Signed with a key the provider did not publish when last asked.
    #[error("no matching signing key")]
    NoMatchingKey,
    #[error("{0}")]
    Invalid(String),
}

impl From<String> for Refused {
    fn from(why: String) -> Self {
        Refused::Invalid(why)
    }
}

impl From<&str> for Refused {
    fn from(why: &str) -> Self {
        Refused::Invalid(why.to_owned())
    }
}

/// What a valid logout token asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logout {
    pub jti: String,
    pub sub: Option<String>,
    pub sid: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iat: i64,
    jti: Option<String>,
    sub: Option<String>,
    sid: Option<String>,
    nonce: Option<serde_json::Value>,
    events: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Verifies `token`: signature with the provider's keys and an allowed
/// algorithm, `iss`, `aud`, `iat` (not in the future, at most 10 minutes
/// old), `exp` if present, `jti`, the back-channel `events` member, `sid`
/// and/or `sub`, and no `nonce`. The error says which check failed.
pub fn verify(
    token: &str,
    provider: &OidcProviderConfig,
    keys: &Discovered,
) -> Result<Logout, Refused> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("header: {e}"))?;
    if !ALLOWED.contains(&header.alg) {
        return Err(format!("algorithm {:?} not allowed", header.alg).into());
    }
    let jwk = match &header.kid {
        Some(kid) => keys.jwks.find(kid),
        // Without a kid, only a provider with exactly one key can be meant.
        None if keys.jwks.keys.len() == 1 => keys.jwks.keys.first(),
        None => None,
    }
    .ok_or(Refused::NoMatchingKey)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key: {e}"))?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[&provider.issuer]);
    validation.set_audience(&[&provider.client_id]);
    validation.set_required_spec_claims(&["iss", "aud", "iat"]);
    validation.leeway = LEEWAY_SECS;
    let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map_err(|e| format!("{e}"))?
        .claims;
    let now = chrono::Utc::now().timestamp();
    if claims.iat > now + LEEWAY_SECS as i64 {
        return Err("iat is in the future".into());
    }
    if claims.iat < now - MAX_AGE_SECS {
        return Err("iat is too old".into());
    }
    if claims.nonce.is_some() {
        return Err("a logout token must not have a nonce".into());
    }
    let has_event = claims
        .events
        .as_ref()
        .and_then(|events| events.get(BACKCHANNEL_EVENT))
        .is_some_and(serde_json::Value::is_object);
    if !has_event {
        return Err("no back-channel logout event".into());
    }
    let jti = claims.jti.filter(|j| !j.is_empty()).ok_or("no jti")?;
    if claims.sub.is_none() && claims.sid.is_none() {
        return Err("neither sub nor sid".into());
    }
    Ok(Logout {
        jti,
        sub: claims.sub,
        sid: claims.sid,
    })
}
