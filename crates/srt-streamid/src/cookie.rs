//! Stateless SYN cookies for the listener side.
//!
//! The cookie is HMAC-SHA256(key, time bucket | peer address | port) truncated to 32 bits.
//! Answering an induction therefore stores nothing, so a flood of spoofed inductions costs
//! one hash each; and without the key nobody can compute the cookie a given address will
//! get, so a conclusion from a spoofed source fails the check. The previous bucket is
//! accepted too, so a handshake straddling a bucket boundary still succeeds.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Issues and checks SYN cookies.
#[derive(Clone)]
pub struct SynCookies {
    // Keyed once; each cookie clones this state instead of re-hashing the key.
    keyed: HmacSha256,
    bucket_secs: u64,
}

impl SynCookies {
    /// How long a cookie's time bucket lasts unless told otherwise.
    pub const DEFAULT_BUCKET: Duration = Duration::from_secs(60);

    /// Cookies keyed by `key`, which the owner draws from a CSPRNG at start (and shares
    /// between proxies that may see the two halves of one handshake).
    pub fn new(key: [u8; 32]) -> Self {
        Self::with_bucket(key, Self::DEFAULT_BUCKET)
    }

    /// Same with another bucket length (at least one second).
    pub fn with_bucket(key: [u8; 32], bucket: Duration) -> Self {
        // HMAC zero-pads keys shorter than its 64-byte block, so padding here gives the
        // same MAC as keying with the 32 bytes, through the infallible constructor.
        let mut block = [0u8; 64];
        for (dst, src) in block.iter_mut().zip(key) {
            *dst = src;
        }
        SynCookies {
            keyed: <HmacSha256 as KeyInit>::new(&block.into()),
            bucket_secs: bucket.as_secs().max(1),
        }
    }

    /// The cookie for `peer` at time `now` (any clock, as long as it is the same one that
    /// is given to [`SynCookies::verify`]).
    pub fn generate(&self, peer: SocketAddr, now: Duration) -> u32 {
        self.mac(peer, self.bucket(now))
    }

    /// True if `cookie` is what `peer` got in this bucket or the previous one.
    pub fn verify(&self, peer: SocketAddr, cookie: u32, now: Duration) -> bool {
        let bucket = self.bucket(now);
        cookie == self.mac(peer, bucket)
            || bucket
                .checked_sub(1)
                .is_some_and(|prev| cookie == self.mac(peer, prev))
    }

    fn bucket(&self, now: Duration) -> u64 {
        now.as_secs() / self.bucket_secs
    }

    fn mac(&self, peer: SocketAddr, bucket: u64) -> u32 {
        let mut mac = self.keyed.clone();
        mac.update(&bucket.to_be_bytes());
        // The family tag keeps an IPv4 address from colliding with an IPv6 one.
        match peer.ip() {
            IpAddr::V4(ip) => {
                mac.update(&[4]);
                mac.update(&ip.octets());
            }
            IpAddr::V6(ip) => {
                mac.update(&[6]);
                mac.update(&ip.octets());
            }
        }
        mac.update(&peer.port().to_be_bytes());
        let digest: [u8; 32] = mac.finalize().into_bytes().into();
        let [a, b, c, d, ..] = digest;
        u32::from_be_bytes([a, b, c, d])
    }
}

impl fmt::Debug for SynCookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("SynCookies")
            .field("bucket_secs", &self.bucket_secs)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn verifies_for_same_peer_and_recent_bucket_only() {
        let c = SynCookies::new([7; 32]);
        let peer = addr("192.0.2.1:5000");
        let t = Duration::from_secs(1_000_000);
        let cookie = c.generate(peer, t);
        assert!(c.verify(peer, cookie, t));
        assert!(
            c.verify(peer, cookie, t + Duration::from_secs(60)),
            "previous bucket"
        );
        assert!(
            !c.verify(peer, cookie, t + Duration::from_secs(120)),
            "two buckets later"
        );
        assert!(!c.verify(addr("192.0.2.1:5001"), cookie, t), "other port");
        assert!(
            !c.verify(addr("192.0.2.2:5000"), cookie, t),
            "other address"
        );
        assert!(
            !SynCookies::new([8; 32]).verify(peer, cookie, t),
            "other key"
        );
        assert!(!c.verify(peer, cookie ^ 1, t));
        assert_eq!(
            c.generate(peer, Duration::ZERO),
            c.generate(peer, Duration::from_secs(59))
        );
    }

    #[test]
    fn known_vector_and_quiet_debug() {
        // Pins the construction: HMAC-SHA256(key=[7;32], bucket BE | 4 | 192.0.2.1 | 5000 BE).
        let c = SynCookies::new([7; 32]);
        let mut reference = <HmacSha256 as Mac>::new_from_slice(&[7; 32]).unwrap();
        reference.update(&[0, 0, 0, 0, 0, 0, 0, 1, 4, 192, 0, 2, 1, 0x13, 0x88]);
        let digest = reference.finalize().into_bytes();
        let expected = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        assert_eq!(
            c.generate(addr("192.0.2.1:5000"), Duration::from_secs(60)),
            expected
        );
        assert!(!format!("{c:?}").contains('7'));
    }

    proptest::proptest! {
        #[test]
        fn other_peers_and_old_buckets_fail(
            key in proptest::array::uniform32(0u8..),
            ip in proptest::array::uniform4(0u8..),
            port in 1u16..,
            other_port in 1u16..,
            secs in 120u64..1 << 40,
            later in 0u64..240,
        ) {
            let c = SynCookies::new(key);
            let peer = SocketAddr::from((ip, port));
            let cookie = c.generate(peer, Duration::from_secs(secs));
            let now = Duration::from_secs(secs + later);
            let recent = (secs + later) / 60 - secs / 60 <= 1;
            // A wrong cookie matching by chance is 2^-32 per try: not seen in a test run.
            proptest::prop_assert_eq!(c.verify(peer, cookie, now), recent);
            if other_port != port {
                proptest::prop_assert!(!c.verify(SocketAddr::from((ip, other_port)), cookie, Duration::from_secs(secs)));
            }
        }
    }
}
