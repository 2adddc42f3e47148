//! The socket census: every instance publishes how many sockets each session
//! has open on it, so a session listing on any instance can show the total.
//!
//! Published shortly after any socket opens or closes, and refreshed
//! periodically so an instance that dies stops counting when its entry expires.

use std::{sync::Arc, time::Duration};

use crate::{sessions::Sessions, ws::Hub};

/// Coalesces a burst of opens/closes into one write.
const DEBOUNCE: Duration = Duration::from_millis(25);
/// Rewritten at least this often while the instance lives (well within
/// `sessions::CENSUS_STALE_AFTER`, after which an instance no longer counts).
const REFRESH: Duration = Duration::from_secs(2);

pub fn spawn(sessions: Sessions, hub: Arc<Hub>) {
    tokio::spawn(async move {
        let instance = sessions.bus.instance_id().to_owned();
        loop {
            let counts = hub.census();
            if let Err(e) = sessions.record_census(&instance, &counts).await {
                log::warn!("event=census_failed error={e}");
            }
            match sessions.peers(&instance).await {
                Ok(peers) => hub.set_peers(peers),
                Err(e) => log::warn!("event=census_peers_failed error={e}"),
            }
            tokio::select! {
                _ = hub.census_changed.notified() => tokio::time::sleep(DEBOUNCE).await,
                _ = tokio::time::sleep(REFRESH) => {}
            }
        }
    });
}
