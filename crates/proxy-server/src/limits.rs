//! Per-client-IP limits, shared by every listener: a client IP may hold at most
//! `max_connections_per_ip` connections and sessions at once, so one host cannot take the
//! global limit for itself. Also the throttle that keeps refusal logs readable under a
//! flood.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

/// Counts live connections per client IP. An IP's entry exists only while it has one, so
/// memory follows live clients, not every address ever seen.
pub struct PerIpLimiter {
    /// The limit; 0: none (a reload may change it).
    limit: AtomicUsize,
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
            limit: AtomicUsize::new(limit.unwrap_or(0)),
            counts: Arc::default(),
        }
    }

    /// The configured limit.
    pub fn limit(&self) -> Option<usize> {
        Some(self.limit.load(Ordering::Relaxed)).filter(|n| *n > 0)
    }

    /// Changes the limit (a configuration reload): connections held stay; new ones meet
    /// the new limit. Connections opened while there was no limit are not counted.
    pub fn set_limit(&self, limit: Option<usize>) {
        self.limit.store(limit.unwrap_or(0), Ordering::Relaxed);
    }

    /// A slot for one more connection from `ip`, or `None` if it has as many as it may.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<IpGuard> {
        let ip = client_of(ip);
        let Some(limit) = self.limit() else {
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

/// Addresses whose `X-Forwarded-For` the proxy believes (`PROXY_TRUSTED_PROXIES`): load
/// balancers and CDNs in front of it. Any other client's header is replaced, not appended
/// to, so an origin hook reading the first entry sees the real peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpRange>);

/// An address block: `10.0.0.0/8`, `2001:db8::/32`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    base: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Whether `ip` is inside the block (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.base, normalise(ip)) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(base) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(base), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(base) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let base = normalise(
            addr.trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("{text:?} is not an IP address or block"))?,
        );
        let bits = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {bits}"))?,
        };
        Ok(IpRange { base, prefix })
    }
}

impl TrustedProxies {
    /// A comma- or space-separated list of addresses and blocks; empty trusts nobody.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    /// Whether a peer at `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(ip))
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
    fn trusted_proxies_are_addresses_and_blocks() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 192.0.2.7 2001:db8::/32").unwrap();
        assert!(trusted.trusts(ip("10.200.3.4")));
        assert!(trusted.trusts(ip("::ffff:10.1.1.1")));
        assert!(trusted.trusts(ip("192.0.2.7")));
        assert!(!trusted.trusts(ip("192.0.2.8")));
        assert!(trusted.trusts(ip("2001:db8:ffff::1")));
        assert!(!trusted.trusts(ip("2001:db9::1")));
        assert!(!TrustedProxies::default().trusts(ip("127.0.0.1")));
        assert!(TrustedProxies::parse("0.0.0.0/0")
            .unwrap()
            .trusts(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "nope", "::/129", "10.0.0.0/x"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
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
