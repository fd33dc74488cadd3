//! Per-client-IP limits, shared by every listener: a client IP may hold at most
//! `max_connections_per_ip` connections and sessions at once, so one host cannot take the
//! global limit for itself. Also the throttle that keeps refusal logs readable under a
//! flood.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

/// Counts live connections per client IP. An IP's entry exists only while it has one, so
/// memory follows live clients, not every address ever seen.
pub struct PerIpLimiter {
    limit: Option<usize>,
    counts: Arc<DashMap<IpAddr, usize>>,
}

/// One connection of an IP; dropping it gives the slot back.
#[must_use = "the slot is given back when the guard is dropped"]
pub struct IpGuard {
    /// `None` when no limit is configured: nothing to count.
    counts: Option<Arc<DashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl PerIpLimiter {
    /// A limiter allowing `limit` connections per IP; `None`: no limit (and no tracking).
    pub fn new(limit: Option<usize>) -> Self {
        PerIpLimiter {
            limit,
            counts: Arc::default(),
        }
    }

    /// The configured limit.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// A slot for one more connection from `ip`, or `None` if it has as many as it may.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<IpGuard> {
        let ip = client_of(ip);
        let Some(limit) = self.limit else {
            return Some(IpGuard { counts: None, ip });
        };
        match self.counts.entry(ip) {
            Entry::Occupied(mut held) => {
                if *held.get() >= limit {
                    return None;
                }
                *held.get_mut() += 1;
            }
            Entry::Vacant(free) => {
                if limit == 0 {
                    return None;
                }
                free.insert(1);
            }
        }
        Some(IpGuard {
            counts: Some(self.counts.clone()),
            ip,
        })
    }

    /// Connections `ip` holds now.
    pub fn count(&self, ip: IpAddr) -> usize {
        self.counts.get(&client_of(ip)).map_or(0, |n| *n)
    }

    /// IPs with at least one connection.
    pub fn tracked(&self) -> usize {
        self.counts.len()
    }
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        let Some(counts) = &self.counts else { return };
        if let Entry::Occupied(mut held) = counts.entry(self.ip) {
            if *held.get() <= 1 {
                held.remove();
            } else {
                *held.get_mut() -= 1;
            }
        }
    }
}

/// One client, one address: an IPv4 client reaching a dual-stack listener shows up as
/// `::ffff:a.b.c.d`, and is the IPv4 client.
pub fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client a per-IP limit counts an address against: the address itself for IPv4
/// (mapped or not), its /64 for IPv6. One host is handed a whole /64 (SLAAC, privacy
/// addresses), so counting single IPv6 addresses would let it walk past any per-IP limit.
pub fn client_of(ip: IpAddr) -> IpAddr {
    match normalise(ip) {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !(u128::MAX >> 64)).into()),
        v4 => v4,
    }
}

/// Lets a log line through at most once per period, and says how many were held back: a
/// flood of refused clients costs one line a second, not one per client.
pub struct LogThrottle {
    period_ms: u64,
    epoch: Instant,
    /// Milliseconds since `epoch` when a line may next be logged (0: now).
    next_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl LogThrottle {
    /// A throttle letting one line through per `period`.
    pub fn new(period: Duration) -> Self {
        LogThrottle {
            period_ms: period.as_millis().max(1) as u64,
            epoch: Instant::now(),
            next_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(held back since the last line)` if a line may be logged now.
    pub fn allow(&self) -> Option<u64> {
        let now = self.epoch.elapsed().as_millis() as u64;
        let next = self.next_ms.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now + self.period_ms,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn limits_each_ip_and_forgets_it_at_zero() {
        let limiter = PerIpLimiter::new(Some(2));
        let a1 = limiter.try_acquire(ip("10.0.0.1")).unwrap();
        let a2 = limiter.try_acquire(ip("10.0.0.1")).unwrap();
        assert!(limiter.try_acquire(ip("10.0.0.1")).is_none());
        // Another client is not affected.
        let b = limiter.try_acquire(ip("10.0.0.2")).unwrap();
        assert_eq!(limiter.count(ip("10.0.0.1")), 2);
        drop(a1);
        let a3 = limiter.try_acquire(ip("10.0.0.1")).unwrap();
        drop((a2, a3, b));
        assert_eq!(limiter.tracked(), 0);
        assert_eq!(limiter.count(ip("10.0.0.1")), 0);
    }

    #[test]
    fn a_mapped_ipv4_client_is_the_ipv4_client() {
        let limiter = PerIpLimiter::new(Some(1));
        let _held = limiter.try_acquire(ip("192.0.2.7")).unwrap();
        assert!(limiter.try_acquire(ip("::ffff:192.0.2.7")).is_none());
        assert_eq!(normalise(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(normalise(ip("2001:db8::1")), ip("2001:db8::1"));
        assert_eq!(client_of(ip("2001:db8::1")), ip("2001:db8::"));
        assert_eq!(client_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64() {
        let limiter = PerIpLimiter::new(Some(2));
        let _a = limiter.try_acquire(ip("2001:db8:1:2::1")).unwrap();
        let _b = limiter
            .try_acquire(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
            .unwrap();
        // Another address of the same /64 is the same client.
        assert!(limiter
            .try_acquire(ip("2001:db8:1:2:dead:beef::7"))
            .is_none());
        // The neighbouring /64 is another client.
        assert!(limiter.try_acquire(ip("2001:db8:1:3::1")).is_some());
        assert_eq!(limiter.count(ip("2001:db8:1:2::99")), 2);
    }

    #[test]
    fn no_limit_tracks_nothing() {
        let limiter = PerIpLimiter::new(None);
        let guards: Vec<_> = (0..100)
            .map(|_| limiter.try_acquire(ip("10.0.0.1")).unwrap())
            .collect();
        assert_eq!(limiter.tracked(), 0);
        drop(guards);
    }

    #[test]
    fn many_clients_leave_nothing_behind() {
        let limiter = PerIpLimiter::new(Some(3));
        let guards: Vec<_> = (0..10_000u32)
            .map(|n| limiter.try_acquire(IpAddr::from(n.to_be_bytes())).unwrap())
            .collect();
        assert_eq!(limiter.tracked(), 10_000);
        drop(guards);
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn throttle_lets_one_line_per_period_and_counts_the_rest() {
        let throttle = LogThrottle::new(Duration::from_secs(3600));
        assert_eq!(throttle.allow(), Some(0));
        for _ in 0..5 {
            assert_eq!(throttle.allow(), None);
        }
        // Pretend the period passed.
        throttle.next_ms.store(0, Ordering::Relaxed);
        assert_eq!(throttle.allow(), Some(5));
    }
}
