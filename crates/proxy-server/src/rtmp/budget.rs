//! The budget of bytes all RTMP connections together may buffer (`PROXY_RTMP_BUFFER_BUDGET`).
//!
//! Per-connection limits alone do not bound the process: a client's partial messages and
//! pending output are bounded per connection, but a host may open up to
//! `max_connections_per_ip` connections. So each connection holds a [`Charge`] on one
//! shared [`BufferBudget`] and keeps it in line with what it holds (reassembly of partial
//! messages, input not parsed yet, output not written); a connection whose growth the
//! budget cannot cover is closed: the one asking, so that connections already streaming
//! keep what they have.
//!
//! Each connection's first [`FREE_PER_CONNECTION`] bytes are not charged: that is the
//! working set of an ordinary stream (a keyframe being reassembled, a read in flight),
//! already bounded by the connection limits. Only what a connection holds beyond it draws on
//! the budget, so a flood of connections that hoard buffers cannot starve ordinary streams
//! of the budget: they never ask for it.
//!
//! Charges move in [`STEP`]s: the shared counter is touched when a connection's holdings
//! cross a step, not on every read.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::limits::LogThrottle;

/// What a connection may hold without drawing on the budget: a 1080p keyframe (typically
/// 100-300 KiB) being reassembled or relayed, plus a read's worth of input.
pub const FREE_PER_CONNECTION: usize = 256 * 1024;
/// Granularity of charges.
pub const STEP: usize = 64 * 1024;

/// Bytes the RTMP connections of one proxy may hold beyond their free share, together.
pub struct BufferBudget {
    /// `None`: no budget (nothing is counted).
    limit: Option<usize>,
    used: AtomicUsize,
    /// Refusals are logged once a second at most: a flood must not flood the log.
    refusal_log: LogThrottle,
}

impl BufferBudget {
    /// A budget of `limit` bytes; `None` for none.
    pub fn new(limit: Option<usize>) -> Arc<Self> {
        Arc::new(BufferBudget {
            limit,
            used: AtomicUsize::new(0),
            refusal_log: LogThrottle::new(Duration::from_secs(1)),
        })
    }

    /// Bytes charged now, over all connections.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// A charge of nothing yet, for one connection.
    pub fn charge(self: &Arc<Self>) -> Charge {
        Charge {
            budget: self.clone(),
            charged: 0,
        }
    }

    /// Counts a connection closed for the budget (the refusal metric), and logs it at most
    /// once a second with the number of refusals held back since the last line.
    pub fn refused(&self, over: &OverBudget) {
        crate::metrics::refused("rtmp", crate::metrics::Refusal::BufferBudget);
        if let Some(held_back) = self.refusal_log.allow() {
            tracing::warn!(
                budget_bytes = over.budget,
                used_bytes = self.used(),
                connection_bytes = over.held,
                held_back,
                "closed: the RTMP buffer budget is spent (PROXY_RTMP_BUFFER_BUDGET); this connection needed more"
            );
        }
    }
}

/// One connection's share of the budget; given back when dropped.
#[must_use = "the charge is given back when dropped"]
pub struct Charge {
    budget: Arc<BufferBudget>,
    charged: usize,
}

/// A connection needed more of the budget than was left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the RTMP buffer budget of {budget} bytes (all connections together) is spent; this connection holds {held} bytes")]
pub struct OverBudget {
    /// What the connection holds.
    pub held: usize,
    /// The budget.
    pub budget: usize,
}

impl Charge {
    /// Brings the charge in line with `held`, the bytes the connection holds now: draws on
    /// the budget as they grow, gives back as they shrink. On `Err` the charge is unchanged
    /// and the connection should be closed.
    pub fn update(&mut self, held: usize) -> Result<(), OverBudget> {
        let Some(limit) = self.budget.limit else {
            return Ok(());
        };
        let want = held.saturating_sub(FREE_PER_CONNECTION).div_ceil(STEP) * STEP;
        if want > self.charged {
            let more = want - self.charged;
            let drawn =
                self.budget
                    .used
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                        used.checked_add(more).filter(|total| *total <= limit)
                    });
            if drawn.is_err() {
                return Err(OverBudget {
                    held,
                    budget: limit,
                });
            }
        } else if want < self.charged {
            self.budget
                .used
                .fetch_sub(self.charged - want, Ordering::Relaxed);
        }
        self.charged = want;
        Ok(())
    }

    /// Bytes this connection has drawn from the budget.
    #[cfg(test)]
    pub fn charged(&self) -> usize {
        self.charged
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if self.charged > 0 {
            self.budget.used.fetch_sub(self.charged, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn the_free_share_is_not_charged_and_the_rest_is_in_steps() {
        let budget = BufferBudget::new(Some(MIB));
        let mut c = budget.charge();
        c.update(FREE_PER_CONNECTION).unwrap();
        assert_eq!(budget.used(), 0);
        c.update(FREE_PER_CONNECTION + 1).unwrap();
        assert_eq!(budget.used(), STEP);
        c.update(FREE_PER_CONNECTION + STEP).unwrap();
        assert_eq!(budget.used(), STEP);
        c.update(FREE_PER_CONNECTION + STEP + 1).unwrap();
        assert_eq!(budget.used(), 2 * STEP);
        // Shrinking gives back.
        c.update(100).unwrap();
        assert_eq!((budget.used(), c.charged()), (0, 0));
    }

    #[test]
    fn the_connection_asking_past_the_budget_is_refused_and_drops_give_back() {
        let budget = BufferBudget::new(Some(MIB));
        let mut a = budget.charge();
        let mut b = budget.charge();
        a.update(FREE_PER_CONNECTION + 768 * 1024).unwrap();
        let err = b.update(FREE_PER_CONNECTION + 512 * 1024).unwrap_err();
        assert_eq!(err.budget, MIB);
        // The refused connection's charge is unchanged, and it may still have what fits.
        assert_eq!((b.charged(), budget.used()), (0, 768 * 1024));
        b.update(FREE_PER_CONNECTION + 256 * 1024).unwrap();
        assert_eq!(budget.used(), MIB);
        drop(a);
        assert_eq!(budget.used(), 256 * 1024);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn no_budget_counts_nothing() {
        let budget = BufferBudget::new(None);
        let mut c = budget.charge();
        c.update(usize::MAX).unwrap();
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn many_connections_racing_never_exceed_the_budget() {
        let budget = BufferBudget::new(Some(4 * MIB));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let budget = budget.clone();
                std::thread::spawn(move || {
                    let mut c = budget.charge();
                    for i in 0..10_000usize {
                        let _ = c.update(FREE_PER_CONNECTION + (i * 7919) % (2 * MIB));
                        assert!(budget.used() <= 4 * MIB);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(budget.used(), 0);
    }
}
