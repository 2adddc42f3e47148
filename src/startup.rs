//! `Application::build(config)`: everything `main` and the tests start the same
//! way — user store (migrated), session store, event bus, access cache, socket
//! hub and what feeds it (`ws::live`), HTTP server bound (port 0 in tests).
//! Wiring only: what each part does lives in its own module.

use std::{net::TcpListener, sync::Arc};

use actix_identity::IdentityMiddleware;
use actix_session::{
    config::{BrowserSession, TtlExtensionPolicy},
    SessionMiddleware,
};
use actix_web::{
    cookie::{time::Duration as CookieDuration, Key, SameSite},
    dev::{Server, ServerHandle, Service as _},
    middleware::{from_fn, Logger},
    web, App, HttpServer,
};
use anyhow::Context as _;

use crate::{
    admin, api_docs,
    audit::{Action, Actor, Audit, AuditEvent},
    auth::{
        self,
        throttle::{Limits, LoginThrottle},
        AccessCache, Hasher,
    },
    config::Config,
    csrf,
    db::Db,
    demo_messages,
    domain::EndReason,
    error::{self, ApiError},
    events::EventBus,
    health,
    metrics::Metrics,
    metrics_http,
    oidc::{self, Oidc},
    redis_link::RedisLink,
    security_headers,
    sessions::{
        backend::{redis::ReplicaAck, MemoryBackend, RedisBackend},
        AnyBackend, SessionStore, Sessions,
    },
    state::AppState,
    stats::{LiveStats, SocketCount},
    ws::{self, Hub},
};

/// Opens the user store and runs pending migrations.
pub async fn open_user_store(config: &Config) -> anyhow::Result<Db> {
    let url = config.database_url().to_owned();
    let db = tokio::task::spawn_blocking(move || Db::connect(&url))
        .await?
        .context("cannot open the user store (DATABASE_URL)")?;
    let applied = db.run_migrations().await.context("migrations failed")?;
    for name in applied {
        log::info!("event=migration_applied name={name}");
    }
    Ok(db)
}

/// Opens the session store and the event bus chosen by `REDIS_URL` (for the
/// CLI: what it does is counted nowhere).
pub async fn open_sessions(config: &Config) -> anyhow::Result<Sessions> {
    open_counted_sessions(config, Arc::default()).await
}

/// [`open_sessions`], counting in `metrics` what the store, the bus and
/// the Redis connections do.
pub async fn open_counted_sessions(
    config: &Config,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Sessions> {
    let (backend, bus) = match &config.redis {
        Some(topology) => {
            let link = RedisLink::connect(topology)
                .await
                .context("cannot reach Redis (REDIS_URL)")?;
            link.count_errors_in(metrics.clone());
            let acks = ReplicaAck {
                replicas: config.redis_min_replicas_ack,
                within: config.redis_replica_wait,
            };
            let backend = RedisBackend::on_link(link.clone(), &config.redis_prefix, acks)
                .await
                .context("cannot reach Redis (REDIS_URL)")?;
            let bus = EventBus::with_redis(&link, &config.redis_prefix)
                .await
                .context("cannot reach Redis (REDIS_URL)")?;
            log::info!(
                "event=redis_connected topology={} primary={} replica_acks={}",
                topology.kind(),
                link.primary_addr(),
                acks.replicas
            );
            (AnyBackend::Redis(backend), bus)
        }
        None => {
            let expired = metrics.sessions_ended_counter(EndReason::Expired);
            let backend = MemoryBackend::new().counting_expiries(expired);
            (AnyBackend::Memory(backend), EventBus::local())
        }
    };
    bus.count_in(metrics.clone());
    Ok(Sessions::new(
        backend,
        config.session_idle,
        config.session_absolute,
        bus,
        metrics,
    ))
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    /// The metrics listener (`TETHER_METRICS_BIND`): its port and handle.
    metrics_server: Option<(u16, ServerHandle)>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let mut db = open_user_store(&config).await?;
        let audit = Audit::start(db.clone(), config.audit_retention);
        if let Some(admin) = crate::users::bootstrap_admin(&db, &config).await? {
            let event = AuditEvent::new(Action::UserCreated, Actor::System)
                .target_user(admin.id)
                .detail("username", &admin.username)
                .detail("roles", &admin.roles);
            audit.record(event);
        }
        // Without Redis nothing announces `tether users …` run beside this
        // server; a SQLite store can tell us itself.
        if config.redis.is_none() {
            db.watch_other_processes()?;
        }
        let metrics = Arc::new(Metrics::new().with_process_metrics());
        let sessions = open_counted_sessions(&config, metrics.clone())
            .await?
            .with_audit(audit.clone());
        if config.redis.is_none() {
            log::warn!(
                "event=in_process_sessions note=\"REDIS_URL unset: sessions are neither shared between instances nor kept across restarts\""
            );
        }
        let key = match &config.session_key {
            Some(k) => k.to_key(),
            None => {
                log::warn!("event=random_cookie_key note=\"TETHER_SESSION_KEY unset: sessions end when this process exits and cannot be shared\"");
                Key::generate()
            }
        };
        let listener = listen(config.bind, config.ws_send_timeout)
            .with_context(|| format!("cannot bind {} (TETHER_BIND)", config.bind))?;
        let port = listener.local_addr()?.port();

        let access = Arc::new(AccessCache::new(db.clone()));
        let hub = Hub::new();
        ws::live::start(
            &sessions,
            &db,
            access.clone(),
            hub.clone(),
            config.sweep_interval,
        )
        .await;

        let login_limits = Limits {
            per_user_and_address: config.login_max_failures,
            per_user: config.login_max_failures_per_user,
            per_address: config.login_max_failures_per_ip,
        };
        let throttle = match sessions.redis_connection() {
            Some((conn, prefix)) => {
                LoginThrottle::redis(conn, &prefix, login_limits, config.login_lockout)
            }
            None => LoginThrottle::memory(login_limits, config.login_lockout),
        };
        let ws_handlers = Arc::new(ws::handlers::registry().counted(&metrics));
        let open_sockets: SocketCount = {
            let hub = hub.clone();
            Arc::new(move || hub.socket_count())
        };
        let stats = LiveStats::new(
            metrics.clone(),
            ws_handlers.counters(),
            open_sockets.clone(),
            sessions
                .redis_connection()
                .map(|(conn, prefix)| (conn, prefix, sessions.bus.instance_id().to_owned())),
        );
        stats.spawn_sampler();
        let metrics_server = match config.metrics_bind {
            Some(addr) => {
                let (server, port) = metrics_http::serve(addr, metrics.clone(), open_sockets)
                    .with_context(|| format!("cannot bind {addr} (TETHER_METRICS_BIND)"))?;
                log::info!(
                    "event=metrics_listening addr=http://{}:{port}/metrics",
                    addr.ip()
                );
                let handle = server.handle();
                tokio::spawn(server);
                Some((port, handle))
            }
            None => None,
        };
        let oidc = Oidc::start(&config, &config.public_origin(port), &sessions, &db).await?;
        let state = web::Data::new(AppState {
            oidc: Arc::new(oidc),
            throttle,
            allowed_origins: config.effective_allowed_origins(port),
            hasher: Hasher::new(config.max_concurrent_hashes, config.max_queued_hashes)?,
            config: Arc::new(config),
            db,
            sessions,
            access,
            hub,
            ws_handlers,
            metrics,
            stats,
            audit,
        });
        let server = http_server(state.clone(), key, listener)?;
        log::info!(
            "event=listening addr=http://{}",
            state.config.bind.ip().to_string() + ":" + &port.to_string()
        );
        Ok(Self {
            port,
            server,
            state,
            metrics_server,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The metrics listener's port, when `TETHER_METRICS_BIND` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(port, _)| *port)
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped through its [`ServerHandle`]
    /// (tests; no signal handling, so Ctrl-C still ends a test run).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(std::future::pending()).await
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully: stop
    /// accepting, close every socket with 1001 (`server shutting down`), let
    /// in-flight requests finish, and return within
    /// `TETHER_SHUTDOWN_GRACE_SECS`. Sessions are untouched, so clients
    /// reconnect to the next server. What `tether serve` runs.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    async fn run_until(
        self,
        stop: impl std::future::Future<Output = std::io::Result<&'static str>>,
    ) -> std::io::Result<()> {
        let handle = self.server.handle();
        let hub = self.state.hub.clone();
        let server = self.server;
        // The metrics listener stops with the server, however it stops.
        let _metrics_server = self.metrics_server.map(|(_, handle)| StopOnDrop(handle));
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => return result,
            signal = stop => {
                let signal = signal?;
                log::info!("event=shutdown_started signal={signal}");
            }
        }
        hub.shut_down();
        // Stops accepting at once; waits up to the grace for connections
        // (the sockets are closing themselves meanwhile). The server future
        // must be polled for the stop command to be acted on.
        let (_, result) = tokio::join!(handle.stop(true), &mut server);
        result?;
        // Events of the last requests are still queued: store them.
        self.state.audit.flush().await;
        log::info!("event=shutdown_done");
        Ok(())
    }
}

/// Stops a server when dropped.
struct StopOnDrop(ServerHandle);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let stop = self.0.stop(false);
        tokio::spawn(stop);
    }
}

/// The first SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

fn http_server(
    state: web::Data<AppState>,
    key: Key,
    listener: TcpListener,
) -> anyhow::Result<Server> {
    let config = state.config.clone();
    let grace = config.shutdown_grace;
    let shared_sessions = state.sessions.clone();
    if let Some(dir) = &config.web_dir {
        log::info!(
            "event=web_dir path={} note=\"the browser app is served from this folder (TETHER_WEB_DIR), not the copy built in\"",
            dir.display()
        );
    }
    let server = HttpServer::new(move || {
        // Runs on each worker thread: each worker's session store gets a
        // Redis connection of its own (`RedisBackend::for_worker`).
        let store = SessionStore::new(shared_sessions.for_worker());
        let sessions = SessionMiddleware::builder(store, key.clone())
            // `__Host-tether_session` when Secure (README, "Session cookie").
            .cookie_name(config.cookie_name().into())
            .cookie_secure(config.cookie_secure)
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_path("/".into())
            .session_lifecycle(
                BrowserSession::default()
                    .state_ttl(CookieDuration::seconds(config.session_idle.as_secs() as i64))
                    // Activity is recorded by the store adapter's `load`, at
                    // most every few seconds (see `Sessions::touch_interval`).
                    .state_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
            )
            .build();
        let app = App::new()
            // Registration order: identity before session (actix-extras docs);
            // the last `wrap` is the outermost.
            .wrap(actix_web::middleware::ErrorHandlers::new().handler(
                actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
                error::method_not_allowed,
            ))
            .wrap(IdentityMiddleware::default())
            .wrap(sessions)
            .wrap_fn(|req, srv| {
                // The session middleware answers a store failure with an opaque
                // 500 before any handler runs. Fail closed, but say so: 503 JSON.
                let fut = srv.call(req);
                async move {
                    fut.await.map_err(|err| {
                        if err.as_response_error().status_code().is_server_error() {
                            ApiError::Unavailable(anyhow::anyhow!("session store: {err}")).into()
                        } else {
                            err
                        }
                    })
                }
            })
            // Outside the session: a refused request loads and changes nothing.
            .wrap(from_fn(csrf::refuse_cross_site))
            .wrap(Logger::new("%a \"%r\" %s %b %Dms").exclude("/healthz"))
            .wrap(from_fn(metrics_http::record))
            // Outermost, so that every response gets them, errors included.
            .wrap(from_fn(security_headers::add))
            .app_data(state.clone())
            .app_data(error::json_config())
            .app_data(error::path_config())
            .app_data(error::query_config())
            .configure(health::configure)
            .configure(auth::routes::configure)
            .configure(auth::password_routes::configure)
            .configure(auth::own_sessions::configure)
            .configure(oidc::routes::configure)
            .configure(admin::configure)
            .configure(demo_messages::configure)
            .configure(ws::route::configure)
            .configure(api_docs::configure);
        // The browser app, registered last so the API wins: the copy embedded
        // at build time, or the folder TETHER_WEB_DIR names (live edits).
        match &config.web_dir {
            Some(dir) => app.service(
                actix_files::Files::new("/", dir)
                    .index_file("index.html")
                    .default_handler(web::route().to(not_found)),
            ),
            None => app.default_service(web::to(crate::web_app::serve)),
        }
    })
    .shutdown_timeout(grace.as_secs())
    // Signals are handled by `run_until_stopped`, which closes sockets first.
    .disable_signals()
    .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
    .listen(listener)?
    .run();
    Ok(server)
}

/// How long actix lingers after a response (a socket's closing handshake
/// included) for the client to end the connection, before closing it itself.
///
/// Not lower than actix's default: actix computes the deadline from a clock
/// it refreshes only every 500 ms, so a shorter timeout can fall in the past
/// when it is set; the timer then fires while being armed, its wake-up is
/// lost, and the connection stays open until the client closes it (measured:
/// at 100 ms, sockets closed from either side were left open that way).
/// So the server closes 0.5–1 s after a closing handshake the client does not
/// end itself. Pages are not kept waiting by it: the web app ends a revoked
/// session on the `session.revoked` event, which precedes the close frame.
const CLIENT_DISCONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Pending connections the kernel queues for us. std's `bind` asks for 128;
/// a reconnect storm of thousands of sockets overflowed it (SYN retries,
/// p99 ≈ 1 s in the benchmark). The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 4096;

/// The listening socket. Its `TCP_USER_TIMEOUT` (inherited by every accepted
/// connection) makes the kernel drop a connection whose sent data stays
/// unacknowledged — or stuck behind a zero receive window, a client that
/// stopped reading — for longer than `send_timeout`: the server end of a
/// stuck socket goes away even though actix is still trying to write to it.
fn listen(
    addr: std::net::SocketAddr,
    send_timeout: std::time::Duration,
) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_user_timeout(Some(send_timeout))?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
