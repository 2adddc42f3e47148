//! The background writer: stores queued audit entries in batches (one
//! transaction each), and prunes entries past retention every hour.

use std::time::Duration;

use tokio::sync::mpsc;

use super::{log_line, Message, Queued};
use crate::{
    db::{AuditEntry, Db},
    domain::Username,
};

/// Most entries stored in one transaction.
const MAX_BATCH: usize = 500;
/// A failed batch is tried once more after this pause (a restarting
/// database, a SQLite write lock held a little too long).
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often entries past retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

pub(super) fn spawn(db: Db, received: mpsc::Receiver<Message>, retention: Option<Duration>) {
    tokio::spawn(write(db.clone(), received));
    let Some(retention) = retention else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = prune_once(&db, retention).await {
                log::error!(target: "audit", "event=audit_prune_failed error={e:#}");
            }
        }
    });
}

/// Deletes the entries older than `retention`; returns how many.
pub async fn prune_once(db: &Db, retention: Duration) -> anyhow::Result<usize> {
    let before = chrono::Utc::now() - chrono::Duration::from_std(retention)?;
    let pruned = db.prune_audit(before).await?;
    if pruned > 0 {
        log::info!(target: "audit", "event=audit_pruned entries={pruned}");
    }
    Ok(pruned)
}

/// Takes what is queued (up to [`MAX_BATCH`]) as soon as one entry arrives,
/// so a quiet server stores each event at once and a busy one in batches.
async fn write(db: Db, mut received: mpsc::Receiver<Message>) {
    while let Some(first) = received.recv().await {
        let (mut batch, mut flushes) = (Vec::new(), Vec::new());
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Entry(queued) => batch.push(*queued),
                Message::Flush(done) => flushes.push(done),
            }
            next = match batch.len() < MAX_BATCH {
                true => received.try_recv().ok(),
                false => None,
            };
        }
        if !batch.is_empty() {
            let entries = resolve_names(&db, batch).await;
            store(&db, entries).await;
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Fills in the target user of entries that name one (once per name per
/// batch). A name that is not a user's, or a lookup that fails, leaves the
/// entry without one: the entry itself still keeps the name as typed.
async fn resolve_names(db: &Db, batch: Vec<Queued>) -> Vec<AuditEntry> {
    let mut known = std::collections::HashMap::new();
    let mut entries = Vec::with_capacity(batch.len());
    for Queued {
        mut entry,
        target_named,
    } in batch
    {
        if let (None, Some(name)) = (entry.target_user_id, target_named) {
            if !known.contains_key(&name) {
                let id = match Username::parse(&name) {
                    Ok(username) => db.find_user_by_username(&username).await.ok().flatten(),
                    Err(_) => None,
                };
                known.insert(name.clone(), id.map(|u| u.id));
            }
            entry.target_user_id = known.get(&name).copied().flatten();
        }
        entries.push(entry);
    }
    entries
}

async fn store(db: &Db, batch: Vec<AuditEntry>) {
    let Err(first) = db.append_audit(batch.clone()).await else {
        return;
    };
    log::warn!(target: "audit", "event=audit_write_retry entries={} error={first}", batch.len());
    tokio::time::sleep(RETRY_AFTER).await;
    if let Err(e) = db.append_audit(batch.clone()).await {
        for entry in &batch {
            log::error!(
                target: "audit",
                "event=audit_not_stored reason=write_failed error={e} {}",
                log_line(entry)
            );
        }
    }
}
