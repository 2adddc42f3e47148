//! The bound on stale permissions: every [`RECHECK_EVERY`] the access cache
//! is compared with the user store, and the sockets of every user whose
//! access changed re-read it (and get `permissions.changed`, or close if the
//! user was disabled or deleted).
//!
//! Announcements normally get there first (milliseconds); this is for the
//! ones that were lost — a publish that failed while Redis restarted or
//! stalled, an instance that was not subscribed at that moment.

use std::sync::Arc;

use crate::{
    auth::{access::RECHECK_EVERY, AccessCache},
    ws::Hub,
};

pub fn spawn(access: Arc<AccessCache>, hub: Arc<Hub>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RECHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match access.recheck(&hub.user_ids()).await {
                Ok(changed) => {
                    for user_id in changed {
                        hub.user_changed(user_id);
                    }
                }
                Err(e) => log::warn!(
                    "event=access_recheck_failed error={e} effect=\"cached access forgotten\""
                ),
            }
        }
    });
}
