//! SQLite without Redis: nothing announces `tether users …` run beside this
//! server, so the user store itself is watched.

use std::{sync::Arc, time::Duration};

use crate::{auth::AccessCache, ws::Hub};

/// Every permission check already notices commits made by other processes
/// (the change probe). Once a second this also asks SQLite exactly (covering
/// the probe's file-time shortcut) and wakes idle sockets, so a user disabled
/// from the CLI loses sockets that send nothing.
pub fn spawn(access: Arc<AccessCache>, hub: Arc<Hub>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut seen = access.generation();
        loop {
            tick.tick().await;
            access.sync_exact();
            let now = access.generation();
            if now != seen {
                seen = now;
                hub.resync();
            }
        }
    });
}
