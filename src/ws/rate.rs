//! A socket's message rate: a token bucket (GCRA, `governor`) of
//! `TETHER_WS_MESSAGES_PER_SEC` refilled per second and
//! `TETHER_WS_MESSAGE_BURST` deep. A message over it is refused (and not
//! handled); a socket refused for [`CLOSE_AFTER`] in a row is closed (1008).

use std::{num::NonZeroU32, time::Duration};

use governor::{clock::DefaultClock, state::InMemoryState, state::NotKeyed, Quota, RateLimiter};
use tokio::time::Instant;

/// How long a socket may stay over its rate before it is closed.
pub const CLOSE_AFTER: Duration = Duration::from_secs(10);

/// What the bucket says about one client message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Refused: reply `rate_limited`.
    Refused,
    /// Refused, and it has been so for [`CLOSE_AFTER`]: close the socket.
    Close,
}

pub struct MessageRate {
    bucket: RateLimiter<NotKeyed, InMemoryState, DefaultClock>,
    /// When the current run of refusals began, and the latest refusal. A
    /// client that keeps sending faster than the rate gets the odd message
    /// through as tokens trickle back; the run ends only after a second
    /// without any refusal.
    refused: Option<(Instant, Instant)>,
}

/// A run of refusals ends after this long without one.
const QUIET: Duration = Duration::from_secs(1);

impl MessageRate {
    pub fn new(per_sec: u32, burst: u32) -> Self {
        let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Self {
            bucket: RateLimiter::direct(Quota::per_second(per_sec).allow_burst(burst)),
            refused: None,
        }
    }

    /// Takes a token for one message, at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        if let Some((_, last)) = self.refused {
            if now.duration_since(last) >= QUIET {
                self.refused = None;
            }
        }
        if self.bucket.check().is_ok() {
            return Verdict::Allowed;
        }
        let since = self.refused.map_or(now, |(since, _)| since);
        self.refused = Some((since, now));
        if now.duration_since(since) >= CLOSE_AFTER {
            Verdict::Close
        } else {
            Verdict::Refused
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refusals every `step` from `from` until `until`; the last verdict.
    fn refuse_every(
        rate: &mut MessageRate,
        from: Instant,
        step: Duration,
        until: Duration,
    ) -> Verdict {
        let mut at = from;
        let mut last = Verdict::Allowed;
        while at <= from + until {
            last = rate.check(at);
            at += step;
        }
        last
    }

    #[test]
    fn a_burst_passes_then_messages_are_refused_and_a_long_flood_closes() {
        // One token an hour: after the burst, nothing refills during the test.
        let mut rate = MessageRate::new(1, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(rate.check(start), Verdict::Allowed);
        }
        let step = Duration::from_millis(500);
        let almost = CLOSE_AFTER - step;
        assert_eq!(
            refuse_every(&mut rate, start, step, almost),
            Verdict::Refused
        );
        assert_eq!(rate.check(start + CLOSE_AFTER), Verdict::Close);
    }

    #[test]
    fn a_quiet_second_ends_a_run_of_refusals() {
        let mut rate = MessageRate::new(1, 1);
        let start = Instant::now();
        assert_eq!(rate.check(start), Verdict::Allowed);
        let step = Duration::from_millis(500);
        assert_eq!(
            refuse_every(&mut rate, start, step, CLOSE_AFTER / 2),
            Verdict::Refused
        );
        // A quiet second, then refusals again: a new run, not yet 10 s long.
        let resumed = start + CLOSE_AFTER / 2 + QUIET + step;
        let verdict = refuse_every(&mut rate, resumed, step, CLOSE_AFTER - step);
        assert_eq!(verdict, Verdict::Refused);
        assert_eq!(rate.check(resumed + CLOSE_AFTER), Verdict::Close);
    }
}
