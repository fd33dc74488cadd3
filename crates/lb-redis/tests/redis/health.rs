//! Health marks, connection reports, `max_connections` and least-load, through Redis; and
//! the same scenario through lb-memory, which must place alike.

use super::*;

fn static_origin(name: &str) -> Origin {
    let mut o = origin(name, "1");
    o.source = OriginSource::Static;
    o
}

fn with_cpu(name: &str, cpu: Option<u32>) -> Origin {
    let mut o = static_origin(name);
    o.load = cpu.map(|cpu| lb_core::OriginLoad {
        cpu_percent: Some(cpu),
        ..Default::default()
    });
    o
}

async fn connections(lb: &RedisBalancer) -> Vec<(String, u64)> {
    lb.origins()
        .await
        .unwrap()
        .iter()
        .map(|s| (s.origin.server.clone(), s.connections))
        .collect()
}

#[tokio::test]
async fn a_marked_down_origin_loses_its_streams_until_the_mark_ends() {
    let redis = shared_redis();
    let prefix = unique_prefix("mark");
    let lb = balancer(
        &redis,
        &prefix,
        BalancerConfig::default(),
        StrategyKind::Random,
    )
    .await;
    let a = static_origin("a");
    lb.register(a.clone()).await.unwrap();
    let (publish, play) = (key("pub"), key("play"));
    lb.pick(&publish, PickIntent::Publish).await.unwrap();
    lb.pick(&play, PickIntent::Play).await.unwrap();
    lb.register(static_origin("b")).await.unwrap();

    lb.mark_down(&a.id, "probe: connection refused", Duration::from_secs(2))
        .await
        .unwrap();
    let status = lb.origin(&a.id).await.unwrap().unwrap();
    assert!(!status.alive, "{status:?}");
    assert_eq!(status.down.as_deref(), Some("probe: connection refused"));
    let raw = raw_client(&redis).await;
    let down_key = format!("{prefix}down:{}", a.id);
    let reason: String = raw.get(&down_key).await.unwrap();
    assert_eq!(reason, "probe: connection refused");
    let ttl: i64 = raw.pttl(&down_key).await.unwrap();
    assert!((1..=2000).contains(&ttl), "the mark expires with PX: {ttl}");

    assert_eq!(
        lb.pick(&publish, PickIntent::Publish).await.unwrap().server,
        "b"
    );
    assert_eq!(lb.pick(&play, PickIntent::Play).await.unwrap().server, "b");
    for n in 0..10 {
        let k = key(&format!("new{n}"));
        assert_eq!(lb.pick(&k, PickIntent::Publish).await.unwrap().server, "b");
    }
    let streams: Vec<(String, usize)> = lb
        .origins()
        .await
        .unwrap()
        .iter()
        .map(|s| (s.origin.server.clone(), s.streams))
        .collect();
    // The play's new placement on b is tentative: 11 firm (publish) placements.
    assert_eq!(streams, [("a".into(), 0), ("b".into(), 11)]);

    sleep(2.2).await;
    let status = lb.origin(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (status.alive, status.down),
        (true, None),
        "the mark expired"
    );

    // A later mark replaces an earlier one.
    lb.mark_down(&a.id, "first", Duration::from_millis(500))
        .await
        .unwrap();
    lb.mark_down(&a.id, "second", Duration::from_secs(60))
        .await
        .unwrap();
    sleep(0.7).await;
    let status = lb.origin(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (status.alive, status.down.as_deref()),
        (false, Some("second"))
    );
    lb.mark_up(&a.id).await.unwrap();
    let status = lb.origin(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (status.alive, status.down),
        (true, None),
        "mark_up clears it"
    );
    let left: Option<String> = raw.get(&down_key).await.unwrap();
    assert_eq!(left, None);
    lb.mark_down(&a.id, "", Duration::from_secs(5))
        .await
        .unwrap();
    let status = lb.origin(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (status.alive, status.down.as_deref()),
        (false, Some("down")),
        "an empty reason still holds it down"
    );
    lb.mark_up(&a.id).await.unwrap();

    let unknown = OriginId::new("nope");
    assert!(matches!(
        lb.mark_down(&unknown, "x", Duration::from_secs(1)).await,
        Err(Error::UnknownOrigin(_))
    ));
    assert!(matches!(
        lb.mark_up(&unknown).await,
        Err(Error::UnknownOrigin(_))
    ));
    let none: Option<String> = raw.get(format!("{prefix}down:nope")).await.unwrap();
    assert_eq!(none, None, "no mark is stored for an unknown origin");
}

#[tokio::test]
async fn two_proxies_share_marks_and_connection_reports() {
    let redis = shared_redis();
    let prefix = unique_prefix("health-cross");
    let one = balancer(
        &redis,
        &prefix,
        BalancerConfig::default(),
        StrategyKind::Random,
    )
    .await;
    let two = balancer(
        &redis,
        &prefix,
        BalancerConfig::default(),
        StrategyKind::Random,
    )
    .await;
    let (a, b) = (origin("a", "1"), origin("b", "1"));
    one.register(a.clone()).await.unwrap();
    one.register(b.clone()).await.unwrap();

    one.mark_down(&a.id, "connect failed", Duration::from_secs(60))
        .await
        .unwrap();
    let seen = two.origin(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (seen.alive, seen.down.as_deref()),
        (false, Some("connect failed"))
    );
    for n in 0..10 {
        let k = key(&format!("s{n}"));
        assert_eq!(two.pick(&k, PickIntent::Publish).await.unwrap().id, b.id);
    }
    two.mark_up(&a.id).await.unwrap();
    assert!(one.origin(&a.id).await.unwrap().unwrap().alive);

    let long = Duration::from_secs(60);
    one.report_connections("proxy-1", &[(a.id.clone(), 3)], long)
        .await
        .unwrap();
    two.report_connections("proxy-2", &[(a.id.clone(), 4), (b.id.clone(), 1)], long)
        .await
        .unwrap();
    let expected: Vec<(String, u64)> = vec![("a".into(), 7), ("b".into(), 1)];
    assert_eq!(connections(&one).await, expected);
    assert_eq!(connections(&two).await, expected);
    one.report_connections("proxy-1", &[(a.id.clone(), 1)], long)
        .await
        .unwrap();
    assert_eq!(
        connections(&two).await,
        [("a".into(), 5), ("b".into(), 1)],
        "a report replaces the same proxy's previous one"
    );

    two.report_connections("proxy-2", &[(a.id.clone(), 4)], Duration::from_millis(500))
        .await
        .unwrap();
    sleep(0.7).await;
    assert_eq!(
        connections(&one).await,
        [("a".into(), 1), ("b".into(), 0)],
        "proxy-2's report expired"
    );
    let raw = raw_client(&redis).await;
    let proxies: Vec<String> = raw.smembers(format!("{prefix}proxies")).await.unwrap();
    assert_eq!(proxies, ["proxy-1"], "the expired proxy left the index");

    assert!(matches!(
        one.report_connections(&"p".repeat(lb_core::MAX_PROXY_ID_LEN + 1), &[], long)
            .await,
        Err(Error::InvalidInput(_))
    ));
    let many: Vec<(OriginId, u64)> = (0..=lb_core::MAX_REPORT_ENTRIES)
        .map(|n| (OriginId::new(format!("o{n}")), 1))
        .collect();
    assert!(matches!(
        one.report_connections("proxy-3", &many, long).await,
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn max_connections_refuses_placement_even_from_a_stale_snapshot() {
    let redis = shared_redis();
    let prefix = unique_prefix("maxconn");
    let mut cfg = redis_config(&redis, &prefix);
    cfg.status_cache = Duration::from_secs(60);
    let lb = RedisBalancer::connect(
        cfg,
        BalancerConfig::default(),
        StrategyKind::LeastStreams.build(),
    )
    .await
    .unwrap();
    let other = balancer(
        &redis,
        &prefix,
        BalancerConfig::default(),
        StrategyKind::Random,
    )
    .await;
    let mut small = static_origin("small");
    small.max_connections = Some(10);
    lb.register(small.clone()).await.unwrap();
    lb.register(static_origin("big")).await.unwrap();
    // Loads `lb`'s snapshot while `small` has no connections.
    lb.pick(&key("first"), PickIntent::Publish).await.unwrap();
    other
        .report_connections("p1", &[(small.id.clone(), 6)], Duration::from_secs(60))
        .await
        .unwrap();
    other
        .report_connections("p2", &[(small.id.clone(), 4)], Duration::from_secs(60))
        .await
        .unwrap();
    for n in 0..10 {
        let k = key(&format!("s{n}"));
        assert_eq!(
            lb.pick(&k, PickIntent::Publish).await.unwrap().server,
            "big"
        );
    }
    let status = lb.origin(&small.id).await.unwrap().unwrap();
    assert_eq!(status.connections, 10);
    assert!(status.alive && !status.accepts_new_streams());
    other
        .report_connections("p2", &[], Duration::from_secs(60))
        .await
        .unwrap();
    // Room that frees up is seen with the next snapshot (here: a status read refreshes it).
    assert_eq!(lb.origin(&small.id).await.unwrap().unwrap().connections, 6);
    assert_eq!(
        lb.pick(&key("late"), PickIntent::Publish)
            .await
            .unwrap()
            .server,
        "small",
        "6 connections < 10: it takes streams again"
    );
}

/// One scenario, step by step, through any balancer: the servers each pick lands on.
async fn scenario(lb: &dyn Balancer, wait: impl Fn(f64) -> BoxFuture) -> Vec<String> {
    let (a, b, c) = (
        with_cpu("a", Some(20)),
        with_cpu("b", Some(80)),
        with_cpu("c", Some(50)),
    );
    let mut c_limited = c.clone();
    c_limited.max_connections = Some(5);
    for o in [&a, &b, &c_limited] {
        lb.register(o.clone()).await.unwrap();
    }
    let mut out = Vec::new();
    let pick = |k: &str, intent| {
        let k = key(k);
        async move {
            lb.pick(&k, intent)
                .await
                .map_or_else(|e| format!("error: {e}"), |o| o.server)
        }
    };
    // Lowest CPU band first: a (20), c (50), b (80); distinct bands, so no random ties.
    out.push(pick("s1", PickIntent::Publish).await);
    out.push(pick("s2", PickIntent::Play).await);
    lb.mark_down(&a.id, "probe failed", Duration::from_secs(60))
        .await
        .unwrap();
    out.push(pick("s1", PickIntent::Publish).await);
    out.push(pick("s2", PickIntent::Play).await);
    out.push(pick("s3", PickIntent::Publish).await);
    lb.report_connections("p", &[(c.id.clone(), 5)], Duration::from_secs(60))
        .await
        .unwrap();
    out.push(pick("s4", PickIntent::Publish).await);
    out.push(pick("s1", PickIntent::Play).await);
    lb.mark_up(&a.id).await.unwrap();
    out.push(pick("s5", PickIntent::Publish).await);
    lb.set_draining(&a.id, true).await.unwrap();
    out.push(pick("s5", PickIntent::Play).await);
    out.push(pick("s5", PickIntent::Publish).await);
    lb.mark_down(&b.id, "x", Duration::from_millis(300))
        .await
        .unwrap();
    out.push(pick("s6", PickIntent::Publish).await);
    wait(0.5).await;
    out.push(pick("s6", PickIntent::Publish).await);
    out.push(pick("s7", PickIntent::Publish).await);
    out
}

type BoxFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

#[tokio::test]
async fn memory_and_redis_place_alike() {
    let redis = shared_redis();
    let lb = balancer(
        &redis,
        &unique_prefix("alike"),
        BalancerConfig::default(),
        StrategyKind::LeastLoad,
    )
    .await;
    let through_redis = scenario(&lb, |secs| Box::pin(sleep(secs))).await;

    let clock = Arc::new(lb_core::ManualClock::new());
    let memory = lb_memory::MemoryBalancer::with_clock(
        BalancerConfig::default(),
        StrategyKind::LeastLoad.build(),
        clock.clone(),
    );
    let through_memory = scenario(&memory, move |secs| {
        clock.advance(Duration::from_secs_f64(secs));
        Box::pin(async {})
    })
    .await;
    assert_eq!(through_redis, through_memory);
    let expected = [
        "a",
        "a", // lowest CPU
        "c",
        "c",
        "c", // a marked down: its streams move (publish and play alike)
        "b",
        "c", // c full: new streams to b; placed ones stay
        "a", // a up again
        "a",
        "b", // a drains: players stay, publishers leave
        "error: no origin available: 3 known, 2 alive, 0 accepting new streams",
        "b",
        "b", // b's mark expired
    ];
    assert_eq!(through_memory, expected);
}

type Counts = Arc<Mutex<std::collections::BTreeMap<String, u64>>>;

/// Counts counter increments by `name{label=value,..}`.
#[derive(Default)]
struct Counting(Counts);

struct CountingHandle(String, Counts);

impl metrics::CounterFn for CountingHandle {
    fn increment(&self, value: u64) {
        *self.1.lock().unwrap().entry(self.0.clone()).or_default() += value;
    }
    fn absolute(&self, value: u64) {
        self.1.lock().unwrap().insert(self.0.clone(), value);
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
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        metrics::Counter::from_arc(Arc::new(CountingHandle(name, self.0.clone())))
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
fn picks_and_redis_errors_are_counted() {
    let recorder = Counting::default();
    metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut redis = RedisServer::start();
            let lb = balancer(
                &redis,
                &unique_prefix("metrics"),
                BalancerConfig::default(),
                StrategyKind::Random,
            )
            .await;
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
            redis.stop();
            assert!(matches!(
                lb.pick(&k, PickIntent::Play).await,
                Err(Error::Unavailable(_))
            ));
            lb.close().await;
        });
    });
    let counts = recorder.0.lock().unwrap().clone();
    let count = |name: &str| counts.get(name).copied().unwrap_or(0);
    let picks = |outcome: &str| {
        count(&format!(
            "proxy_picks_total{{balancer=redis,outcome={outcome}}}"
        ))
    };
    assert_eq!(
        (
            picks("placed"),
            picks("kept"),
            picks("replaced"),
            picks("failed")
        ),
        (1, 2, 1, 2),
        "{counts:?}"
    );
    assert!(
        count("proxy_redis_errors_total{operation=pick}") >= 1,
        "{counts:?}"
    );
}
