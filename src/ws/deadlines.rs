//! A socket's view of its session's deadlines: when it must next look at the
//! clock, and why. The idle deadline is only a local estimate (HTTP requests
//! and other sockets extend it too), so reaching it means "ask the store"; the
//! absolute deadline never moves, so reaching it means "close".

use std::time::Duration;

use tokio::time::Instant;

/// What is due at [`Deadlines::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Warn if the idle deadline is still this close (after asking the store).
    IdleNotice,
    /// The idle deadline may have passed: ask the store.
    Idle,
    /// Warn once that the absolute deadline is near.
    AbsoluteNotice,
    /// The session's absolute lifetime is over.
    Absolute,
}

#[derive(Debug)]
pub struct Deadlines {
    idle_ttl: Duration,
    notice: Duration,
    idle: Instant,
    idle_notice: Option<Instant>,
    absolute: Instant,
    absolute_notice: Option<Instant>,
}

impl Deadlines {
    /// `notice` is how far ahead `session.expiring` is sent; for the idle
    /// deadline it is capped at half the idle timeout, so an active socket
    /// (which extends the session every quarter timeout) is never warned.
    pub fn new(now: Instant, idle_ttl: Duration, absolute: Instant, notice: Duration) -> Self {
        let mut d = Self {
            idle_ttl,
            notice: notice.min(idle_ttl / 2),
            idle: now,
            idle_notice: None,
            absolute,
            absolute_notice: absolute.checked_sub(notice),
        };
        d.extended_to(now + idle_ttl);
        d
    }

    /// The idle deadline is now `at` (from the store, or after a touch). Once
    /// it reaches the absolute deadline, that one governs, with its own notice.
    pub fn extended_to(&mut self, at: Instant) {
        self.idle = at.min(self.absolute);
        self.idle_notice = if self.idle < self.absolute {
            self.idle.checked_sub(self.notice)
        } else {
            None
        };
    }

    /// Activity just now extended the session by a full idle timeout.
    pub fn touched(&mut self, now: Instant) {
        self.extended_to(now + self.idle_ttl);
    }

    /// The store confirmed the idle deadline `at` while a notice was due:
    /// `true` if a warning should go out now (it is within the notice window).
    pub fn confirm_for_notice(&mut self, at: Instant, now: Instant) -> bool {
        self.extended_to(at);
        if self.idle < self.absolute && self.idle <= now + self.notice {
            self.idle_notice = None;
            true
        } else {
            false
        }
    }

    pub fn absolute_warned(&mut self) {
        self.absolute_notice = None;
    }

    pub fn absolute(&self) -> Instant {
        self.absolute
    }

    pub fn idle(&self) -> Instant {
        self.idle
    }

    /// The earliest thing due, and when.
    pub fn next(&self) -> (Instant, Due) {
        let mut best = (self.absolute, Due::Absolute);
        let candidates = [
            (Some(self.idle), Due::Idle),
            (self.idle_notice, Due::IdleNotice),
            (self.absolute_notice, Due::AbsoluteNotice),
        ];
        for (at, due) in candidates {
            if let Some(at) = at {
                if at < best.0 {
                    best = (at, due);
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_come_before_their_deadlines_and_the_absolute_one_wins_at_the_end() {
        let now = Instant::now();
        let idle = Duration::from_secs(1800);
        let absolute = now + Duration::from_secs(28_800);
        let mut d = Deadlines::new(now, idle, absolute, Duration::from_secs(60));
        assert_eq!(
            d.next(),
            (now + idle - Duration::from_secs(60), Due::IdleNotice)
        );
        // Far from the deadline after all (another request extended it): no warning.
        assert!(!d.confirm_for_notice(now + idle * 2, now));
        assert_eq!(d.next().1, Due::IdleNotice);
        // Warned when the store confirms the deadline is near.
        assert!(d.confirm_for_notice(now + Duration::from_secs(30), now));
        assert_eq!(d.next(), (now + Duration::from_secs(30), Due::Idle));
        // Near the end, the idle deadline is clamped to the absolute one, which
        // then has the only notice.
        d.extended_to(absolute + idle);
        assert_eq!(d.idle(), absolute);
        assert_eq!(
            d.next(),
            (absolute - Duration::from_secs(60), Due::AbsoluteNotice)
        );
        assert!(!d.confirm_for_notice(absolute, absolute - Duration::from_secs(30)));
        d.absolute_warned();
        assert_eq!(d.next(), (absolute, Due::Absolute));
    }

    #[test]
    fn a_short_idle_timeout_caps_the_notice() {
        let now = Instant::now();
        let mut d = Deadlines::new(
            now,
            Duration::from_secs(1),
            now + Duration::from_secs(3),
            Duration::from_secs(60),
        );
        // A 3 s session is warned about its absolute deadline at once …
        assert_eq!(d.next().1, Due::AbsoluteNotice);
        d.absolute_warned();
        // … and about idleness half a timeout ahead, not 60 s.
        assert_eq!(
            d.next(),
            (now + Duration::from_millis(500), Due::IdleNotice)
        );
    }
}
