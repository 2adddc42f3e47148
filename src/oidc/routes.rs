//! `GET /api/auth/providers`, and per provider `GET …/oidc/{id}/start`,
//! `GET …/oidc/{id}/callback` and `POST …/oidc/{id}/backchannel-logout`.

use std::{collections::HashMap, time::Duration};

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    flow::{Binding, Flow},
    linking, logout,
    logout_token::{self, Refused},
    provider::{ExchangeError, OidcProvider, VerifiedLogin},
    store::{digest, StoreError},
};
use crate::{
    auth::{
        sign_in::{start_session, SignInMethod},
        throttle::address_key,
    },
    db::DbError,
    domain::ReturnTo,
    error::{ApiError, ErrorBody},
    error_docs,
    metrics::LoginOutcome,
    sessions::{client::client_ip, ProviderLink},
    state::AppState,
    users::UserError,
};

/// `start`s one address may make per window before it gets 429: each
/// leaves a record in the store for up to ten minutes.
const START_LIMIT: u64 = 30;
const START_WINDOW: Duration = Duration::from_secs(60);
/// Logout token ids are remembered this long (longer than a token is accepted).
const JTI_TTL: Duration = Duration::from_secs(900);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/auth/providers", web::get().to(providers))
        .route("/api/auth/oidc/{id}/start", web::get().to(start))
        .route("/api/auth/oidc/{id}/callback", web::get().to(callback))
        .service(
            web::resource("/api/auth/oidc/{id}/backchannel-logout")
                .app_data(
                    web::FormConfig::default()
                        .limit(64 * 1024)
                        .error_handler(|_, _| {
                            ApiError::BadRequest("form field logout_token is required".into())
                                .into()
                        }),
                )
                .route(web::post().to(backchannel_logout)),
        );
}

/// The ways to sign in: password first, then each configured provider.
#[derive(Serialize, ToSchema)]
pub struct Providers {
    pub providers: Vec<SignInProvider>,
}

/// One way to sign in.
#[derive(Serialize, ToSchema)]
pub struct SignInProvider {
    /// `password`, or a provider id from `TETHER_OIDC_PROVIDERS`.
    pub id: String,
    /// `password` or `oidc`.
    pub kind: &'static str,
    /// The button text (`oidc` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the browser goes to sign in (`oidc` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_url: Option<String>,
}

/// The ways to sign in.
#[utoipa::path(
    get, path = "/api/auth/providers", tag = "auth", operation_id = "sign_in_providers",
    responses((status = 200, description = "Password first, then the OpenID Connect providers in `TETHER_OIDC_PROVIDERS` order.", body = Providers)),
)]
pub(crate) async fn providers(state: web::Data<AppState>) -> HttpResponse {
    let mut providers = vec![SignInProvider {
        id: "password".into(),
        kind: "password",
        name: None,
        start_url: None,
    }];
    for p in &state.oidc.providers {
        providers.push(SignInProvider {
            id: p.config.id.as_str().to_owned(),
            kind: "oidc",
            name: Some(p.config.name.clone()),
            start_url: Some(format!("/api/auth/oidc/{}/start", p.config.id)),
        });
    }
    HttpResponse::Ok().json(Providers { providers })
}

fn provider<'a>(state: &'a AppState, id: &str) -> Result<&'a OidcProvider, ApiError> {
    state
        .oidc
        .provider(id)
        .map(|p| p.as_ref())
        .ok_or(ApiError::NotFound)
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Unavailable(e.into())
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// Where to land after signing in: a path starting with one `/`;
    /// anything else (another site, `//host`, a scheme, a backslash) becomes `/`.
    return_to: Option<String>,
}

/// Start signing in through a provider: 302 to its authorization endpoint
/// (authorization code with PKCE S256; state, nonce and verifier stay on the
/// server for 10 minutes, bound to this browser by a cookie, usable once).
#[utoipa::path(
    get, path = "/api/auth/oidc/{id}/start", tag = "auth", operation_id = "oidc_start",
    params(("id" = String, Path, description = "A provider id from `TETHER_OIDC_PROVIDERS`."), StartQuery),
    responses(
        (status = 302, description = "To the provider's authorization endpoint; sets the binding cookie."),
        (status = 404, description = "`not_found`: no such provider.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: more than 30 starts from this address (IPv6: its /64) in a minute; `Retry-After` says when to retry.", body = ErrorBody),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
pub(crate) async fn start(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, ApiError> {
    let provider = provider(&state, &id)?;
    if let Some(ip) = client_ip(&req, &state.config.trusted_proxies) {
        let key = format!("oidc:start:{}", address_key(ip));
        if state.oidc.store.count(&key, START_WINDOW).await? > START_LIMIT {
            return Err(ApiError::RateLimited(START_WINDOW));
        }
    }
    let auth = provider.authorize().ok_or_else(|| {
        ApiError::Unavailable(anyhow::anyhow!("provider {} not discovered yet", *id))
    })?;
    let secure = state.config.cookie_secure;
    let binding = Binding::of(&req, secure);
    let return_to = ReturnTo::parse(query.return_to.as_deref());
    Flow::new(
        &id,
        &binding,
        auth.nonce,
        auth.pkce_verifier,
        return_to.as_str().to_owned(),
    )
    .save(&state.oidc.store, &auth.state)
    .await?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, auth.url))
        .cookie(binding.cookie(secure))
        .finish())
}

/// Why a callback failed: `code` is what the browser is told
/// (`/#/signin?error=<code>`), `why` what the log says (never a token).
struct Failure {
    code: &'static str,
    why: String,
}

/// The `tether_logins_total` outcome of a failed callback.
fn failure_outcome(code: &str) -> LoginOutcome {
    match code {
        "unavailable" => LoginOutcome::Unavailable,
        "state" => LoginOutcome::BadRequest,
        _ => LoginOutcome::InvalidCredentials,
    }
}

fn fail(code: &'static str, why: impl Into<String>) -> Failure {
    Failure {
        code,
        why: why.into(),
    }
}

/// Where the provider sends the browser back. Every outcome is a 302: to
/// `return_to` with a new session, or to `/#/signin?error=<code>` (`state`,
/// `denied`, `exchange`, `token`, `disabled`, `account`, `provider`,
/// `unavailable`) with none. Never a 5xx.
#[utoipa::path(
    get, path = "/api/auth/oidc/{id}/callback", tag = "auth", operation_id = "oidc_callback",
    params(
        ("id" = String, Path, description = "A provider id from `TETHER_OIDC_PROVIDERS`."),
        ("code" = Option<String>, Query, description = "The authorization code."),
        ("state" = Option<String>, Query, description = "The state `start` sent."),
        ("error" = Option<String>, Query, description = "The provider's refusal, instead of a code."),
        ("iss" = Option<String>, Query, description = "The issuer (RFC 9207); must be the provider's."),
    ),
    responses((status = 302, description = "To `return_to` with a new session cookie, or to `/#/signin?error=<code>`.")),
)]
pub(crate) async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let to = match finish_sign_in(&req, &state, &id, &query).await {
        Ok(return_to) => {
            state.metrics.provider_login(&id, LoginOutcome::Success);
            return_to
        }
        Err(Failure { code, why }) => {
            if state.oidc.provider(&id).is_some() {
                state.metrics.provider_login(&id, failure_outcome(code));
            }
            log::info!(
                "event=oidc_sign_in_failed provider={} error={code} reason=\"{why}\"",
                *id
            );
            format!("/#/signin?error={code}")
        }
    };
    HttpResponse::Found()
        .insert_header((header::LOCATION, to))
        .finish()
}

async fn finish_sign_in(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    query: &HashMap<String, String>,
) -> Result<String, Failure> {
    let provider = state
        .oidc
        .provider(id)
        .ok_or_else(|| fail("provider", "unknown provider"))?;
    let flow = take_flow(req, state, id, query).await?;
    let (user_id, login) = verified_user(state, provider, query, &flow).await?;
    let link = ProviderLink {
        provider: id.to_owned(),
        sid: login.sid.clone(),
    };
    match start_session(req, state, user_id, SignInMethod::Provider(link)).await {
        Ok(Some(_)) => {}
        Ok(None) => return Err(fail("disabled", format!("user {user_id} is disabled"))),
        Err(ApiError::Unavailable(e)) => return Err(fail("unavailable", format!("{e:#}"))),
        Err(e) => return Err(fail("account", e.to_string())),
    }
    if let Some(sid) = &login.sid {
        // Lets a logout token that names only the provider session find the user.
        let key = logout::sid_key(id, sid);
        let ttl = state.config.session_absolute;
        if let Err(e) = state.oidc.store.put(&key, &user_id.to_string(), ttl).await {
            log::warn!("event=oidc_sid_not_recorded provider={id} error={e}");
        }
    }
    Ok(flow.return_to)
}

/// Who the provider's answer says signed in: the code exchanged, the ID
/// token checked, the user found or created.
async fn verified_user(
    state: &AppState,
    provider: &OidcProvider,
    query: &HashMap<String, String>,
    flow: &Flow,
) -> Result<(uuid::Uuid, VerifiedLogin), Failure> {
    // RFC 9207: a provider that names itself must name the one asked.
    if query
        .get("iss")
        .is_some_and(|iss| *iss != provider.config.issuer)
    {
        return Err(fail("token", "the iss parameter names another issuer"));
    }
    if let Some(error) = query.get("error") {
        return Err(fail("denied", format!("the provider answered {error:?}")));
    }
    let code = query
        .get("code")
        .ok_or_else(|| fail("exchange", "no code"))?;
    let login = provider
        .exchange(code.clone(), flow.pkce_verifier.clone(), flow.nonce.clone())
        .await
        .map_err(|e| match e {
            ExchangeError::Unavailable => fail("unavailable", e.to_string()),
            ExchangeError::Exchange(_) => fail("exchange", e.to_string()),
            ExchangeError::IdToken(_) => fail("token", e.to_string()),
        })?;
    let user_id = linking::user_for(state, provider, &login)
        .await
        .map_err(|e| match e {
            UserError::Db(DbError::Unavailable(_)) | UserError::Bus(_) => {
                fail("unavailable", e.to_string())
            }
            e => fail("account", format!("{e:#}")),
        })?;
    Ok((user_id, login))
}

/// The sign-in this callback finishes: its `state` known, not used before,
/// started by this browser (binding cookie) for this provider.
async fn take_flow(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    query: &HashMap<String, String>,
) -> Result<Flow, Failure> {
    let sent_state = query
        .get("state")
        .ok_or_else(|| fail("state", "no state"))?;
    let flow = Flow::take(&state.oidc.store, sent_state)
        .await
        .map_err(|e| fail("unavailable", e.to_string()))?
        .ok_or_else(|| fail("state", "unknown, expired or used state"))?;
    if flow.provider != id || !flow.started_by(req, state.config.cookie_secure) {
        return Err(fail(
            "state",
            "started by another browser or for another provider",
        ));
    }
    Ok(flow)
}

/// The provider's back-channel logout request.
#[derive(Deserialize, ToSchema)]
pub struct LogoutForm {
    /// The logout token (a signed JWT).
    logout_token: String,
}

/// Back-channel logout: a valid token ends the tether sessions signed in
/// through that provider session (`sid`), or with only `sub`, every session
/// of that user signed in through this provider; their sockets get
/// `session.revoked` (`logout`) and close with 4001 on every instance.
#[utoipa::path(
    post, path = "/api/auth/oidc/{id}/backchannel-logout", tag = "auth", operation_id = "oidc_backchannel_logout",
    params(("id" = String, Path, description = "A provider id from `TETHER_OIDC_PROVIDERS`.")),
    request_body(content = LogoutForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The token was valid; the sessions it names have ended."),
        (status = 400, description = "`bad_request`: `invalid logout token` (signature, `iss`, `aud`, `iat`, `events`, `sid`/`sub`, a `nonce`, or a replayed `jti`), or no `logout_token` field.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such provider.", body = ErrorBody),
        (status = 503, response = error_docs::Unavailable),
    ),
)]
pub(crate) async fn backchannel_logout(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<LogoutForm>,
) -> Result<HttpResponse, ApiError> {
    let provider = provider(&state, &id)?;
    let unavailable =
        || ApiError::Unavailable(anyhow::anyhow!("provider {} not discovered yet", *id));
    let keys = provider.discovered().ok_or_else(unavailable)?;
    let checked = match logout_token::verify(&form.logout_token, &provider.config, &keys) {
        // A key published since the last discovery: fetch them again (at
        // most once a minute) and check once more.
        Err(Refused::NoMatchingKey) if provider.refresh_keys().await => {
            let keys = provider.discovered().ok_or_else(unavailable)?;
            logout_token::verify(&form.logout_token, &provider.config, &keys)
        }
        other => other,
    };
    let logout = checked.map_err(|why| {
        log::info!(
            "event=oidc_logout_token_refused provider={} reason=\"{why}\"",
            *id
        );
        ApiError::BadRequest("invalid logout token".into())
    })?;
    let jti_key = format!("oidc:jti:{}:{}", *id, digest(&logout.jti));
    if !state.oidc.store.put_new(&jti_key, "1", JTI_TTL).await? {
        log::info!(
            "event=oidc_logout_token_refused provider={} reason=replayed",
            *id
        );
        return Err(ApiError::BadRequest("invalid logout token".into()));
    }
    let ended = logout::end_sessions(&state, provider, &logout).await?;
    log::info!(
        "event=oidc_backchannel_logout provider={} sessions_ended={ended}",
        *id
    );
    Ok(HttpResponse::Ok().finish())
}
