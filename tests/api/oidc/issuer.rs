//! A small signing issuer inside the test process: discovery, its keys, and
//! a token endpoint that answers with the ID token the test queued. It makes
//! the tokens an honest provider never sends (tampered, wrong audience,
//! expired, `alg: none`…) and logout tokens of every shape.

use std::sync::{Arc, Mutex};

use actix_web::{dev::ServerHandle, web, App, HttpResponse, HttpServer};
use base64::Engine as _;
use jsonwebtoken::{jwk::Jwk, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::{CLIENT_ID, PROVIDER};
use crate::helpers::TestApp;

const KEY_ID: &str = "test-key-1";
/// The id the other key is published under once [`SigningIssuer::rotate`]d.
const NEW_KEY_ID: &str = "test-key-2";

pub struct SigningIssuer {
    pub issuer: String,
    key: EncodingKey,
    /// A key the issuer does not publish: a signature with it is forged.
    other_key: EncodingKey,
    next_id_token: Arc<Mutex<Option<String>>>,
    /// The published key set (`/jwks`).
    jwks: Arc<Mutex<Value>>,
    handle: ServerHandle,
}

impl Drop for SigningIssuer {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

fn key(pem: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(pem.as_bytes()).expect("test RSA key")
}

impl SigningIssuer {
    /// Listens on `port` (0: any).
    pub async fn start_on(port: u16) -> SigningIssuer {
        let key = key(include_str!("keys/issuer.pem"));
        let other_key = key_other();
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).expect("JWK");
        jwk.common.key_id = Some(KEY_ID.into());
        let next_id_token: Arc<Mutex<Option<String>>> = Arc::default();
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind issuer");
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let discovery = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
        });
        let jwks = Arc::new(Mutex::new(json!({ "keys": [jwk] })));
        let (queued, published) = (next_id_token.clone(), jwks.clone());
        let server = HttpServer::new(move || {
            let (discovery, jwks, queued) = (discovery.clone(), published.clone(), queued.clone());
            App::new()
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(move || {
                        let d = discovery.clone();
                        async move { HttpResponse::Ok().json(d) }
                    }),
                )
                .route(
                    "/jwks",
                    web::get().to(move || {
                        let k = jwks.lock().unwrap().clone();
                        async move { HttpResponse::Ok().json(k) }
                    }),
                )
                .route(
                    "/token",
                    web::post().to(move || {
                        let token = queued.lock().unwrap().take();
                        async move {
                            match token {
                                Some(id_token) => HttpResponse::Ok().json(json!({
                                    "access_token": "test-access-token",
                                    "token_type": "Bearer",
                                    "expires_in": 300,
                                    "id_token": id_token,
                                })),
                                None => HttpResponse::BadRequest()
                                    .json(json!({ "error": "invalid_grant" })),
                            }
                        }
                    }),
                )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        SigningIssuer {
            issuer,
            key,
            other_key,
            next_id_token,
            jwks,
            handle,
        }
    }

    /// Publishes the other key too (as a provider rotating its keys does),
    /// under a new key id; [`Self::sign_with_new_key`] signs with it.
    pub fn rotate(&self) {
        let mut jwk = Jwk::from_encoding_key(&self.other_key, Algorithm::RS256).expect("JWK");
        jwk.common.key_id = Some(NEW_KEY_ID.into());
        let mut jwks = self.jwks.lock().unwrap();
        jwks["keys"].as_array_mut().unwrap().push(json!(jwk));
    }

    /// `claims` signed with the key [`Self::rotate`] publishes.
    pub fn sign_with_new_key(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(NEW_KEY_ID.into());
        jsonwebtoken::encode(&header, claims, &self.other_key).expect("sign")
    }

    pub async fn start() -> SigningIssuer {
        Self::start_on(0).await
    }

    /// The next code exchange answers with this ID token.
    pub fn queue_id_token(&self, token: String) {
        *self.next_id_token.lock().unwrap() = Some(token);
    }

    /// Claims of a valid ID token for `sub` with `nonce`.
    pub fn id_claims(&self, sub: &str, nonce: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": sub,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "preferred_username": sub,
        })
    }

    /// Claims of a valid logout token.
    pub fn logout_claims(&self, sub: Option<&str>, sid: Option<&str>) -> Value {
        let mut claims = json!({
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": chrono::Utc::now().timestamp(),
            "exp": chrono::Utc::now().timestamp() + 120,
            "jti": uuid::Uuid::new_v4().to_string(),
            "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
        });
        if let Some(sub) = sub {
            claims["sub"] = sub.into();
        }
        if let Some(sid) = sid {
            claims["sid"] = sid.into();
        }
        claims
    }

    /// `claims` signed with the published key.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(KEY_ID.into());
        jsonwebtoken::encode(&header, claims, &self.key).expect("sign")
    }

    /// `claims` signed with a key the issuer never published, under its key id.
    pub fn forge(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(KEY_ID.into());
        jsonwebtoken::encode(&header, claims, &self.other_key).expect("sign")
    }

    /// A valid token whose payload was changed after signing.
    pub fn tampered(&self, claims: &Value, changed: &Value) -> String {
        let signed = self.sign(claims);
        let parts: Vec<&str> = signed.split('.').collect();
        format!("{}.{}.{}", parts[0], b64(changed), parts[2])
    }
}

fn key_other() -> EncodingKey {
    key(include_str!("keys/other.pem"))
}

fn b64(value: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

/// An unsigned token (`alg: none`), as an attacker would send it.
pub fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "kid": KEY_ID })),
        b64(claims)
    )
}

/// tether's `start` through `browser`: the authorization URL's `state` and `nonce`.
pub async fn start(
    browser: &super::OidcBrowser,
    app: &TestApp,
    return_to: &str,
) -> (String, String) {
    let url = app.url(&format!(
        "/api/auth/oidc/{PROVIDER}/start?return_to={}",
        super::urlencode(return_to)
    ));
    let (status, location) = browser.get(&url).await;
    assert_eq!(status, reqwest::StatusCode::FOUND);
    let q = super::query(&location.expect("Location"));
    (q["state"].clone(), q["nonce"].clone())
}

/// tether's callback for `state` with some code; where it sent the browser.
pub async fn callback(browser: &super::OidcBrowser, app: &TestApp, state: &str) -> String {
    let url = app.url(&format!(
        "/api/auth/oidc/{PROVIDER}/callback?code=test-code&state={}",
        super::urlencode(state)
    ));
    let (status, location) = browser.get(&url).await;
    assert_eq!(
        status,
        reqwest::StatusCode::FOUND,
        "a callback always redirects"
    );
    let location = location.expect("Location");
    location
        .strip_prefix(&app.url(""))
        .map(str::to_owned)
        .unwrap_or(location)
}
