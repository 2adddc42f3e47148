//! Who is connected: the one owner of the registry of open sockets, indexed
//! by session and by user, so an event reaches exactly the sockets it concerns.
//!
//! Signals to a socket never go through a queue that could fill up: ending a
//! session sets a flag and wakes the socket's task (`Notify` keeps the wake-up
//! even if the task is busy). Only chat traffic is queued, in a bounded outbox.
//!
//! The outbox is a `VecDeque` behind the signal's wake-up rather than a
//! channel: most sockets never receive chat, and a tokio channel allocates
//! about 1 KiB per socket up front, while an empty `VecDeque` allocates
//! nothing (memory per idle socket is a benchmark target: BENCHMARKS.md).

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::EndReason;

/// What the hub tells one socket's task.
#[derive(Default)]
pub struct Signal {
    /// Why the session ended, and when this instance learnt it
    /// (`tether_revocation_close_seconds` runs from then to the close frame).
    ended: Mutex<Option<(EndReason, std::time::Instant)>>,
    /// The server is shutting down: close with 1001.
    shutting_down: AtomicBool,
    user_changed: AtomicBool,
    too_slow: AtomicBool,
    wake: Notify,
    /// Chat frames waiting to be sent, oldest first; at most `OUTBOX_CAPACITY`.
    outbox: Mutex<VecDeque<Arc<str>>>,
}

impl Signal {
    fn end(&self, reason: EndReason) {
        let mut ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        ended.get_or_insert((reason, std::time::Instant::now()));
        drop(ended);
        self.wake.notify_one();
    }

    /// Waits until something was signalled.
    pub async fn notified(&self) {
        self.wake.notified().await
    }

    pub fn ended(&self) -> Option<EndReason> {
        self.ended_at().map(|(reason, _)| reason)
    }

    /// Why and since when the session is known to have ended.
    pub fn ended_at(&self) -> Option<(EndReason, std::time::Instant)> {
        *self.ended.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    pub fn take_user_changed(&self) -> bool {
        self.user_changed.swap(false, Ordering::AcqRel)
    }

    pub fn too_slow(&self) -> bool {
        self.too_slow.load(Ordering::Acquire)
    }

    /// Queues a frame and wakes the task; a full outbox marks the socket too slow.
    fn enqueue(&self, frame: Arc<str>) {
        let mut outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        if outbox.len() >= super::OUTBOX_CAPACITY {
            self.too_slow.store(true, Ordering::Release);
        } else {
            outbox.push_back(frame);
        }
        drop(outbox);
        self.wake.notify_one();
    }

    /// Takes up to `max` queued frames, oldest first. If more remain, the
    /// wake-up is re-armed, so the task comes back for them after it has
    /// looked at its other work (client frames, the heartbeat).
    pub fn take_queued(&self, max: usize) -> Vec<Arc<str>> {
        let mut outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        let n = outbox.len().min(max);
        let batch: Vec<_> = outbox.drain(..n).collect();
        let more = !outbox.is_empty();
        if !more && outbox.capacity() > IDLE_OUTBOX_CAPACITY {
            // A burst is over: do not keep its buffer for the socket's lifetime.
            outbox.shrink_to(IDLE_OUTBOX_CAPACITY);
        }
        drop(outbox);
        if more {
            self.wake.notify_one();
        }
        batch
    }
}

/// Capacity an emptied outbox may keep (a burst beyond it gives memory back).
const IDLE_OUTBOX_CAPACITY: usize = 8;

/// The hub's handle on one socket.
pub struct Socket {
    pub id: u64,
    pub sid: String,
    pub user_id: Uuid,
    pub signal: Signal,
}

#[derive(Default)]
struct Sockets {
    sockets: HashMap<u64, Arc<Socket>>,
    by_sid: HashMap<String, Vec<u64>>,
    by_user: HashMap<Uuid, Vec<u64>>,
}

#[derive(Default)]
pub struct Hub {
    sockets: Mutex<Sockets>,
    next_id: AtomicU64,
    /// Woken whenever a socket opens or closes, so the census is published soon.
    pub census_changed: Notify,
    /// Other live instances, as the census task last read them.
    peers: Mutex<Arc<[String]>>,
    /// Set once the server is shutting down: no new socket registers.
    shutting_down: AtomicBool,
}

/// The caps an upgrade must fit under.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub per_session: usize,
    /// For this user on this instance: the user's cap less what they hold
    /// on other instances.
    pub per_user_here: usize,
}

/// Why a socket could not register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A cap is reached: 429.
    TooMany,
    /// The server is shutting down: 503.
    ShuttingDown,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Sockets> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a socket unless `caps` are reached, checked and counted under
    /// one lock (so concurrent upgrades cannot both take the last slot); it
    /// stays registered until the registration is dropped.
    pub fn register(
        self: &Arc<Self>,
        sid: &str,
        user_id: Uuid,
        caps: Caps,
    ) -> Result<Registration, Refused> {
        let mut reg = self.lock();
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(Refused::ShuttingDown);
        }
        let count = |ids: Option<&Vec<u64>>| ids.map_or(0, Vec::len);
        if count(reg.by_sid.get(sid)) >= caps.per_session
            || count(reg.by_user.get(&user_id)) >= caps.per_user_here
        {
            return Err(Refused::TooMany);
        }
        let socket = Arc::new(Socket {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            sid: sid.to_owned(),
            user_id,
            signal: Signal::default(),
        });
        reg.sockets.insert(socket.id, socket.clone());
        reg.by_sid
            .entry(socket.sid.clone())
            .or_default()
            .push(socket.id);
        reg.by_user.entry(user_id).or_default().push(socket.id);
        drop(reg);
        self.census_changed.notify_one();
        Ok(Registration {
            hub: self.clone(),
            socket,
        })
    }

    /// Whether `caps` are already reached for this session or user (a cheap
    /// early answer; [`Hub::register`] checks again, atomically).
    pub fn at_cap(&self, sid: &str, user_id: Uuid, caps: Caps) -> bool {
        let reg = self.lock();
        let count = |ids: Option<&Vec<u64>>| ids.map_or(0, Vec::len);
        count(reg.by_sid.get(sid)) >= caps.per_session
            || count(reg.by_user.get(&user_id)) >= caps.per_user_here
    }

    /// Closes every socket with 1001 and refuses new ones (graceful shutdown).
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::Release);
        self.each(
            |r| r.sockets.keys().copied().collect(),
            |s| {
                s.signal.shutting_down.store(true, Ordering::Release);
                s.signal.wake.notify_one();
            },
        );
    }

    pub fn set_peers(&self, peers: Vec<String>) {
        *self.peers.lock().unwrap_or_else(|p| p.into_inner()) = peers.into();
    }

    /// Other live instances (empty on a single instance).
    pub fn peers(&self) -> Arc<[String]> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner()).clone()
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

    fn each(&self, ids: impl Fn(&Sockets) -> Vec<u64>, f: impl Fn(&Socket)) {
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
            |s| s.signal.enqueue(frame.clone()),
        );
    }

    /// Open sockets on this instance per session (keyed by sid) and per
    /// user (keyed by `sessions::census_user_key`): the census this instance
    /// publishes.
    pub fn census(&self) -> HashMap<String, usize> {
        let reg = self.lock();
        let sessions = reg.by_sid.iter().map(|(sid, ids)| (sid.clone(), ids.len()));
        let users = reg
            .by_user
            .iter()
            .map(|(user, ids)| (crate::sessions::census_user_key(*user), ids.len()));
        sessions.chain(users).collect()
    }

    /// Users with at least one open socket on this instance.
    pub fn user_ids(&self) -> Vec<Uuid> {
        self.lock().by_user.keys().copied().collect()
    }

    /// Sessions with at least one open socket on this instance.
    pub fn session_ids(&self) -> Vec<String> {
        self.lock().by_sid.keys().cloned().collect()
    }

    pub fn socket_count(&self) -> usize {
        self.lock().sockets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps {
        per_session: 2,
        per_user_here: 3,
    };

    #[test]
    fn caps_are_checked_when_registering_and_a_closed_socket_frees_its_slot() {
        let hub = Hub::new();
        let user = Uuid::new_v4();
        let a1 = hub.register("a", user, CAPS).unwrap();
        let _a2 = hub.register("a", user, CAPS).unwrap();
        assert_eq!(hub.register("a", user, CAPS).err(), Some(Refused::TooMany));
        let _b1 = hub.register("b", user, CAPS).unwrap();
        assert_eq!(hub.register("c", user, CAPS).err(), Some(Refused::TooMany));
        assert!(
            hub.register("c", Uuid::new_v4(), CAPS).is_ok(),
            "others are not capped"
        );
        drop(a1);
        let _c1 = hub.register("c", user, CAPS).expect("a freed slot");
        let census = hub.census();
        assert_eq!(census["b"], 1);
        assert_eq!(census[&crate::sessions::census_user_key(user)], 3);
        hub.shut_down();
        assert_eq!(
            hub.register("d", Uuid::new_v4(), CAPS).err(),
            Some(Refused::ShuttingDown)
        );
    }
    use crate::ws::OUTBOX_CAPACITY;

    #[test]
    fn outbox_keeps_order_and_a_full_one_marks_the_socket_too_slow() {
        let hub = Hub::new();
        let registration = hub.register("s1", Uuid::new_v4(), CAPS).unwrap();
        let signal = &registration.socket.signal;
        assert_eq!(
            signal.outbox.lock().unwrap().capacity(),
            0,
            "nothing allocated up front"
        );

        for i in 0..OUTBOX_CAPACITY {
            hub.broadcast(i.to_string().into());
        }
        assert!(!signal.too_slow());
        hub.broadcast("one too many".into());
        assert!(signal.too_slow());

        let taken = signal.take_queued(usize::MAX);
        let expected: Vec<Arc<str>> = (0..OUTBOX_CAPACITY).map(|i| i.to_string().into()).collect();
        assert_eq!(taken, expected);
        assert!(signal.take_queued(usize::MAX).is_empty());
        assert!(signal.outbox.lock().unwrap().capacity() <= IDLE_OUTBOX_CAPACITY);
    }

    /// Whether a wake-up is pending (the task would not wait).
    async fn woken(signal: &Signal) -> bool {
        tokio::time::timeout(std::time::Duration::from_millis(20), signal.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_partial_batch_leaves_the_task_woken_for_the_rest() {
        let hub = Hub::new();
        let registration = hub.register("s1", Uuid::new_v4(), CAPS).unwrap();
        let signal = &registration.socket.signal;
        for i in 0..100 {
            hub.broadcast(i.to_string().into());
        }
        assert!(woken(signal).await, "queuing wakes the task");
        assert!(!woken(signal).await, "one wake-up is consumed once");

        assert_eq!(signal.take_queued(32).len(), 32);
        assert!(woken(signal).await, "68 are left: wake again");
        assert_eq!(signal.take_queued(32).len(), 32);
        assert!(woken(signal).await);
        assert_eq!(signal.take_queued(100).len(), 36);
        assert!(!woken(signal).await, "nothing left: no wake-up");
    }

    #[test]
    fn a_dropped_registration_leaves_the_hub() {
        let hub = Hub::new();
        let registration = hub.register("s1", Uuid::new_v4(), CAPS).unwrap();
        assert_eq!(hub.socket_count(), 1);
        drop(registration);
        assert_eq!(hub.socket_count(), 0);
        assert!(hub.session_ids().is_empty());
    }
}
