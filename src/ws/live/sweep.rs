//! The re-validation sweep: the safety net under every other revocation path.
//!
//! Events can be lost (a Redis restart, a keyspace notification Redis never
//! sent, managed Redis that forbids enabling them). So every instance
//! periodically checks, in batches, that the session of each of its open
//! sockets still exists, and closes the sockets of those that do not. It also
//! runs at once when the Redis subscription comes back (`kick`).

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;

use crate::{domain::Disappearance, sessions::Sessions, ws::Hub};

/// Sessions checked per store round trip.
const BATCH: usize = 500;

/// Starts the sweep; notify the returned handle to run it now.
pub fn spawn(sessions: Sessions, hub: Arc<Hub>, every: Duration) -> Arc<Notify> {
    let kick = Arc::new(Notify::new());
    let wake = kick.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = wake.notified() => {}
            }
            if let Err(e) = sweep_once(&sessions, &hub).await {
                log::warn!("event=sweep_failed error={e}");
            }
        }
    });
    kick
}

/// Closes the sockets of every session that no longer exists; returns how many.
pub async fn sweep_once(sessions: &Sessions, hub: &Hub) -> anyhow::Result<usize> {
    let sids = hub.session_ids();
    let mut ended = 0;
    for chunk in sids.chunks(BATCH) {
        let alive = sessions.existing(chunk).await?;
        for (sid, alive) in chunk.iter().zip(alive) {
            if alive {
                continue;
            }
            let reason = sessions.why_ended(sid, Disappearance::FoundMissing).await;
            log::info!(
                "event=sweep_ended_session sid={sid} reason={}",
                reason.as_str()
            );
            hub.end_session(sid, reason);
            ended += 1;
        }
    }
    Ok(ended)
}
