use std::sync::Arc;
use std::time::Duration;

use lb_core::{
    Balancer, BalancerConfig, Error, HlsSession, LiveStream, ManualClock, Origin, OriginId,
    PickIntent, Registration, RtcSession, StrategyKind, StreamKey,
};

use super::MemoryBalancer;

const TTL: Duration = Duration::from_secs(300);
const TENTATIVE: Duration = Duration::from_secs(30);

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

fn origin(server: &str, pid: &str) -> Origin {
    let body = format!(
        r#"{{"ip":"127.0.0.1","server":"{server}","service":"svc{pid}","pid":"{pid}","rtmp":["19350"]}}"#
    );
    Registration::from_json(body.as_bytes())
        .unwrap()
        .into_origin()
        .unwrap()
}

fn key(stream: &str) -> StreamKey {
    StreamKey::new(None, "live", stream).unwrap()
}

#[tokio::test]
async fn a_stream_sticks_to_its_origin() {
    let (lb, _) = balancer(StrategyKind::Random);
    for s in ["a", "b", "c"] {
        lb.register(origin(s, "1")).await.unwrap();
    }
    for n in 0..30 {
        let k = key(&format!("s{n}"));
        let first = lb.pick(&k, PickIntent::Publish).await.unwrap().id;
        for _ in 0..5 {
            assert_eq!(lb.pick(&k, PickIntent::Play).await.unwrap().id, first);
        }
    }
    let placements = lb.placements().await.unwrap();
    assert_eq!(placements.len(), 30);
    let counted: usize = lb.origins().await.unwrap().iter().map(|s| s.streams).sum();
    assert_eq!(counted, 30);
}

#[tokio::test]
async fn a_dead_origin_loses_its_streams_at_the_next_pick() {
    let (lb, clock) = balancer(StrategyKind::Random);
    lb.register(origin("a", "1")).await.unwrap();
    let k = key("cam");
    assert_eq!(lb.pick(&k, PickIntent::Publish).await.unwrap().server, "a");
    lb.register(origin("b", "1")).await.unwrap();
    clock.advance(TTL - Duration::from_secs(1));
    lb.register(origin("b", "1")).await.unwrap(); // b heartbeats, a does not
    assert_eq!(
        lb.pick(&k, PickIntent::Play).await.unwrap().server,
        "a",
        "a is still within its TTL"
    );
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        lb.pick(&k, PickIntent::Play).await.unwrap().server,
        "b",
        "a expired: placed again"
    );
    let statuses = lb.origins().await.unwrap();
    let a = statuses.iter().find(|s| s.origin.server == "a").unwrap();
    assert!(!a.alive);
}

#[tokio::test]
async fn draining_moves_publishers_keeps_players_and_refuses_new_streams() {
    let (lb, _) = balancer(StrategyKind::Random);
    let a = origin("a", "1");
    lb.register(a.clone()).await.unwrap();
    let k = key("cam");
    lb.pick(&k, PickIntent::Publish).await.unwrap();
    lb.register(origin("b", "1")).await.unwrap();
    lb.set_draining(&a.id, true).await.unwrap();
    assert_eq!(
        lb.pick(&k, PickIntent::Play).await.unwrap().server,
        "a",
        "players follow the live stream"
    );
    for n in 0..20 {
        assert_eq!(
            lb.pick(&key(&format!("new{n}")), PickIntent::Publish)
                .await
                .unwrap()
                .server,
            "b"
        );
    }
    assert_eq!(
        lb.pick(&k, PickIntent::Publish).await.unwrap().server,
        "b",
        "a republish leaves the draining origin"
    );
    assert!(matches!(
        lb.set_draining(&OriginId::new("nope"), true).await,
        Err(Error::UnknownOrigin(_))
    ));
}

#[tokio::test]
async fn no_origin_says_why() {
    let (lb, clock) = balancer(StrategyKind::Random);
    match lb.pick(&key("x"), PickIntent::Play).await {
        Err(Error::NoOrigin {
            registered: 0,
            alive: 0,
            accepting: 0,
        }) => {}
        other => panic!("{other:?}"),
    }
    lb.register(origin("a", "1")).await.unwrap();
    clock.advance(TTL);
    match lb.pick(&key("x"), PickIntent::Play).await {
        Err(Error::NoOrigin {
            registered: 1,
            alive: 0,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_restart_replaces_the_old_process_at_once() {
    let (lb, _) = balancer(StrategyKind::Random);
    lb.register(origin("a", "1")).await.unwrap();
    let k = key("cam");
    assert_eq!(lb.pick(&k, PickIntent::Publish).await.unwrap().pid, "1");
    lb.register(origin("a", "2")).await.unwrap();
    let statuses = lb.origins().await.unwrap();
    assert_eq!(statuses.len(), 1);
    assert_eq!(lb.pick(&k, PickIntent::Publish).await.unwrap().pid, "2");
}

#[tokio::test]
async fn capacity_and_least_streams() {
    let (lb, _) = balancer(StrategyKind::LeastStreams);
    let mut small = origin("small", "1");
    small.max_streams = Some(2);
    lb.register(small).await.unwrap();
    lb.register(origin("big", "1")).await.unwrap();
    for n in 0..10 {
        lb.pick(&key(&format!("s{n}")), PickIntent::Publish)
            .await
            .unwrap();
    }
    let statuses = lb.origins().await.unwrap();
    let count = |server: &str| {
        statuses
            .iter()
            .find(|s| s.origin.server == server)
            .unwrap()
            .streams
    };
    assert_eq!((count("small"), count("big")), (2, 8));
}

#[tokio::test]
async fn sessions_expire_when_idle_and_renew_when_used() {
    let (lb, clock) = balancer(StrategyKind::Random);
    let a = origin("a", "1");
    lb.register(a.clone()).await.unwrap();
    let hls = HlsSession {
        key: key("cam"),
        origin: a.id.clone(),
    };
    lb.put_hls("tok", &hls).await.unwrap();
    let rtc = RtcSession {
        key: key("cam"),
        origin: a.id.clone(),
        server_ufrag: "srv".into(),
        client_ufrag: "cli".into(),
        server_pwd: "pwd".into(),
        media: None,
        publishing: None,
        client_pwd: None,
        resource: None,
        resource_secret: None,
    };
    lb.put_rtc("srv", &rtc).await.unwrap();
    clock.advance(Duration::from_secs(100));
    assert_eq!(
        lb.hls("tok").await.unwrap(),
        Some(hls.clone()),
        "used within the TTL: renewed"
    );
    clock.advance(Duration::from_secs(100));
    assert_eq!(lb.hls("tok").await.unwrap(), Some(hls));
    assert_eq!(
        lb.rtc("srv").await.unwrap(),
        None,
        "unused for 200 s: expired"
    );
    lb.put_rtc("srv", &rtc).await.unwrap();
    lb.remove_rtc("srv").await.unwrap();
    assert_eq!(lb.rtc("srv").await.unwrap(), None);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_picks_agree() {
    let (lb, _) = balancer(StrategyKind::Random);
    for s in ["a", "b", "c", "d"] {
        lb.register(origin(s, "1")).await.unwrap();
    }
    let lb = Arc::new(lb);
    let mut tasks = Vec::new();
    for t in 0..16 {
        let lb = lb.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for n in 0..200 {
                let k = key(&format!("s{}", (n + t) % 200));
                seen.push((k.clone(), lb.pick(&k, PickIntent::Play).await.unwrap().id));
            }
            seen
        }));
    }
    let mut decided = std::collections::HashMap::new();
    let mut disagreements = 0;
    for task in tasks {
        for (k, id) in task.await.unwrap() {
            if decided.entry(k).or_insert_with(|| id.clone()) != &id {
                disagreements += 1;
            }
        }
    }
    assert_eq!(disagreements, 0);
    assert_eq!(decided.len(), 200);
}

#[tokio::test]
async fn stream_counts_follow_expiry_and_re_placement() {
    let (lb, clock) = balancer(StrategyKind::LeastStreams);
    let (a, b) = (origin("a", "1"), origin("b", "1"));
    lb.register(a.clone()).await.unwrap();
    for n in 0..6 {
        lb.pick(&key(&format!("s{n}")), PickIntent::Publish)
            .await
            .unwrap();
    }
    lb.register(b.clone()).await.unwrap();
    lb.set_draining(&a.id, true).await.unwrap();
    for n in 0..2 {
        lb.pick(&key(&format!("s{n}")), PickIntent::Publish)
            .await
            .unwrap(); // republish moves to b
    }
    let counts = |statuses: Vec<lb_core::OriginStatus>| {
        statuses
            .iter()
            .map(|s| (s.origin.server.clone(), s.streams))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        counts(lb.origins().await.unwrap()),
        [("a".into(), 4), ("b".into(), 2)]
    );
    // Nobody uses the streams for longer than the placement TTL (origins keep heartbeating).
    for _ in 0..13 {
        clock.advance(Duration::from_secs(290));
        lb.register(a.clone()).await.unwrap();
        lb.register(b.clone()).await.unwrap();
    }
    lb.sweep();
    assert_eq!(
        counts(lb.origins().await.unwrap()),
        [("a".into(), 0), ("b".into(), 0)]
    );
    assert!(lb.placements().await.unwrap().is_empty());
}

fn static_origin(name: &str) -> Origin {
    let mut o = origin(name, "1");
    o.source = lb_core::OriginSource::Static;
    o
}

#[tokio::test]
async fn a_marked_down_origin_loses_its_streams_until_the_mark_ends() {
    let (lb, clock) = balancer(StrategyKind::Random);
    let a = static_origin("a");
    lb.register(a.clone()).await.unwrap();
    let (publish, play) = (key("pub"), key("play"));
    lb.pick(&publish, PickIntent::Publish).await.unwrap();
    lb.pick(&play, PickIntent::Play).await.unwrap();
    lb.register(static_origin("b")).await.unwrap();

    lb.mark_down(&a.id, "probe: connection refused", Duration::from_secs(10))
        .await
        .unwrap();
    let status = lb.origin(&a.id).await.unwrap().unwrap();
    assert!(!status.alive, "{status:?}");
    assert_eq!(status.down.as_deref(), Some("probe: connection refused"));
    assert_eq!(
        lb.pick(&publish, PickIntent::Publish).await.unwrap().server,
        "b"
    );
    assert_eq!(lb.pick(&play, PickIntent::Play).await.unwrap().server, "b");
    for n in 0..10 {
        let k = key(&format!("new{n}"));
        assert_eq!(lb.pick(&k, PickIntent::Publish).await.unwrap().server, "b");
    }

    // A later mark wins, whether it ends sooner or later.
    lb.mark_down(&a.id, "connect failed", Duration::from_secs(30))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(29));
    let status = lb.origin(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (status.alive, status.down.as_deref()),
        (false, Some("connect failed"))
    );
    clock.advance(Duration::from_secs(2));
    let status = lb.origin(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (status.alive, status.down),
        (true, None),
        "the mark expired"
    );

    lb.mark_down(&a.id, "x", Duration::from_secs(60))
        .await
        .unwrap();
    lb.mark_up(&a.id).await.unwrap();
    let status = lb.origin(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (status.alive, status.down),
        (true, None),
        "mark_up clears it"
    );

    let unknown = OriginId::new("nope");
    assert!(matches!(
        lb.mark_down(&unknown, "x", Duration::from_secs(1)).await,
        Err(Error::UnknownOrigin(_))
    ));
    assert!(matches!(
        lb.mark_up(&unknown).await,
        Err(Error::UnknownOrigin(_))
    ));
    // An absurd duration is "for a long time", not a panic; a long reason is cut.
    lb.mark_down(&a.id, &"r".repeat(10_000), Duration::MAX)
        .await
        .unwrap();
    let status = lb.origin(&a.id).await.unwrap().unwrap();
    assert_eq!(status.down.map(|r| r.len()), Some(lb_core::MAX_REASON_LEN));
    lb.mark_down(&a.id, "", Duration::from_secs(5))
        .await
        .unwrap();
    let status = lb.origin(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (status.alive, status.down.as_deref()),
        (false, Some("down"))
    );
}

#[tokio::test]
async fn a_registered_origin_marked_down_stays_down_through_heartbeats() {
    let (lb, _) = balancer(StrategyKind::Random);
    let a = origin("a", "1");
    lb.register(a.clone()).await.unwrap();
    lb.mark_down(&a.id, "probe failed", Duration::from_secs(10))
        .await
        .unwrap();
    lb.register(a.clone()).await.unwrap();
    assert!(!lb.origin(&a.id).await.unwrap().unwrap().alive);
    match lb.pick(&key("x"), PickIntent::Publish).await {
        Err(Error::NoOrigin {
            registered: 1,
            alive: 0,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn connection_reports_sum_per_proxy_replace_and_expire() {
    let (lb, clock) = balancer(StrategyKind::Random);
    let (a, b) = (origin("a", "1"), origin("b", "1"));
    lb.register(a.clone()).await.unwrap();
    lb.register(b.clone()).await.unwrap();
    let ttl = Duration::from_secs(30);
    lb.report_connections("p1", &[(a.id.clone(), 5), (b.id.clone(), 1)], ttl)
        .await
        .unwrap();
    lb.report_connections("p2", &[(a.id.clone(), 2), (a.id.clone(), 1)], ttl)
        .await
        .unwrap();
    let conns = |statuses: Vec<lb_core::OriginStatus>| {
        statuses
            .iter()
            .map(|s| (s.origin.server.clone(), s.connections))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        conns(lb.origins().await.unwrap()),
        [("a".into(), 8), ("b".into(), 1)]
    );
    clock.advance(Duration::from_secs(20));
    lb.report_connections("p1", &[(b.id.clone(), 4)], ttl)
        .await
        .unwrap();
    assert_eq!(
        conns(lb.origins().await.unwrap()),
        [("a".into(), 3), ("b".into(), 4)],
        "p1's new report replaces its old one"
    );
    clock.advance(Duration::from_secs(15));
    assert_eq!(
        conns(lb.origins().await.unwrap()),
        [("a".into(), 0), ("b".into(), 4)],
        "p2's report expired"
    );
    assert!(matches!(
        lb.report_connections(&"p".repeat(lb_core::MAX_PROXY_ID_LEN + 1), &[], ttl)
            .await,
        Err(Error::InvalidInput(_))
    ));
    let many: Vec<(OriginId, u64)> = (0..=lb_core::MAX_REPORT_ENTRIES)
        .map(|n| (OriginId::new(format!("o{n}")), 1))
        .collect();
    assert!(matches!(
        lb.report_connections("p3", &many, ttl).await,
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn max_connections_refuses_new_streams() {
    let (lb, _) = balancer(StrategyKind::LeastStreams);
    let mut small = origin("small", "1");
    small.max_connections = Some(10);
    lb.register(small.clone()).await.unwrap();
    lb.register(origin("big", "1")).await.unwrap();
    let ttl = Duration::from_secs(30);
    lb.report_connections("p1", &[(small.id.clone(), 6)], ttl)
        .await
        .unwrap();
    lb.report_connections("p2", &[(small.id.clone(), 4)], ttl)
        .await
        .unwrap();
    for n in 0..10 {
        let k = key(&format!("s{n}"));
        assert_eq!(
            lb.pick(&k, PickIntent::Publish).await.unwrap().server,
            "big"
        );
    }
    lb.report_connections("p2", &[], ttl).await.unwrap();
    let placed_small = lb.pick(&key("late"), PickIntent::Publish).await.unwrap();
    assert_eq!(
        placed_small.server, "small",
        "9 connections < 10: it takes streams again"
    );
}

#[tokio::test]
async fn least_load_follows_the_reported_cpu() {
    let (lb, _) = balancer(StrategyKind::LeastLoad);
    let with_cpu = |server: &str, cpu: u32| {
        let mut o = origin(server, "1");
        o.load = Some(lb_core::OriginLoad {
            cpu_percent: Some(cpu),
            ..Default::default()
        });
        o
    };
    lb.register(with_cpu("hot", 90)).await.unwrap();
    lb.register(with_cpu("cool", 15)).await.unwrap();
    for n in 0..10 {
        let k = key(&format!("s{n}"));
        assert_eq!(
            lb.pick(&k, PickIntent::Publish).await.unwrap().server,
            "cool"
        );
    }
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

/// Firm streams per server, in server order.
async fn streams(lb: &MemoryBalancer) -> Vec<(String, usize)> {
    lb.origins()
        .await
        .unwrap()
        .iter()
        .map(|s| (s.origin.server.clone(), s.streams))
        .collect()
}

fn live(k: &StreamKey, origin: &OriginId, publishing: bool) -> LiveStream {
    LiveStream {
        key: k.clone(),
        origin: origin.clone(),
        publishing,
    }
}

/// Two origins `a` and `b`; the one a play of `k` lands on (tentatively), then drained, so
/// that a new placement of `k` can only go to the other: a pick returning the drained
/// origin proves the placement was still there.
async fn placed_then_drained(lb: &MemoryBalancer, k: &StreamKey) -> (OriginId, OriginId) {
    let (a, b) = (origin("a", "1"), origin("b", "1"));
    lb.register(a.clone()).await.unwrap();
    lb.register(b.clone()).await.unwrap();
    let first = lb.pick(k, PickIntent::Play).await.unwrap().id;
    let other = if first == a.id { b.id } else { a.id };
    lb.set_draining(&first, true).await.unwrap();
    (first, other)
}

#[tokio::test]
async fn plays_of_unknown_streams_take_no_capacity() {
    let (lb, _) = balancer(StrategyKind::LeastStreams);
    for server in ["a", "b"] {
        let mut o = origin(server, "1");
        o.max_streams = Some(5);
        lb.register(o).await.unwrap();
    }
    for n in 0..20 {
        let k = key(&format!("random-{n}"));
        lb.pick(&k, PickIntent::Play)
            .await
            .unwrap_or_else(|e| panic!("play {n} refused: {e}"));
    }
    assert_eq!(
        streams(&lb).await,
        [("a".into(), 0), ("b".into(), 0)],
        "plays reserve nothing"
    );
    assert!(lb.placements().await.unwrap().is_empty());
    lb.pick(&key("real"), PickIntent::Publish)
        .await
        .expect("a real stream still finds room");
    let total: usize = streams(&lb).await.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 1);
}

#[tokio::test]
async fn a_tentative_placement_expires_after_its_ttl() {
    let (lb, clock) = balancer(StrategyKind::Random);
    let k = key("nobody");
    let (first, other) = placed_then_drained(&lb, &k).await;
    clock.advance(TENTATIVE - Duration::from_secs(1));
    assert_eq!(
        lb.pick(&k, PickIntent::Play).await.unwrap().id,
        first,
        "within the tentative TTL: kept (and renewed)"
    );
    clock.advance(TENTATIVE - Duration::from_secs(1));
    assert_eq!(lb.pick(&k, PickIntent::Play).await.unwrap().id, first);
    clock.advance(TENTATIVE);
    assert_eq!(
        lb.pick(&k, PickIntent::Play).await.unwrap().id,
        other,
        "unused for the tentative TTL: forgotten, placed anew"
    );
    clock.advance(TENTATIVE);
    lb.sweep();
    assert_eq!(
        lb.sizes().1,
        0,
        "the sweep drops expired tentative placements"
    );
}

#[tokio::test]
async fn release_forgets_only_a_tentative_placement_on_that_origin() {
    let (lb, _) = balancer(StrategyKind::Random);
    let k = key("nobody");
    let (first, other) = placed_then_drained(&lb, &k).await;
    lb.release(&k, &other).await.unwrap();
    assert_eq!(
        lb.pick(&k, PickIntent::Play).await.unwrap().id,
        first,
        "a release naming another origin changes nothing"
    );
    lb.release(&k, &first).await.unwrap();
    assert_eq!(lb.sizes().1, 0, "released at once");
    assert_eq!(lb.pick(&k, PickIntent::Play).await.unwrap().id, other);

    let firm = key("published");
    let on = lb.pick(&firm, PickIntent::Publish).await.unwrap().id;
    assert_eq!(on, other, "the other origin drains");
    lb.release(&firm, &on).await.unwrap();
    assert_eq!(
        lb.placements().await.unwrap(),
        [lb_core::Placement {
            key: firm.clone(),
            origin: on.clone()
        }],
        "a firm placement is never released"
    );
    assert_eq!(lb.origin(&on).await.unwrap().unwrap().streams, 1);
}

#[tokio::test]
async fn a_publish_makes_a_tentative_placement_firm() {
    let (lb, clock) = balancer(StrategyKind::Random);
    let k = key("early-player");
    let (a, b) = (origin("a", "1"), origin("b", "1"));
    lb.register(a.clone()).await.unwrap();
    lb.register(b.clone()).await.unwrap();
    let on = lb.pick(&k, PickIntent::Play).await.unwrap().id;
    assert_eq!(streams(&lb).await, [("a".into(), 0), ("b".into(), 0)]);
    assert_eq!(lb.pick(&k, PickIntent::Publish).await.unwrap().id, on);
    assert_eq!(
        lb.origin(&on).await.unwrap().unwrap().streams,
        1,
        "it counts"
    );
    assert_eq!(lb.placements().await.unwrap().len(), 1);
    lb.release(&k, &on).await.unwrap();
    clock.advance(TENTATIVE * 2);
    assert_eq!(
        lb.placements().await.unwrap().len(),
        1,
        "firm: neither released nor expired with the tentative TTL"
    );
}

#[tokio::test]
async fn touch_recreates_a_missing_placement_but_never_overrides_one() {
    // A balancer that lost its state knows the origins again, but not the stream.
    let (lb, _) = balancer(StrategyKind::Random);
    let (a, b) = (origin("a", "1"), origin("b", "1"));
    lb.register(a.clone()).await.unwrap();
    lb.register(b.clone()).await.unwrap();
    lb.set_draining(&a.id, true).await.unwrap();
    let k = key("live");
    lb.touch(&[live(&k, &a.id, true)]).await.unwrap();
    assert_eq!(
        lb.pick(&k, PickIntent::Play).await.unwrap().id,
        a.id,
        "players follow the live publisher, not a new choice"
    );
    assert_eq!(streams(&lb).await, [("a".into(), 1), ("b".into(), 0)]);

    let watched = key("watched");
    lb.touch(&[live(&watched, &a.id, false)]).await.unwrap();
    assert_eq!(lb.pick(&watched, PickIntent::Play).await.unwrap().id, a.id);
    assert_eq!(
        streams(&lb).await,
        [("a".into(), 1), ("b".into(), 0)],
        "recreated from a player alone: tentative"
    );

    lb.set_draining(&a.id, false).await.unwrap();
    let elsewhere = key("elsewhere");
    let placed = lb.pick(&elsewhere, PickIntent::Publish).await.unwrap().id;
    let stale = if placed == a.id { &b.id } else { &a.id };
    let before = streams(&lb).await;
    lb.touch(&[live(&elsewhere, stale, true)]).await.unwrap();
    assert_eq!(
        lb.pick(&elsewhere, PickIntent::Play).await.unwrap().id,
        placed,
        "a placement on another origin is left alone"
    );
    assert_eq!(streams(&lb).await, before, "and counted where it was");
}

#[tokio::test]
async fn a_live_player_keeps_a_tentative_placement_and_a_live_publisher_firms_it() {
    let (lb, clock) = balancer(StrategyKind::Random);
    let k = key("watched");
    let (first, _) = placed_then_drained(&lb, &k).await;
    for _ in 0..4 {
        clock.advance(TENTATIVE / 2);
        lb.touch(&[live(&k, &first, false)]).await.unwrap();
    }
    assert!(lb.placements().await.unwrap().is_empty(), "still tentative");
    assert_eq!(
        lb.pick(&k, PickIntent::Play).await.unwrap().id,
        first,
        "touched by a live player: kept past the tentative TTL"
    );
    lb.touch(&[live(&k, &first, true)]).await.unwrap();
    assert_eq!(lb.origin(&first).await.unwrap().unwrap().streams, 1);
    clock.advance(TENTATIVE * 4);
    assert_eq!(lb.placements().await.unwrap().len(), 1, "firm now");
}
