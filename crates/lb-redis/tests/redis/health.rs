//! Health marks and connection reports as Redis keys, shared by the proxies of a fleet;
//! `max_connections` against a stale snapshot; the metrics.

use lb_core::testing::static_origin;

use super::*;

async fn connections(lb: &RedisBalancer) -> Vec<(String, u64)> {
    lb.origins()
        .await
        .unwrap()
        .iter()
        .map(|s| (s.origin.server.clone(), s.connections))
        .collect()
}

#[tokio::test]
async fn marks_are_down_keys_that_expire_with_px() {
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
    lb.mark_down(&a.id, "probe: connection refused", Duration::from_secs(2))
        .await
        .unwrap();
    let raw = raw_client(&redis).await;
    let down_key = format!("{prefix}down:{}", a.id);
    let reason: String = raw.get(&down_key).await.unwrap();
    assert_eq!(reason, "probe: connection refused");
    let ttl: i64 = raw.pttl(&down_key).await.unwrap();
    assert!((1..=2000).contains(&ttl), "the mark expires with PX: {ttl}");
    lb.mark_down(&a.id, "forever", Duration::MAX).await.unwrap();
    let ttl: i64 = raw.pttl(&down_key).await.unwrap();
    assert!(
        ttl > 10 * 365 * 24 * 3_600_000,
        "an absurd duration is a PX of years, not an error: {ttl}"
    );
    lb.mark_up(&a.id).await.unwrap();
    let left: Option<String> = raw.get(&down_key).await.unwrap();
    assert_eq!(left, None, "mark_up deletes the key");
    let unknown = OriginId::new("nope");
    assert!(matches!(
        lb.mark_down(&unknown, "x", Duration::from_secs(1)).await,
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
