//! How a new stream chooses among the origins that can take it.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{Origin, StreamKey};

mod rendezvous;
pub use rendezvous::Rendezvous;

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
/// `least-load`, `weighted`, `rendezvous`, `rendezvous-bounded` or `rendezvous:FACTOR`).
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
    /// [`Rendezvous`], with its load bound in percent of the mean, if any.
    Rendezvous {
        /// `Some(125)`: an origin at 1.25 × its share passes new streams on.
        load_bound_percent: Option<u32>,
    },
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
            StrategyKind::Rendezvous { load_bound_percent } => Box::new(match load_bound_percent {
                Some(percent) => Rendezvous::bounded(percent),
                None => Rendezvous::new(),
            }),
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
            "rendezvous" | "hrw" => Ok(StrategyKind::Rendezvous {
                load_bound_percent: None,
            }),
            "rendezvous-bounded" => Ok(StrategyKind::Rendezvous {
                load_bound_percent: Some(Rendezvous::DEFAULT_LOAD_BOUND_PERCENT),
            }),
            other => match other.strip_prefix("rendezvous:") {
                Some(factor) => parse_load_bound(factor).map(|percent| StrategyKind::Rendezvous {
                    load_bound_percent: Some(percent),
                }),
                None => Err(format!(
                    "unknown strategy {other:?} (random, round-robin, least-streams, least-load, \
                     weighted, rendezvous, rendezvous-bounded, rendezvous:FACTOR)"
                )),
            },
        }
    }
}

/// A load bound written as a factor of the mean (`1.25`), in percent.
fn parse_load_bound(factor: &str) -> Result<u32, String> {
    let bad = || format!("load bound {factor:?}: expected a factor from 1.01 to 10 (e.g. 1.25)");
    let value: f64 = factor.trim().parse().map_err(|_| bad())?;
    if !(1.01..=10.0).contains(&value) {
        return Err(bad());
    }
    Ok((value * 100.0).round() as u32)
}

#[cfg(test)]
mod tests;
