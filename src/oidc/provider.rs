//! One configured OpenID Connect provider: its discovered metadata and keys
//! (fetched in the background, retried until it answers, refreshed hourly),
//! the authorization URL for a new sign-in, and the code exchange with every
//! check of the ID token, all through the `openidconnect` crate.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use openidconnect::{
    core::{
        CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClientAuthMethod,
        CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken,
        CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
    },
    reqwest, AdditionalClaims, AuthType, AuthorizationCode, ClaimsVerificationError, Client,
    ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IdTokenFields, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    Scope, SignatureVerificationError, StandardErrorResponse, StandardTokenResponse,
    TokenResponse as _,
};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};

use crate::config::OidcProviderConfig;

/// Claims beyond the standard ones (`sid`, the roles claim), kept as JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    pub other: HashMap<String, serde_json::Value>,
}
impl AdditionalClaims for ExtraClaims {}

type IdFields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type TokenResponse = StandardTokenResponse<IdFields, CoreTokenType>;
/// The client as built from discovered metadata: the authorization endpoint
/// is always set, the token and userinfo endpoints may be.
type OidcClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// ID and logout tokens must be signed with one of these: never `none`, and
/// no HMAC (a shared secret is not the provider's key).
pub const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 8] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
];

/// How long a request to a provider may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// Discovery is retried this often until it succeeds …
const RETRY_DISCOVERY: Duration = Duration::from_secs(5);
/// … and refreshed this often after (new signing keys).
const REFRESH_DISCOVERY: Duration = Duration::from_secs(3600);
/// Keys are fetched for an unknown key id at most this often.
const KEY_REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(60);
/// Start-up waits at most this long for the first attempt.
const FIRST_DISCOVERY_WAIT: Duration = Duration::from_secs(2);

/// What discovery found: the client, and the provider's keys as JSON (for
/// logout tokens, which the client cannot parse).
pub struct Discovered {
    client: OidcClient,
    pub jwks: jsonwebtoken::jwk::JwkSet,
}

/// A new sign-in's secrets, kept on the server until the callback.
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// What a verified ID token says about the person.
#[derive(Debug, Clone)]
pub struct VerifiedLogin {
    pub subject: String,
    /// The provider's session id (`sid`), for back-channel logout.
    pub sid: Option<String>,
    pub preferred_username: Option<String>,
    pub email: Option<String>,
    /// The roles claim's names, when the provider is configured with one and
    /// the token carries it.
    pub roles: Option<Vec<String>>,
}

/// Why a callback could not sign the user in, as the browser is told it.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("provider not discovered yet")]
    Unavailable,
    /// The token endpoint refused the code or could not be reached.
    #[error("code exchange failed: {0}")]
    Exchange(String),
    /// No ID token, or one that fails a check (signature, iss, aud, azp,
    /// nonce, expiry, algorithm).
    #[error("invalid ID token: {0}")]
    IdToken(String),
}

pub struct OidcProvider {
    pub config: OidcProviderConfig,
    pub redirect_uri: String,
    http: reqwest::Client,
    discovered: RwLock<Option<Arc<Discovered>>>,
    /// When the keys were last fetched because a token named an unknown key.
    keys_refreshed: tokio::sync::Mutex<Option<std::time::Instant>>,
}

impl OidcProvider {
    /// `public_origin`: where users reach tether (the redirect URI's origin).
    pub fn new(config: OidcProviderConfig, public_origin: &str) -> anyhow::Result<Self> {
        let redirect_uri = format!("{public_origin}/api/auth/oidc/{}/callback", config.id);
        let http = reqwest::Client::builder()
            // Following redirects would let a provider's answer send tether anywhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()?;
        Ok(Self {
            config,
            redirect_uri,
            http,
            discovered: RwLock::new(None),
            keys_refreshed: tokio::sync::Mutex::new(None),
        })
    }

    pub fn discovered(&self) -> Option<Arc<Discovered>> {
        self.discovered
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Fetches the metadata and keys once; on success they replace the old.
    pub async fn discover(&self) -> anyhow::Result<()> {
        let issuer = IssuerUrl::new(self.config.issuer.clone())?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http).await?;
        let jwks = serde_json::from_value(serde_json::to_value(metadata.jwks())?)?;
        let secret = self
            .config
            .client_secret
            .as_ref()
            .map(|s| ClientSecret::new(s.expose_secret().to_owned()));
        let confidential = secret.is_some();
        let post_only = metadata
            .token_endpoint_auth_methods_supported()
            .is_some_and(|methods| {
                !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                    && methods.contains(&CoreClientAuthMethod::ClientSecretPost)
            });
        let mut client: OidcClient = Client::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            secret,
        )
        .set_redirect_uri(RedirectUrl::new(self.redirect_uri.clone())?);
        // client_secret_basic unless the provider takes only _post; a public
        // client sends its id in the body.
        if post_only || !confidential {
            client = client.set_auth_type(AuthType::RequestBody);
        }
        *self.discovered.write().unwrap_or_else(|p| p.into_inner()) =
            Some(Arc::new(Discovered { client, jwks }));
        Ok(())
    }

    /// Fetches the metadata and keys again because a token named a key not
    /// known yet; at most once a minute, so a stream of forged tokens cannot
    /// make tether hammer the provider. `true` if they were fetched.
    pub async fn refresh_keys(&self) -> bool {
        let mut last = self.keys_refreshed.lock().await;
        if last.is_some_and(|at| at.elapsed() < KEY_REFRESH_MIN_INTERVAL) {
            return false;
        }
        *last = Some(std::time::Instant::now());
        match self.discover().await {
            Ok(()) => true,
            Err(e) => {
                log::warn!(
                    "event=oidc_discovery_failed provider={} error=\"{e:#}\"",
                    self.config.id
                );
                false
            }
        }
    }

    /// Discovers now, then in the background: retried every few seconds until
    /// the provider answers (it answers 503 meanwhile), refreshed hourly.
    /// Never blocks start-up for longer than one attempt.
    pub async fn start_discovery(self: &Arc<Self>) {
        let first = match tokio::time::timeout(FIRST_DISCOVERY_WAIT, self.discover()).await {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!("no answer within {FIRST_DISCOVERY_WAIT:?}")),
        };
        if let Err(e) = &first {
            log::warn!(
                "event=oidc_discovery_failed provider={} issuer={} error=\"{e:#}\" note=\"answers 503 until discovery succeeds; retrying\"",
                self.config.id,
                self.config.issuer
            );
        } else {
            log::info!("event=oidc_discovered provider={}", self.config.id);
        }
        let weak = Arc::downgrade(self);
        let mut ok = first.is_ok();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(if ok {
                    REFRESH_DISCOVERY
                } else {
                    RETRY_DISCOVERY
                })
                .await;
                let Some(provider) = weak.upgrade() else {
                    return;
                };
                match provider.discover().await {
                    Ok(()) => {
                        if !ok {
                            log::info!("event=oidc_discovered provider={}", provider.config.id);
                        }
                        ok = true;
                    }
                    Err(e) => {
                        // A provider already discovered keeps its old metadata.
                        log::warn!(
                            "event=oidc_discovery_failed provider={} error=\"{e:#}\"",
                            provider.config.id
                        );
                        ok = provider.discovered().is_some() && ok;
                    }
                }
            }
        });
    }

    /// The authorization URL for a new sign-in (code flow, PKCE S256, fresh
    /// state and nonce); `None` until discovery has succeeded.
    pub fn authorize(&self) -> Option<Authorization> {
        let discovered = self.discovered()?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = discovered.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in self.config.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Some(Authorization {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code (with the PKCE verifier) and checks the ID token:
    /// signature with the provider's keys, `iss`, `aud`, `azp`, `nonce`,
    /// expiry and an allowed algorithm.
    pub async fn exchange(
        &self,
        code: String,
        pkce_verifier: String,
        nonce: String,
    ) -> Result<VerifiedLogin, ExchangeError> {
        let discovered = self.discovered().ok_or(ExchangeError::Unavailable)?;
        let client = &discovered.client;
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| ExchangeError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| ExchangeError::Exchange(describe_token_error(&e)))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| ExchangeError::IdToken("the token response has no ID token".into()))?;
        let nonce = Nonce::new(nonce);
        let verify = |discovered: &Discovered| {
            let verifier = discovered
                .client
                .id_token_verifier()
                .set_allowed_algs(ALLOWED_ALGS);
            id_token.claims(&verifier, &nonce).cloned()
        };
        let claims = match verify(&discovered) {
            // Signed with a key published since the last discovery: fetch
            // the keys again (at most once a minute) and check once more.
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) if self.refresh_keys().await => {
                let refreshed = self.discovered().ok_or(ExchangeError::Unavailable)?;
                verify(&refreshed)
            }
            other => other,
        }
        .map_err(|e| ExchangeError::IdToken(e.to_string()))?;
        let extra = &claims.additional_claims().other;
        let text = |name: &str| extra.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        Ok(VerifiedLogin {
            subject: claims.subject().as_str().to_owned(),
            sid: text("sid"),
            preferred_username: claims.preferred_username().map(|u| u.as_str().to_owned()),
            email: claims.email().map(|e| e.as_str().to_owned()),
            roles: self
                .config
                .roles_claim
                .as_ref()
                .and_then(|claim| extra.get(claim))
                .map(role_names),
        })
    }
}

/// A roles claim: a list of names, or one space-separated string.
fn role_names(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        serde_json::Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// A token endpoint failure, for the log: never the response body, which
/// may hold tokens.
fn describe_token_error<E: std::error::Error>(
    e: &openidconnect::RequestTokenError<E, StandardErrorResponse<CoreErrorResponseType>>,
) -> String {
    use openidconnect::RequestTokenError as R;
    match e {
        R::ServerResponse(r) => format!("provider refused: {}", r.error().as_ref()),
        R::Request(e) => format!("request failed: {e}"),
        R::Parse(_, _) => "unreadable token response".into(),
        R::Other(what) => what.clone(),
    }
}
