//! lb-memory against the balancer conformance suite (`lb_core::testing`), on a fake clock;
//! and what only this implementation has: sweeping, bounded memory, its metrics.

use std::sync::Arc;
use std::time::Duration;

use lb_core::testing::{key, origin, static_origin, Harness};
use lb_core::{
    Balancer, BalancerConfig, HlsSession, LiveStream, ManualClock, PickIntent, Strategy,
    StrategyKind,
};

use super::MemoryBalancer;

const TTL: Duration = Duration::from_secs(300);
const TENTATIVE: Duration = Duration::from_secs(30);

/// lb-memory on a [`ManualClock`]: the suite's time passes at once.
#[derive(Default)]
struct Memory(Arc<ManualClock>);

#[async_trait::async_trait]
impl Harness for Memory {
    async fn balancer(
        &self,
        config: BalancerConfig,
        strategy: Box<dyn Strategy>,
    ) -> Arc<dyn Balancer> {
        Arc::new(MemoryBalancer::with_clock(config, strategy, self.0.clone()))
    }

    async fn advance(&self, by: Duration) {
        self.0.advance(by);
    }
}

mod conformance {
    lb_core::conformance_tests!(super::Memory::default());
}

/// The whole suite again with rendezvous wherever a scenario leaves the choice open.
mod conformance_rendezvous {
    lb_core::conformance_tests!(lb_core::testing::UnderRendezvous(super::Memory::default()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_suite_runs_in_one_go() {
    lb_core::testing::run_all(&Memory::default()).await;
}

fn balancer(kind: StrategyKind) -> (MemoryBalancer, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let config = BalancerConfig {
        origin_ttl: TTL,
        session_ttl: Duration::from_secs(120),
        placement_ttl: Duration::from_secs(3600),
        tentative_ttl: TENTATIVE,
    };
    (
        MemoryBalancer::with_clock(config, kind.build(), clock.clone()),
        clock,
    )
}

#[tokio::test]
async fn memory_stays_bounded_without_explicit_sweeps() {
    let (lb, clock) = balancer(StrategyKind::Random);
    let a = origin("a", "1");
    for round in 0..20 {
        lb.register(a.clone()).await.unwrap();
        for n in 0..500 {
            let hls = HlsSession {
                key: key("cam"),
                origin: a.id.clone(),
            };
            lb.put_hls(&format!("{round}-{n}"), &hls).await.unwrap();
        }
        clock.advance(Duration::from_secs(61));
    }
    let (_, _, hls, _) = lb.sizes();
    assert!(
        hls <= 2 * 500 + 500,
        "{hls} HLS sessions kept after 20 rounds of 500"
    );
}

#[tokio::test]
async fn sweeps_drop_expired_placements_and_release_drops_at_once() {
    let (lb, clock) = balancer(StrategyKind::LeastStreams);
    let a = origin("a", "1");
    lb.register(a.clone()).await.unwrap();
    for n in 0..6 {
        lb.pick(&key(&format!("s{n}")), PickIntent::Publish)
            .await
            .unwrap();
    }
    // Their publishers were accepted: live sessions confirm the placements.
    let live: Vec<LiveStream> = (0..6)
        .map(|n| LiveStream {
            key: key(&format!("s{n}")),
            origin: a.id.clone(),
            publishing: true,
        })
        .collect();
    lb.touch(&live).await.unwrap();
    for stream in ["nobody", "released"] {
        lb.pick(&key(stream), PickIntent::Play).await.unwrap();
    }
    assert_eq!(lb.sizes().1, 8);
    lb.release(&key("released"), &a.id).await.unwrap();
    assert_eq!(lb.sizes().1, 7, "released at once, not left to the sweep");
    clock.advance(TENTATIVE * 2);
    lb.sweep();
    assert_eq!(
        lb.sizes().1,
        6,
        "the sweep drops expired tentative placements"
    );
    // Nobody uses the streams for longer than the placement TTL (the origin heartbeats).
    for _ in 0..13 {
        clock.advance(Duration::from_secs(290));
        lb.register(a.clone()).await.unwrap();
    }
    // An expired firm placement counts until it is swept or replaced (lb-redis's counts
    // drop at once: its sets are scored by expiry).
    lb.sweep();
    assert_eq!(lb.origin(&a.id).await.unwrap().unwrap().streams, 0);
    assert!(lb.placements().await.unwrap().is_empty());
    assert_eq!(lb.sizes().1, 0, "the sweep drops expired firm placements");
}

/// Counts counter increments by `name{label=value,..}`.
#[derive(Default)]
struct Counting(Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>);

struct CountingHandle {
    key: String,
    counts: Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>,
}

impl metrics::CounterFn for CountingHandle {
    fn increment(&self, value: u64) {
        *self
            .counts
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += value;
    }
    fn absolute(&self, value: u64) {
        self.counts.lock().unwrap().insert(self.key.clone(), value);
    }
}

impl metrics::Recorder for Counting {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        metrics::Counter::from_arc(Arc::new(CountingHandle {
            key: format!("{}{{{}}}", key.name(), labels.join(",")),
            counts: self.0.clone(),
        }))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

#[test]
fn picks_are_counted_by_outcome() {
    let recorder = Counting::default();
    metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (lb, _) = balancer(StrategyKind::Random);
            let (a, b) = (static_origin("a"), static_origin("b"));
            lb.register(a.clone()).await.unwrap();
            let k = key("cam");
            lb.pick(&k, PickIntent::Publish).await.unwrap();
            lb.pick(&k, PickIntent::Play).await.unwrap();
            lb.pick(&k, PickIntent::Play).await.unwrap();
            lb.register(b.clone()).await.unwrap();
            lb.mark_down(&a.id, "probe", Duration::from_secs(60))
                .await
                .unwrap();
            assert_eq!(lb.pick(&k, PickIntent::Play).await.unwrap().id, b.id);
            lb.mark_down(&b.id, "probe", Duration::from_secs(60))
                .await
                .unwrap();
            assert!(lb.pick(&key("other"), PickIntent::Play).await.is_err());
        });
    });
    let counts = recorder.0.lock().unwrap().clone();
    let count = |outcome: &str| {
        counts
            .get(&format!(
                "proxy_picks_total{{balancer=memory,outcome={outcome}}}"
            ))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(
        (
            count("placed"),
            count("kept"),
            count("replaced"),
            count("failed")
        ),
        (1, 2, 1, 1),
        "{counts:?}"
    );
}

#[tokio::test]
async fn a_new_strategy_places_new_streams_and_leaves_placed_ones() {
    let (lb, _clock) = balancer(StrategyKind::RoundRobin);
    let (a, b) = (origin("a", "1"), origin("b", "2"));
    lb.register(a.clone()).await.unwrap();
    lb.register(b.clone()).await.unwrap();
    let first = lb.pick(&key("first"), PickIntent::Publish).await.unwrap();
    assert_eq!(lb.strategy_name(), "round-robin");
    lb.set_strategy(StrategyKind::LeastStreams.build()).unwrap();
    assert_eq!(lb.strategy_name(), "least-streams");
    // Least-streams avoids the origin holding "first"; "first" stays where it is.
    let second = lb.pick(&key("second"), PickIntent::Publish).await.unwrap();
    assert_ne!(second.id, first.id);
    let again = lb.pick(&key("first"), PickIntent::Publish).await.unwrap();
    assert_eq!(again.id, first.id);
}

#[tokio::test]
async fn a_removed_origin_takes_no_stream_and_its_streams_move() {
    let (lb, _clock) = balancer(StrategyKind::LeastStreams);
    let (a, b) = (origin("a", "1"), origin("b", "2"));
    lb.register(a.clone()).await.unwrap();
    let placed = lb.pick(&key("s"), PickIntent::Publish).await.unwrap();
    assert_eq!(placed.id, a.id);
    lb.register(b.clone()).await.unwrap();
    lb.remove_origin(&a.id).await.unwrap();
    assert!(lb.origin(&a.id).await.unwrap().is_none());
    let moved = lb.pick(&key("s"), PickIntent::Publish).await.unwrap();
    assert_eq!(moved.id, b.id, "the stream moves at its next pick");
    lb.remove_origin(&a.id).await.unwrap();
}
