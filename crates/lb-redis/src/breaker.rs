//! Fails Redis calls at once for a moment after one found Redis unreachable, so that
//! while Redis is away each caller does not wait out its own command timeout: a proxy
//! places new streams by its fallback at once instead of after seconds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long calls fail at once after a failure, before one call tries Redis again.
pub const OPEN_FOR: Duration = Duration::from_secs(1);

/// A circuit breaker over the calls to one Redis: closed (calls go through), open until
/// an instant (calls fail at once), then one trial call at a time goes through.
#[derive(Debug)]
pub struct Breaker {
    epoch: Instant,
    /// Milliseconds since `epoch` until which calls fail at once; 0: closed.
    open_until: AtomicU64,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            epoch: Instant::now(),
            open_until: AtomicU64::new(0),
        }
    }
}

impl Breaker {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether a call may go to Redis now. While open, no; once the open time is over,
    /// the first caller is let through as a trial, and the others keep failing at once
    /// for as long as the trial may take (`trial_for`).
    pub fn admit(&self, trial_for: Duration) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        let now = self.now_ms();
        if now < until {
            return false;
        }
        let next = now.saturating_add(u64::try_from(trial_for.as_millis()).unwrap_or(u64::MAX));
        // Only one caller wins the swap: it is the trial.
        self.open_until
            .compare_exchange(until, next.max(1), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// A call reached Redis: calls go through again.
    pub fn succeeded(&self) {
        self.open_until.store(0, Ordering::Release);
    }

    /// A call found Redis unreachable: calls fail at once for [`OPEN_FOR`].
    pub fn failed(&self) {
        let until = self.now_ms().saturating_add(OPEN_FOR.as_millis() as u64);
        self.open_until.store(until.max(1), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_then_open_then_one_trial_at_a_time() {
        // An epoch in the past, so that "the open time is over" can be set below.
        let b = Breaker {
            epoch: Instant::now() - Duration::from_secs(10),
            open_until: AtomicU64::new(0),
        };
        assert!(b.admit(Duration::from_secs(2)), "closed at first");
        b.failed();
        assert!(!b.admit(Duration::from_secs(2)), "open after a failure");
        // Pretend the open time is over.
        b.open_until.store(1, Ordering::Release);
        let trial = Duration::from_secs(3600);
        assert!(b.admit(trial), "the first caller after it is the trial");
        assert!(!b.admit(trial), "the others fail at once while it runs");
        b.succeeded();
        assert!(b.admit(trial), "closed again after a success");
        assert!(b.admit(trial));
    }
}
