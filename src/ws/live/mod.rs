//! How events reach live sockets: the one place an instance decides what an
//! event means for the sockets it holds, and the background tasks that keep
//! that true when events are lost.
//!
//! Sources (all end in [`sink`]): the event bus (this instance's own changes
//! and, over Redis, every other instance's), the Redis session store's
//! keyspace listener (a session key deleted or expired inside Redis), the
//! user-store watch (SQLite changed by another process, without Redis), the
//! sweep (re-checks every open socket's session on a timer and after a gap),
//! and the access recheck (compares cached permissions with the user store
//! every few seconds, in case an announcement was lost). The hub then wakes exactly the sockets concerned; each socket's
//! task (`ws::connection`) sends `session.revoked` and closes.

mod access_recheck;
mod census;
mod sweep;
mod user_store_watch;

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;

pub use sweep::sweep_once;

use super::{protocol::ServerEvent, Hub};
use crate::{
    auth::AccessCache,
    db::Db,
    events::{Event, EventSink},
    sessions::{Sessions, LISTENER_START_WAIT},
};

/// Starts everything that carries events to this instance's sockets;
/// returns once the Redis subscriptions (if any) are in place.
pub async fn start(
    sessions: &Sessions,
    db: &Db,
    access: Arc<AccessCache>,
    hub: Arc<Hub>,
    sweep_every: Duration,
) {
    let sweep = sweep::spawn(sessions.clone(), hub.clone(), sweep_every);
    sessions
        .bus
        .set_sink(sink(access.clone(), hub.clone(), sweep));
    sessions.bus.start_subscriber(LISTENER_START_WAIT).await;
    sessions.start_keyspace_listener().await;
    census::spawn(sessions.clone(), hub.clone());
    access_recheck::spawn(access.clone(), hub.clone());
    if db.watches_other_processes() {
        user_store_watch::spawn(access, hub);
    }
}

/// What this instance does with an event, from here or from another instance.
fn sink(access: Arc<AccessCache>, hub: Arc<Hub>, sweep: Arc<Notify>) -> EventSink {
    Arc::new(move |event: &Event| match event {
        Event::SessionEnded { sid, reason } => hub.end_session(sid, *reason),
        Event::UserChanged { user_id } => {
            // Invalidate first, so the sockets woken next read the new access.
            access.invalidate(*user_id);
            hub.user_changed(*user_id);
        }
        Event::Chat {
            room,
            from,
            text,
            at,
        } => {
            let frame = ServerEvent::ChatMessage {
                room: room.clone(),
                from: from.clone(),
                text: text.clone(),
                at: at.clone(),
            };
            hub.broadcast(frame.to_text().into());
        }
        Event::Resync => {
            // Anything published while we were away is lost: re-read access,
            // and re-check every open socket's session now.
            access.invalidate_all();
            hub.resync();
            sweep.notify_one();
        }
    })
}
