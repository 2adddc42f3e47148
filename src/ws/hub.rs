//! Who is connected: the one owner of the registry of open sockets, indexed
//! by session and by user, so an event reaches exactly the sockets it concerns.
//!
//! Signals to a socket never go through a queue that could fill up: ending a
//! session sets a flag and wakes the socket's task (`Notify` keeps the wake-up
//! even if the task is busy). Only chat traffic is queued, in a bounded outbox.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use tokio::sync::{mpsc, Notify};
use uuid::Uuid;

use crate::sessions::EndReason;

/// What the hub tells one socket's task.
#[derive(Default)]
pub struct Signal {
    ended: Mutex<Option<EndReason>>,
    user_changed: AtomicBool,
    too_slow: AtomicBool,
    wake: Notify,
}

impl Signal {
    fn end(&self, reason: EndReason) {
        let mut ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        ended.get_or_insert(reason);
        drop(ended);
        self.wake.notify_one();
    }

    /// Waits until something was signalled.
    pub async fn notified(&self) {
        self.wake.notified().await
    }

    pub fn ended(&self) -> Option<EndReason> {
        *self.ended.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn take_user_changed(&self) -> bool {
        self.user_changed.swap(false, Ordering::AcqRel)
    }

    pub fn too_slow(&self) -> bool {
        self.too_slow.load(Ordering::Acquire)
    }
}

/// The hub's handle on one socket.
pub struct Socket {
    pub id: u64,
    pub sid: String,
    pub user_id: Uuid,
    pub signal: Signal,
    outbox: mpsc::Sender<Arc<str>>,
}

#[derive(Default)]
struct Registry {
    sockets: HashMap<u64, Arc<Socket>>,
    by_sid: HashMap<String, Vec<u64>>,
    by_user: HashMap<Uuid, Vec<u64>>,
}

#[derive(Default)]
pub struct Hub {
    registry: Mutex<Registry>,
    next_id: AtomicU64,
    /// Woken whenever a socket opens or closes, so the census is published soon.
    pub census_changed: Notify,
}

/// Removes the socket from the hub when the connection task ends, however it ends.
pub struct Registration {
    hub: Arc<Hub>,
    pub socket: Arc<Socket>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.unregister(&self.socket);
    }
}

impl Hub {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a socket; returns its registration and the receiving end of its outbox.
    pub fn register(
        self: &Arc<Self>,
        sid: &str,
        user_id: Uuid,
    ) -> (Registration, mpsc::Receiver<Arc<str>>) {
        let (tx, rx) = mpsc::channel(super::OUTBOX_CAPACITY);
        let socket = Arc::new(Socket {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            sid: sid.to_owned(),
            user_id,
            signal: Signal::default(),
            outbox: tx,
        });
        let mut reg = self.lock();
        reg.sockets.insert(socket.id, socket.clone());
        reg.by_sid
            .entry(socket.sid.clone())
            .or_default()
            .push(socket.id);
        reg.by_user.entry(user_id).or_default().push(socket.id);
        drop(reg);
        self.census_changed.notify_one();
        (
            Registration {
                hub: self.clone(),
                socket,
            },
            rx,
        )
    }

    fn unregister(&self, socket: &Socket) {
        let mut reg = self.lock();
        reg.sockets.remove(&socket.id);
        if let Some(ids) = reg.by_sid.get_mut(&socket.sid) {
            ids.retain(|id| *id != socket.id);
            if ids.is_empty() {
                reg.by_sid.remove(&socket.sid);
            }
        }
        if let Some(ids) = reg.by_user.get_mut(&socket.user_id) {
            ids.retain(|id| *id != socket.id);
            if ids.is_empty() {
                reg.by_user.remove(&socket.user_id);
            }
        }
        drop(reg);
        self.census_changed.notify_one();
    }

    fn each(&self, ids: impl Fn(&Registry) -> Vec<u64>, f: impl Fn(&Socket)) {
        let reg = self.lock();
        for id in ids(&reg) {
            if let Some(socket) = reg.sockets.get(&id) {
                f(socket);
            }
        }
    }

    /// Closes every socket of the session (on this instance).
    pub fn end_session(&self, sid: &str, reason: EndReason) {
        self.each(
            |r| r.by_sid.get(sid).cloned().unwrap_or_default(),
            |s| s.signal.end(reason),
        );
    }

    /// Makes every socket of the user re-read its access before its next message.
    pub fn user_changed(&self, user_id: Uuid) {
        self.each(
            |r| r.by_user.get(&user_id).cloned().unwrap_or_default(),
            |s| {
                s.signal.user_changed.store(true, Ordering::Release);
                s.signal.wake.notify_one();
            },
        );
    }

    /// Makes every socket re-read its access (after events may have been missed).
    pub fn resync(&self) {
        self.each(
            |r| r.sockets.keys().copied().collect(),
            |s| {
                s.signal.user_changed.store(true, Ordering::Release);
                s.signal.wake.notify_one();
            },
        );
    }

    /// Queues a text frame for every socket; each socket filters by its own
    /// current permissions. A socket whose outbox is full is closed as too slow.
    pub fn broadcast(&self, frame: Arc<str>) {
        self.each(
            |r| r.sockets.keys().copied().collect(),
            |s| {
                if let Err(mpsc::error::TrySendError::Full(_)) = s.outbox.try_send(frame.clone()) {
                    s.signal.too_slow.store(true, Ordering::Release);
                    s.signal.wake.notify_one();
                }
            },
        );
    }

    /// Open sockets per session on this instance.
    pub fn session_socket_counts(&self) -> HashMap<String, usize> {
        self.lock()
            .by_sid
            .iter()
            .map(|(sid, ids)| (sid.clone(), ids.len()))
            .collect()
    }

    /// Sessions with at least one open socket on this instance.
    pub fn session_ids(&self) -> Vec<String> {
        self.lock().by_sid.keys().cloned().collect()
    }

    pub fn socket_count(&self) -> usize {
        self.lock().sockets.len()
    }
}
