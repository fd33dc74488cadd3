//! How a new stream chooses among the origins that can take it.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{Origin, StreamKey};

/// An origin that can take a new stream, with its current load.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The origin (alive, not draining, below its capacity).
    pub origin: &'a Origin,
    /// Streams currently placed on it.
    pub streams: usize,
    /// Client sessions relayed to it, as the proxies last reported.
    pub connections: u64,
}

/// Chooses an origin for a stream that has none. Called only with a non-empty slice.
pub trait Strategy: Send + Sync + 'static {
    /// The index of the chosen candidate.
    fn choose(&self, key: &StreamKey, candidates: &[Candidate<'_>]) -> usize;
    /// A short name for logs and the API.
    fn name(&self) -> &'static str;
}

/// Uniformly random, as SRS's proxy does.
#[derive(Debug, Default)]
pub struct Random;

impl Strategy for Random {
    fn choose(&self, _: &StreamKey, candidates: &[Candidate<'_>]) -> usize {
        fastrand::usize(..candidates.len())
    }
    fn name(&self) -> &'static str {
        "random"
    }
}

/// Each new stream to the next origin in id order.
#[derive(Debug, Default)]
pub struct RoundRobin(AtomicUsize);

impl Strategy for RoundRobin {
    fn choose(&self, _: &StreamKey, candidates: &[Candidate<'_>]) -> usize {
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by(|&a, &b| candidates[a].origin.id.cmp(&candidates[b].origin.id));
        order[self.0.fetch_add(1, Ordering::Relaxed) % order.len()]
    }
    fn name(&self) -> &'static str {
        "round-robin"
    }
}

/// The origin with the fewest streams relative to its weight; ties broken at random.
#[derive(Debug, Default)]
pub struct LeastStreams;

impl Strategy for LeastStreams {
    fn choose(&self, _: &StreamKey, candidates: &[Candidate<'_>]) -> usize {
        // Compare streams/weight without floats: a.streams * b.weight vs b.streams * a.weight.
        let load = |c: &Candidate<'_>| (c.streams as u128, u128::from(c.origin.weight.max(1)));
        let lighter = |a: usize, b: usize| {
            let ((sa, wa), (sb, wb)) = (load(&candidates[a]), load(&candidates[b]));
            (sa * wb).cmp(&(sb * wa))
        };
        let best = (0..candidates.len())
            .min_by(|&a, &b| lighter(a, b))
            .unwrap_or(0);
        let ties: Vec<usize> = (0..candidates.len())
            .filter(|&i| lighter(i, best).is_eq())
            .collect();
        ties[fastrand::usize(..ties.len())]
    }
    fn name(&self) -> &'static str {
        "least-streams"
    }
}

/// Random, in proportion to each origin's weight.
#[derive(Debug, Default)]
pub struct Weighted;

impl Strategy for Weighted {
    fn choose(&self, _: &StreamKey, candidates: &[Candidate<'_>]) -> usize {
        let total: u64 = candidates.iter().map(|c| u64::from(c.origin.weight)).sum();
        if total == 0 {
            return fastrand::usize(..candidates.len());
        }
        let mut ticket = fastrand::u64(..total);
        for (i, c) in candidates.iter().enumerate() {
            let w = u64::from(c.origin.weight);
            if ticket < w {
                return i;
            }
            ticket -= w;
        }
        candidates.len() - 1
    }
    fn name(&self) -> &'static str {
        "weighted"
    }
}

/// The built-in strategies, by name (`random`, `round-robin`, `least-streams`, `weighted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StrategyKind {
    /// [`Random`].
    #[default]
    Random,
    /// [`RoundRobin`].
    RoundRobin,
    /// [`LeastStreams`].
    LeastStreams,
    /// [`Weighted`].
    Weighted,
}

impl StrategyKind {
    /// A fresh strategy of this kind.
    pub fn build(self) -> Box<dyn Strategy> {
        match self {
            StrategyKind::Random => Box::new(Random),
            StrategyKind::RoundRobin => Box::new(RoundRobin::default()),
            StrategyKind::LeastStreams => Box::new(LeastStreams),
            StrategyKind::Weighted => Box::new(Weighted),
        }
    }
}

impl FromStr for StrategyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "random" => Ok(StrategyKind::Random),
            "round-robin" | "roundrobin" => Ok(StrategyKind::RoundRobin),
            "least-streams" | "least" => Ok(StrategyKind::LeastStreams),
            "weighted" => Ok(StrategyKind::Weighted),
            other => Err(format!(
                "unknown strategy {other:?} (random, round-robin, least-streams, weighted)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OriginId, OriginSource};

    fn origin(id: &str, weight: u32) -> Origin {
        Origin {
            id: OriginId::new(id),
            server: id.into(),
            service: "s".into(),
            pid: "1".into(),
            device_id: None,
            ip: "127.0.0.1".into(),
            rtmp: vec![],
            http: vec![],
            api: vec![],
            srt: vec![],
            rtc: vec![],
            weight,
            max_streams: None,
            max_connections: None,
            load: None,
            source: OriginSource::Static,
        }
    }

    fn key() -> StreamKey {
        StreamKey::new(None, "live", "s").unwrap()
    }

    #[test]
    fn round_robin_cycles_in_id_order() {
        let (a, b, c) = (origin("a", 1), origin("b", 1), origin("c", 1));
        let cands = [
            Candidate {
                origin: &c,
                streams: 0,
                connections: 0,
            },
            Candidate {
                origin: &a,
                streams: 0,
                connections: 0,
            },
            Candidate {
                origin: &b,
                streams: 0,
                connections: 0,
            },
        ];
        let rr = RoundRobin::default();
        let picked: Vec<&str> = (0..6)
            .map(|_| cands[rr.choose(&key(), &cands)].origin.id.as_str())
            .collect();
        assert_eq!(picked, ["a", "b", "c", "a", "b", "c"]);
    }

    #[test]
    fn least_streams_respects_weight() {
        let (a, b) = (origin("a", 1), origin("b", 4));
        // a: 2 streams at weight 1 = load 2; b: 5 streams at weight 4 = load 1.25.
        let cands = [
            Candidate {
                origin: &a,
                streams: 2,
                connections: 0,
            },
            Candidate {
                origin: &b,
                streams: 5,
                connections: 0,
            },
        ];
        for _ in 0..20 {
            assert_eq!(LeastStreams.choose(&key(), &cands), 1);
        }
    }

    #[test]
    fn weighted_follows_weights_and_skips_zero() {
        let (a, b, z) = (origin("a", 1), origin("b", 3), origin("z", 0));
        let cands = [
            Candidate {
                origin: &a,
                streams: 0,
                connections: 0,
            },
            Candidate {
                origin: &b,
                streams: 0,
                connections: 0,
            },
            Candidate {
                origin: &z,
                streams: 0,
                connections: 0,
            },
        ];
        let mut counts = [0usize; 3];
        for _ in 0..4000 {
            counts[Weighted.choose(&key(), &cands)] += 1;
        }
        assert_eq!(counts[2], 0);
        assert!(counts[1] > counts[0] * 2, "{counts:?}");
    }

    #[test]
    fn random_reaches_every_candidate() {
        let (a, b) = (origin("a", 1), origin("b", 1));
        let cands = [
            Candidate {
                origin: &a,
                streams: 0,
                connections: 0,
            },
            Candidate {
                origin: &b,
                streams: 0,
                connections: 0,
            },
        ];
        let mut seen = [false; 2];
        for _ in 0..200 {
            seen[Random.choose(&key(), &cands)] = true;
        }
        assert_eq!(seen, [true, true]);
        assert_eq!(
            "least-streams".parse::<StrategyKind>(),
            Ok(StrategyKind::LeastStreams)
        );
        assert!("best".parse::<StrategyKind>().is_err());
    }
}
