//! Weighted rendezvous hashing, with an optional load bound.

use super::{Candidate, Strategy};
use crate::{OriginId, StreamKey};

/// Weighted rendezvous (highest-random-weight) hashing: each stream goes to the candidate
/// with the highest [`Rendezvous::score`] of (stream, origin), scaled by the origin's
/// weight. The answer depends only on the stream and the candidates, so proxies that see
/// the same origins place the same stream alike with no shared state, and when an origin
/// joins or leaves only the streams that rank it first move.
///
/// With a load bound (`percent` of the mean, e.g. 125), a candidate already holding its
/// share of `percent/100 × (streams + 1)` (in proportion to its weight) passes the stream
/// to the next candidate in the stream's hash order: a hot origin sheds load, and it does so
/// deterministically for proxies that count the same streams (a shared Redis; not separate
/// memory balancers, each of which counts only its own streams).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rendezvous {
    load_bound_percent: Option<u32>,
}

impl Rendezvous {
    /// The load bound of `rendezvous-bounded`: 1.25 × the mean.
    pub const DEFAULT_LOAD_BOUND_PERCENT: u32 = 125;
    /// The smallest bound accepted: at 100 % every origin would be full as soon as one is.
    pub const MIN_LOAD_BOUND_PERCENT: u32 = 101;

    /// Pure rendezvous: no load bound.
    pub fn new() -> Self {
        Rendezvous::default()
    }

    /// Rendezvous with a load bound of `percent` of the mean (at least
    /// [`Rendezvous::MIN_LOAD_BOUND_PERCENT`]).
    pub fn bounded(percent: u32) -> Self {
        Rendezvous {
            load_bound_percent: Some(percent.max(Self::MIN_LOAD_BOUND_PERCENT)),
        }
    }

    /// The load bound, in percent of the mean, if any.
    pub fn load_bound_percent(&self) -> Option<u32> {
        self.load_bound_percent
    }

    /// The 64-bit hash of a (stream, origin) pair: FNV-1a over the stream's text
    /// (`vhost/app/stream`), a zero byte and the origin id, then MurmurHash3's 64-bit
    /// finaliser (FNV alone mixes the high bits poorly for names that differ at the end).
    /// Fixed and documented, unlike `std`'s hashers, so proxies of different builds agree.
    pub fn hash(key: &StreamKey, origin: &OriginId) -> u64 {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut h = OFFSET;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(PRIME);
            }
        };
        eat(key.vhost().as_bytes());
        eat(b"/");
        eat(key.app().as_bytes());
        eat(b"/");
        eat(key.stream().as_bytes());
        eat(&[0]);
        eat(origin.as_str().as_bytes());
        let mut k = h;
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        k ^ (k >> 33)
    }

    /// An origin's score for a stream: `weight / -ln(u)` with `u` the hash mapped into
    /// (0, 1), which makes each origin's chance of ranking first proportional to its
    /// weight. A weight of zero scores 0: such an origin ranks after every weighted one.
    pub fn score(key: &StreamKey, origin: &OriginId, weight: u32) -> f64 {
        if weight == 0 {
            return 0.0;
        }
        let h = Self::hash(key, origin);
        // The top 53 bits, centred in their interval: never 0, never 1.
        let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        f64::from(weight) / -u.ln()
    }

    /// The candidates in the stream's hash order, highest score first (ties, which need
    /// equal scores, go to the higher hash, then the smaller id).
    pub fn order(key: &StreamKey, candidates: &[Candidate<'_>]) -> Vec<usize> {
        let ranked: Vec<(f64, u64)> = candidates
            .iter()
            .map(|c| {
                (
                    Self::score(key, &c.origin.id, c.origin.weight),
                    Self::hash(key, &c.origin.id),
                )
            })
            .collect();
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by(|&a, &b| {
            ranked[b]
                .0
                .total_cmp(&ranked[a].0)
                .then(ranked[b].1.cmp(&ranked[a].1))
                .then_with(|| candidates[a].origin.id.cmp(&candidates[b].origin.id))
        });
        order
    }

    /// Whether a candidate holds its share under the bound, given the streams of every
    /// candidate and their weights (zero weights count as 1 here, so they have a share).
    fn full(percent: u32, c: &Candidate<'_>, total_streams: u128, total_weight: u128) -> bool {
        // capacity = ceil(percent × (total + 1) × w / (100 × W)), in integers.
        let num = u128::from(percent) * (total_streams + 1) * u128::from(c.origin.weight.max(1));
        let den = 100 * total_weight.max(1);
        let capacity = num.div_ceil(den);
        c.streams as u128 >= capacity
    }
}

impl Strategy for Rendezvous {
    fn choose(&self, key: &StreamKey, candidates: &[Candidate<'_>]) -> usize {
        let order = Self::order(key, candidates);
        let first = order.first().copied().unwrap_or(0);
        let Some(percent) = self.load_bound_percent else {
            return first;
        };
        let total_streams: u128 = candidates.iter().map(|c| c.streams as u128).sum();
        let total_weight: u128 = candidates
            .iter()
            .map(|c| u128::from(c.origin.weight.max(1)))
            .sum();
        // Some candidate is always below its capacity (the capacities add up to more than
        // the streams); the first in order stands in should rounding ever say otherwise.
        order
            .into_iter()
            .find(|&i| !Self::full(percent, &candidates[i], total_streams, total_weight))
            .unwrap_or(first)
    }
    fn name(&self) -> &'static str {
        if self.load_bound_percent.is_some() {
            "rendezvous-bounded"
        } else {
            "rendezvous"
        }
    }
}
