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

/// The origin with the fewest streams relative to its weight; ties go to the one with the
/// fewest connections, then are broken at random.
#[derive(Debug, Default)]
pub struct LeastStreams;

impl Strategy for LeastStreams {
    fn choose(&self, _: &StreamKey, candidates: &[Candidate<'_>]) -> usize {
        lightest(candidates, |a, b| {
            by_streams_per_weight(a, b).then(a.connections.cmp(&b.connections))
        })
    }
    fn name(&self) -> &'static str {
        "least-streams"
    }
}

/// The origin whose host reports the lowest CPU use (SRS's heartbeat `summaries`), then as
/// [`LeastStreams`]: fewest streams per weight, fewest connections, random.
///
/// CPU is compared in bands of [`LeastLoad::CPU_BAND`] points: reports are up to one
/// heartbeat old and noisy, so 31 % and 38 % count as equal and the stream counts, which
/// are current, decide between them. An origin that sends no CPU report is ranked as if it
/// reported the average of those that do (so it is neither starved nor flooded); when
/// nobody reports, this is [`LeastStreams`].
#[derive(Debug, Default)]
pub struct LeastLoad;

impl LeastLoad {
    /// Width of the CPU bands, in percentage points.
    pub const CPU_BAND: u32 = 10;
}

impl Strategy for LeastLoad {
    fn choose(&self, _: &StreamKey, candidates: &[Candidate<'_>]) -> usize {
        let reported: Vec<u32> = candidates
            .iter()
            .filter_map(|c| c.origin.load.and_then(|l| l.cpu_percent))
            .collect();
        let average = if reported.is_empty() {
            0
        } else {
            reported.iter().map(|&v| u64::from(v.min(100))).sum::<u64>() / reported.len() as u64
        };
        let band = |c: &Candidate<'_>| {
            let cpu = c
                .origin
                .load
                .and_then(|l| l.cpu_percent)
                .map_or(average, |v| u64::from(v.min(100)));
            cpu / u64::from(Self::CPU_BAND)
        };
        lightest(candidates, |a, b| {
            band(a)
                .cmp(&band(b))
                .then_with(|| by_streams_per_weight(a, b))
                .then(a.connections.cmp(&b.connections))
        })
    }
    fn name(&self) -> &'static str {
        "least-load"
    }
}

/// Streams per weight, compared without floats: `a.streams * b.weight` vs
/// `b.streams * a.weight` (a zero weight counts as 1).
fn by_streams_per_weight(a: &Candidate<'_>, b: &Candidate<'_>) -> std::cmp::Ordering {
    let load = |c: &Candidate<'_>| (c.streams as u128, u128::from(c.origin.weight.max(1)));
    let ((sa, wa), (sb, wb)) = (load(a), load(b));
    (sa * wb).cmp(&(sb * wa))
}

/// The index of a least candidate by `order`; ties broken at random.
fn lightest(
    candidates: &[Candidate<'_>],
    order: impl Fn(&Candidate<'_>, &Candidate<'_>) -> std::cmp::Ordering,
) -> usize {
    let best = (0..candidates.len())
        .min_by(|&a, &b| order(&candidates[a], &candidates[b]))
        .unwrap_or(0);
    let ties: Vec<usize> = (0..candidates.len())
        .filter(|&i| order(&candidates[i], &candidates[best]).is_eq())
        .collect();
    if ties.is_empty() {
        return best;
    }
    ties[fastrand::usize(..ties.len())]
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

/// The built-in strategies, by name (`random`, `round-robin`, `least-streams`,
/// `least-load`, `weighted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StrategyKind {
    /// [`Random`].
    #[default]
    Random,
    /// [`RoundRobin`].
    RoundRobin,
    /// [`LeastStreams`].
    LeastStreams,
    /// [`LeastLoad`].
    LeastLoad,
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
            StrategyKind::LeastLoad => Box::new(LeastLoad),
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
            "least-load" => Ok(StrategyKind::LeastLoad),
            "weighted" => Ok(StrategyKind::Weighted),
            other => Err(format!(
                "unknown strategy {other:?} (random, round-robin, least-streams, least-load, weighted)"
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

    fn cand(origin: &Origin, streams: usize, connections: u64) -> Candidate<'_> {
        Candidate {
            origin,
            streams,
            connections,
        }
    }

    fn loaded(id: &str, cpu: Option<u32>) -> Origin {
        let mut o = origin(id, 1);
        o.load = cpu.map(|cpu| crate::OriginLoad {
            cpu_percent: Some(cpu),
            ..Default::default()
        });
        o
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

    #[test]
    fn least_streams_breaks_ties_by_connections() {
        let (a, b, c) = (origin("a", 1), origin("b", 1), origin("c", 1));
        let cands = [cand(&a, 3, 50), cand(&b, 3, 10), cand(&c, 4, 0)];
        for _ in 0..20 {
            assert_eq!(LeastStreams.choose(&key(), &cands), 1);
        }
    }

    #[test]
    fn least_load_prefers_the_lowest_cpu_band() {
        let (hot, cool) = (loaded("hot", Some(85)), loaded("cool", Some(20)));
        // The cool origin wins although it holds more streams.
        let cands = [cand(&hot, 0, 0), cand(&cool, 10, 100)];
        for _ in 0..20 {
            assert_eq!(LeastLoad.choose(&key(), &cands), 1);
        }
        // Within one band, streams per weight decide, then connections.
        let (a, b, c) = (
            loaded("a", Some(31)),
            loaded("b", Some(38)),
            loaded("c", Some(33)),
        );
        let cands = [cand(&a, 5, 0), cand(&b, 2, 9), cand(&c, 2, 3)];
        for _ in 0..20 {
            assert_eq!(LeastLoad.choose(&key(), &cands), 2);
        }
    }

    #[test]
    fn least_load_ranks_a_silent_origin_as_the_average() {
        let (low, high, silent) = (
            loaded("low", Some(10)),
            loaded("high", Some(90)),
            loaded("silent", None),
        );
        // Average 50: the silent origin ranks after `low`, before `high`.
        let cands = [cand(&high, 0, 0), cand(&silent, 0, 0), cand(&low, 9, 0)];
        assert_eq!(LeastLoad.choose(&key(), &cands), 2);
        // The average is of the candidates: with `high` the only one reporting, the silent
        // one ranks as 90 too, and streams decide.
        let cands = [cand(&high, 0, 0), cand(&silent, 5, 0)];
        assert_eq!(LeastLoad.choose(&key(), &cands), 0);
        // Nobody reports: least-streams, then connections.
        let (x, y) = (loaded("x", None), loaded("y", None));
        let cands = [cand(&x, 2, 0), cand(&y, 1, 7)];
        assert_eq!(LeastLoad.choose(&key(), &cands), 1);
        let mut seen = [false; 2];
        let cands = [cand(&x, 1, 1), cand(&y, 1, 1)];
        for _ in 0..200 {
            seen[LeastLoad.choose(&key(), &cands)] = true;
        }
        assert_eq!(seen, [true, true], "full ties are broken at random");
        assert_eq!(
            "least-load".parse::<StrategyKind>(),
            Ok(StrategyKind::LeastLoad)
        );
        assert_eq!(StrategyKind::LeastLoad.build().name(), "least-load");
    }
}
