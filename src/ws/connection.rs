//! One task per socket: a `select!` loop over the client's frames, the
//! heartbeat, hub signals (session ended, user changed), queued chat, and the
//! session's idle and absolute deadlines.

use std::{future::Future, sync::Arc, time::Duration};

use actix_web::web;
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError};
use futures_util::StreamExt as _;
use tokio::time::Instant;

use super::{
    close::CloseCause,
    deadlines::{Deadlines, Due},
    dispatch::{Ctx, SessionOutcome},
    hub::{Registration, Socket},
    protocol::{ClientFrame, ErrorCode, ExpiringKind, Reply, ServerEvent},
    rate::{MessageRate, Verdict},
};
use crate::{
    auth::{CurrentSession, UserAccess},
    domain::{Disappearance, EndReason, Permission},
    sessions::SessionJson,
    state::AppState,
    time::now_ms,
};

/// Why the loop stopped, and so how to close.
enum Exit {
    /// The client closed or went away; nothing more to send.
    Gone,
    /// A frame could not be written within `TETHER_WS_SEND_TIMEOUT_SECS`:
    /// the client does not read. No close handshake is owed to it; the task
    /// ends now, and the kernel aborts the TCP connection (the listener's
    /// `TCP_USER_TIMEOUT`, see `startup::listen`).
    Stuck,
    /// Close with this code and reason.
    Close(CloseReason),
    /// The user store did not answer, so current permissions are unknown. A
    /// client message gets an `unavailable` reply; elsewhere the socket closes
    /// (1013): fail closed rather than act on permissions that may be stale.
    StoreUnavailable,
}

fn close(cause: CloseCause) -> Exit {
    Exit::Close(close_reason(cause))
}

fn close_reason(cause: CloseCause) -> CloseReason {
    CloseReason {
        code: CloseCode::from(cause.code()),
        description: Some(cause.reason().to_owned()),
    }
}

pub struct Connection {
    pub state: web::Data<AppState>,
    pub ws: actix_ws::Session,
    pub stream: AggregatedMessageStream,
    pub registration: Registration,
    pub session: CurrentSession,
    pub user: Arc<UserAccess>,
    pub access_generation: u64,
    pub rate: MessageRate,
}

/// `send`, unless it takes longer than `limit`.
async fn within(
    limit: Duration,
    send: impl Future<Output = Result<(), actix_ws::Closed>>,
) -> Result<(), Exit> {
    match tokio::time::timeout(limit, send).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Exit::Gone),
        Err(_) => Err(Exit::Stuck),
    }
}

/// Queued chat frames sent per wake-up before the loop looks at other work.
const SEND_BATCH: usize = 32;

fn instant_at(ms: i64) -> Instant {
    let delta = ms.saturating_sub(now_ms()).max(0) as u64;
    Instant::now() + Duration::from_millis(delta)
}

impl Connection {
    /// The socket's task. Its future is most of what an idle socket costs
    /// beyond actix's own buffers (a benchmark target: BENCHMARKS.md),
    /// and a future is as big as its biggest state, so the loop's own state
    /// stays inline and whatever a frame, signal or deadline sets off runs in
    /// a boxed future that exists only while it runs.
    ///
    /// An `async move` block rather than an `async fn`: the future of an
    /// `async fn` keeps a second copy of arguments taken by value
    /// (rust-lang/rust#62958), which here would be the whole `Connection`.
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn would store the Connection twice"
    )]
    pub fn run(mut self) -> impl Future<Output = ()> {
        async move {
            let exit = match Box::pin(self.send_hello()).await {
                Ok(()) => match self.event_loop().await {
                    Ok(()) => Exit::Gone,
                    Err(exit) => exit,
                },
                Err(exit) => exit,
            };
            Box::pin(self.finish(exit)).await;
        }
    }

    async fn finish(self, exit: Exit) {
        let sid = &self.registration.socket.sid;
        let reason = match exit {
            Exit::Gone => {
                log::debug!("event=ws_closed sid={sid} by=client");
                return;
            }
            Exit::Stuck => {
                log::info!("event=ws_send_timeout sid={sid} effect=\"connection dropped\"");
                return;
            }
            Exit::StoreUnavailable => close_reason(CloseCause::UserStoreUnavailable),
            Exit::Close(reason) => reason,
        };
        log::debug!("event=ws_closed sid={sid} code={:?}", reason.code);
        let revoked = reason.code == CloseCode::Other(CloseCause::SessionRevoked.code());
        let limit = self.state.config.ws_send_timeout;
        let sent = tokio::time::timeout(limit, self.ws.close(Some(reason))).await;
        // Only for ends this instance was told of (not a socket's own deadline).
        if let (true, Ok(Ok(())), Some((_, since))) =
            (revoked, sent, self.registration.socket.signal.ended_at())
        {
            let metrics = &self.state.metrics;
            metrics
                .revocation_close
                .observe(since.elapsed().as_secs_f64());
        }
    }

    /// Every send has a deadline, so a client that stops reading can never
    /// hold this task (and with it revocation, expiry and the heartbeat).
    async fn send_text(&mut self, text: impl Into<String>) -> Result<(), Exit> {
        let limit = self.state.config.ws_send_timeout;
        within(limit, self.ws.text(text.into())).await
    }

    async fn send_control(&mut self, ping: bool, bytes: &[u8]) -> Result<(), Exit> {
        let limit = self.state.config.ws_send_timeout;
        if ping {
            within(limit, self.ws.ping(bytes)).await
        } else {
            within(limit, self.ws.pong(bytes)).await
        }
    }

    async fn send_hello(&mut self) -> Result<(), Exit> {
        let hello = ServerEvent::Hello {
            user: self.user.to_json(),
            session: SessionJson::from(&self.session),
        };
        self.send_text(hello.to_text()).await
    }

    async fn event_loop(&mut self) -> Result<(), Exit> {
        let client_timeout = self.state.config.ws_client_timeout;
        let mut heartbeat = tokio::time::interval(self.state.config.ws_heartbeat);
        heartbeat.tick().await;
        let mut last_heard = Instant::now();
        let mut last_touch = Instant::now();
        let mut deadlines = Deadlines::new(
            Instant::now(),
            self.state.sessions.idle,
            instant_at(self.session.absolute_expires_at_ms),
            self.state.config.session_expiring_notice,
        );
        // Often enough that an active socket never lets a short idle timeout lapse.
        let touch_every = self.state.sessions.touch_interval();
        let socket = self.registration.socket.clone();
        // Created once and re-armed, not per message: a fresh timer and a
        // fresh waiter per loop turn cost a timer-wheel insert/remove and a
        // mutex on every frame.
        let signal = socket.signal.notified();
        tokio::pin!(signal);
        let mut wake_at = deadlines.next().0;
        let deadline = tokio::time::sleep_until(wake_at);
        tokio::pin!(deadline);

        loop {
            if deadlines.next().0 != wake_at {
                wake_at = deadlines.next().0;
                deadline.as_mut().reset(wake_at);
            }
            tokio::select! {
                // Revocation first.
                biased;
                _ = &mut signal => {
                    signal.set(socket.signal.notified());
                    if let Some(reason) = socket.signal.ended() {
                        return Err(Box::pin(self.ended(reason)).await);
                    }
                    if socket.signal.shutting_down() {
                        return Err(close(CloseCause::ShuttingDown));
                    }
                    if socket.signal.too_slow() {
                        return Err(close(CloseCause::TooSlow));
                    }
                    if socket.signal.take_user_changed() {
                        Box::pin(self.refresh_access()).await?;
                    }
                    Box::pin(self.send_queued(&socket)).await?;
                }
                frame = self.stream.next() => {
                    last_heard = Instant::now();
                    match frame {
                        Some(Ok(AggregatedMessage::Text(text))) => {
                            match self.rate.check(last_heard) {
                                Verdict::Allowed => {}
                                Verdict::Refused => {
                                    Box::pin(self.refuse_over_rate(&text)).await?;
                                    continue;
                                }
                                Verdict::Close => {
                                    return Err(close(CloseCause::RateLimit));
                                }
                            }
                            if last_touch.elapsed() >= touch_every {
                                last_touch = Instant::now();
                                deadlines.touched(last_touch);
                                self.touch_session();
                            }
                            match Box::pin(self.on_text(&text)).await? {
                                SessionOutcome::Unchanged => {}
                                SessionOutcome::ExtendedTo(ms) => deadlines.extended_to(instant_at(ms)),
                                SessionOutcome::Ended => {
                                    return Err(Box::pin(self.session_gone()).await);
                                }
                            }
                        }
                        Some(Ok(AggregatedMessage::Binary(_))) => {
                            self.state.ws_handlers.count_refused(None, ErrorCode::BadRequest);
                            let reply = Reply::error(None, ErrorCode::BadRequest, "binary frames are not supported");
                            Box::pin(self.send_reply(&reply)).await?;
                        }
                        Some(Ok(AggregatedMessage::Ping(bytes))) => {
                            Box::pin(self.send_control(false, &bytes)).await?;
                        }
                        Some(Ok(AggregatedMessage::Pong(_))) => {}
                        // Answer the client's close with ours (RFC 6455 §5.5.1),
                        // echoing its code, so its closing handshake completes.
                        Some(Ok(AggregatedMessage::Close(reason))) => {
                            let code = reason.map_or(CloseCode::Normal, |r| r.code);
                            return Err(Exit::Close(CloseReason { code, description: None }));
                        }
                        None => return Ok(()),
                        Some(Err(ProtocolError::Overflow)) => {
                            return Err(close(CloseCause::MessageTooBig));
                        }
                        Some(Err(e)) => {
                            log::debug!("event=ws_protocol_error error={e}");
                            return Err(close(CloseCause::ProtocolError));
                        }
                    }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > client_timeout {
                        return Err(close(CloseCause::HeartbeatTimeout));
                    }
                    Box::pin(self.send_control(true, b"")).await?;
                }
                _ = &mut deadline => {
                    Box::pin(self.on_deadline(&mut deadlines)).await?;
                    // Always re-arm: a fired timer stays ready.
                    wake_at = deadlines.next().0;
                    deadline.as_mut().reset(wake_at);
                }
            }
        }
    }

    /// Sends a batch of queued chat frames to a socket allowed to read them
    /// (if more wait, the signal wakes the loop again after its other work).
    async fn send_queued(&mut self, socket: &Socket) -> Result<(), Exit> {
        for frame in socket.signal.take_queued(SEND_BATCH) {
            self.refresh_if_stale().await?;
            if self.user.can(Permission::ChatRead) {
                self.send_text(frame.to_string()).await?;
            }
        }
        Ok(())
    }

    /// A message over the socket's rate: not handled, answered `rate_limited`.
    async fn refuse_over_rate(&mut self, text: &str) -> Result<(), Exit> {
        let (id, kind) = match ClientFrame::parse(text) {
            Ok(frame) => (Some(frame.id), Some(frame.kind)),
            Err(bad) => (bad.id, None),
        };
        let code = ErrorCode::RateLimited;
        self.state.ws_handlers.count_refused(kind.as_deref(), code);
        let reply = Reply::error(id, code, "Too many messages");
        self.send_reply(&reply).await
    }

    async fn send_reply(&mut self, reply: &Reply) -> Result<(), Exit> {
        let text = serde_json::to_string(reply).unwrap_or_default();
        self.send_text(text).await
    }

    /// Handles one client text frame; reports what the handler learnt about
    /// the session (only `session.refresh` learns anything).
    async fn on_text(&mut self, text: &str) -> Result<SessionOutcome, Exit> {
        let frame = match ClientFrame::parse(text) {
            Ok(frame) => frame,
            Err(bad) => {
                self.state
                    .ws_handlers
                    .count_refused(None, ErrorCode::BadRequest);
                let reply = Reply::error(bad.id, ErrorCode::BadRequest, bad.message);
                self.send_reply(&reply).await?;
                return Ok(SessionOutcome::Unchanged);
            }
        };
        match self.refresh_if_stale().await {
            Ok(()) => {}
            Err(Exit::StoreUnavailable) => {
                let handlers = &self.state.ws_handlers;
                handlers.count_refused(Some(&frame.kind), ErrorCode::Unavailable);
                let reply = Reply::error(
                    Some(frame.id),
                    ErrorCode::Unavailable,
                    "Service temporarily unavailable",
                );
                self.send_reply(&reply).await?;
                return Ok(SessionOutcome::Unchanged);
            }
            Err(exit) => return Err(exit),
        }
        let handlers = self.state.ws_handlers.clone();
        let ctx = Ctx {
            state: &self.state,
            user: &self.user,
            session: &self.session,
            session_outcome: Default::default(),
        };
        let reply = handlers.dispatch(&ctx, frame).await;
        let outcome = ctx.session_outcome.get();
        self.send_reply(&reply).await?;
        Ok(outcome)
    }

    /// Re-reads the user's access if anything changed since the last read.
    async fn refresh_if_stale(&mut self) -> Result<(), Exit> {
        if self.state.access.generation() == self.access_generation {
            return Ok(());
        }
        self.refresh_access().await
    }

    async fn refresh_access(&mut self) -> Result<(), Exit> {
        let generation = self.state.access.generation();
        match self.state.access.get(self.user.id).await {
            Ok(Some(access)) if access.disabled => Err(self.ended(EndReason::Disabled).await),
            Ok(Some(access)) => {
                let changed = access.permissions != self.user.permissions;
                self.user = access;
                self.access_generation = generation;
                if changed {
                    let event = ServerEvent::PermissionsChanged {
                        permissions: self
                            .user
                            .permissions
                            .names()
                            .into_iter()
                            .map(Into::into)
                            .collect(),
                    };
                    self.send_text(event.to_text()).await?;
                }
                Ok(())
            }
            Ok(None) => Err(self.ended(EndReason::Deleted).await),
            Err(e) => {
                log::error!("event=ws_access_refresh_failed error={e}");
                Err(Exit::StoreUnavailable)
            }
        }
    }

    /// A deadline or its notice is due. For the idle one, the store knows
    /// whether other activity (HTTP requests, other sockets) extended it.
    async fn on_deadline(&mut self, deadlines: &mut Deadlines) -> Result<(), Exit> {
        let now = Instant::now();
        let due = deadlines.next().1;
        match due {
            Due::Absolute => return Err(self.ended(EndReason::Expired).await),
            Due::AbsoluteNotice => {
                deadlines.absolute_warned();
                return self
                    .send_expiring(deadlines.absolute(), ExpiringKind::Absolute)
                    .await;
            }
            Due::Idle | Due::IdleNotice => {}
        }
        let stored = match self.state.sessions.load(&self.session.sid).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return Err(self.session_gone().await),
            Err(e) => {
                // Fail closed: a session that cannot be verified keeps no socket.
                log::error!("event=ws_session_check_failed error={e}");
                return Err(close(CloseCause::SessionStoreUnavailable));
            }
        };
        // Never spin: a deadline the store still reports as now is retried shortly.
        let at = instant_at(stored.expires_at_ms).max(now + Duration::from_millis(50));
        if due == Due::IdleNotice && deadlines.confirm_for_notice(at, now) {
            return self
                .send_expiring(deadlines.idle(), ExpiringKind::Idle)
                .await;
        }
        deadlines.extended_to(at);
        Ok(())
    }

    async fn send_expiring(&mut self, at: Instant, kind: ExpiringKind) -> Result<(), Exit> {
        let left = at.saturating_duration_since(Instant::now());
        let event = ServerEvent::SessionExpiring {
            in_secs: left.as_secs_f64().ceil() as u64,
            kind,
        };
        self.send_text(event.to_text()).await
    }

    fn touch_session(&self) {
        let sessions = self.state.sessions.clone();
        let sid = self.session.sid.clone();
        actix_web::rt::spawn(async move {
            if let Err(e) = sessions.touch(&sid).await {
                log::warn!("event=ws_touch_failed error={e}");
            }
        });
    }

    /// The session was found gone (at its deadline, or by `session.refresh`).
    async fn session_gone(&mut self) -> Exit {
        // Usually it timed out; if it was ended and that news was lost, the
        // tombstone still says why.
        let sessions = &self.state.sessions;
        let reason = sessions
            .why_ended(&self.session.sid, Disappearance::Expired)
            .await;
        self.ended(reason).await
    }

    async fn ended(&mut self, reason: EndReason) -> Exit {
        let event = ServerEvent::SessionRevoked { reason };
        let _ = self.send_text(event.to_text()).await;
        close(CloseCause::SessionRevoked)
    }
}
