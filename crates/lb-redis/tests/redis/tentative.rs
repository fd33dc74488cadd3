//! Firm and tentative placements through Redis: plays of streams that do not exist reserve
//! nothing and leave nothing lasting; `release` and `touch` (which puts back what a Redis
//! restart lost).

use fred::prelude::SortedSetsInterface;

use super::*;

fn with_tentative(tentative_ttl: f64) -> BalancerConfig {
    BalancerConfig {
        tentative_ttl: Duration::from_secs_f64(tentative_ttl),
        ..BalancerConfig::default()
    }
}

fn live(k: &StreamKey, origin: &OriginId, publishing: bool) -> LiveStream {
    LiveStream {
        key: k.clone(),
        origin: origin.clone(),
        publishing,
    }
}

fn url_key(prefix: &str, k: &StreamKey) -> String {
    format!("{prefix}url:{k}")
}

/// Firm streams per server, in server order.
async fn streams(lb: &RedisBalancer) -> Vec<(String, usize)> {
    lb.origins()
        .await
        .unwrap()
        .iter()
        .map(|s| (s.origin.server.clone(), s.streams))
        .collect()
}

/// Registers `a` and `b`; a play of `k` lands on one (tentatively), which is then drained,
/// so that a new placement of `k` can only go to the other: a pick returning the drained
/// origin proves the placement was still there.
async fn placed_then_drained(lb: &RedisBalancer, k: &StreamKey) -> (OriginId, OriginId) {
    let (a, b) = (origin("a", "1"), origin("b", "1"));
    lb.register(a.clone()).await.unwrap();
    lb.register(b.clone()).await.unwrap();
    let first = lb.pick(k, PickIntent::Play).await.unwrap().id;
    let other = if first == a.id { b.id } else { a.id };
    lb.set_draining(&first, true).await.unwrap();
    (first, other)
}

#[tokio::test]
async fn plays_of_unknown_streams_take_no_capacity_and_leave_no_lasting_state() {
    let redis = shared_redis();
    let prefix = unique_prefix("tentative-capacity");
    let lb = balancer(
        &redis,
        &prefix,
        BalancerConfig::default(),
        StrategyKind::LeastStreams,
    )
    .await;
    let mut ids = Vec::new();
    for server in ["a", "b"] {
        let mut o = origin(server, "1");
        o.max_streams = Some(5);
        ids.push(o.id.clone());
        lb.register(o).await.unwrap();
    }
    let raw = raw_client(&redis).await;
    for n in 0..20 {
        let k = key(&format!("random-{n}"));
        lb.pick(&k, PickIntent::Play)
            .await
            .unwrap_or_else(|e| panic!("play {n} refused: {e}"));
        let ttl: i64 = raw.pttl(url_key(&prefix, &k)).await.unwrap();
        assert!(
            (1..=30_000).contains(&ttl),
            "a play's placement lives the tentative TTL, got {ttl} ms"
        );
    }
    assert_eq!(
        streams(&lb).await,
        [("a".into(), 0), ("b".into(), 0)],
        "plays reserve nothing"
    );
    for id in &ids {
        let sets: i64 = raw.exists(format!("{prefix}streams:{id}")).await.unwrap();
        assert_eq!(sets, 0, "no per-origin set grows for plays");
    }
    assert!(lb.placements().await.unwrap().is_empty());
    lb.pick(&key("real"), PickIntent::Publish)
        .await
        .expect("a real stream still finds room");
    let total: usize = streams(&lb).await.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 1);
}

#[tokio::test]
async fn a_tentative_placement_expires_after_its_ttl() {
    let redis = shared_redis();
    let prefix = unique_prefix("tentative-ttl");
    let lb = balancer(&redis, &prefix, with_tentative(0.5), StrategyKind::Random).await;
    let k = key("nobody");
    let (first, other) = placed_then_drained(&lb, &k).await;
    let raw = raw_client(&redis).await;
    let placed: Option<String> = raw.get(url_key(&prefix, &k)).await.unwrap();
    assert_eq!(placed.as_deref(), Some(first.as_str()));
    sleep(0.8).await;
    let placed: Option<String> = raw.get(url_key(&prefix, &k)).await.unwrap();
    assert_eq!(placed, None, "gone after the tentative TTL");
    assert_eq!(
        lb.pick(&k, PickIntent::Play).await.unwrap().id,
        other,
        "placed anew"
    );
}

#[tokio::test]
async fn release_forgets_only_a_tentative_placement_on_that_origin() {
    let redis = shared_redis();
    let prefix = unique_prefix("release");
    let lb = balancer(
        &redis,
        &prefix,
        BalancerConfig::default(),
        StrategyKind::Random,
    )
    .await;
    let raw = raw_client(&redis).await;
    let k = key("nobody");
    let (first, other) = placed_then_drained(&lb, &k).await;
    lb.release(&k, &other).await.unwrap();
    let placed: Option<String> = raw.get(url_key(&prefix, &k)).await.unwrap();
    assert_eq!(
        placed.as_deref(),
        Some(first.as_str()),
        "a release naming another origin changes nothing"
    );
    lb.release(&k, &first).await.unwrap();
    let placed: Option<String> = raw.get(url_key(&prefix, &k)).await.unwrap();
    assert_eq!(placed, None, "released at once");
    assert_eq!(lb.pick(&k, PickIntent::Play).await.unwrap().id, other);

    let firm = key("published");
    let on = lb.pick(&firm, PickIntent::Publish).await.unwrap().id;
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
    let redis = shared_redis();
    let prefix = unique_prefix("firm");
    let lb = balancer(
        &redis,
        &prefix,
        BalancerConfig::default(),
        StrategyKind::Random,
    )
    .await;
    lb.register(origin("a", "1")).await.unwrap();
    lb.register(origin("b", "1")).await.unwrap();
    let k = key("early-player");
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
    let raw = raw_client(&redis).await;
    let ttl: i64 = raw.pttl(url_key(&prefix, &k)).await.unwrap();
    assert!(
        ttl > 30_000,
        "firm: kept for the placement TTL and not released, got {ttl} ms"
    );
}

#[tokio::test]
async fn touch_puts_back_what_a_redis_restart_lost_but_never_overrides() {
    // A server of our own: FLUSHALL is what a restart without persistence leaves.
    let redis = RedisServer::start();
    let prefix = unique_prefix("recreate");
    let lb = balancer(
        &redis,
        &prefix,
        BalancerConfig::default(),
        StrategyKind::Random,
    )
    .await;
    let (a, b) = (origin("a", "1"), origin("b", "1"));
    lb.register(a.clone()).await.unwrap();
    lb.register(b.clone()).await.unwrap();
    let (k, watched) = (key("live"), key("watched"));
    let on = lb.pick(&k, PickIntent::Publish).await.unwrap().id;
    let raw = raw_client(&redis).await;
    let _: () = raw.flushall(false).await.unwrap();

    // The proxy's sessions still run: a publisher of `k` and a player of `watched` on `on`.
    // The touch comes before the origins' next heartbeats.
    lb.touch(&[live(&k, &on, true), live(&watched, &on, false)])
        .await
        .unwrap();
    lb.register(a.clone()).await.unwrap();
    lb.register(b.clone()).await.unwrap();
    lb.set_draining(&on, true).await.unwrap();
    assert_eq!(
        lb.pick(&k, PickIntent::Play).await.unwrap().id,
        on,
        "players follow the live publisher, not a new choice"
    );
    assert_eq!(lb.pick(&watched, PickIntent::Play).await.unwrap().id, on);
    assert_eq!(
        lb.origin(&on).await.unwrap().unwrap().streams,
        1,
        "the publisher's placement is firm, the player's tentative"
    );
    let ttl: i64 = raw.pttl(url_key(&prefix, &watched)).await.unwrap();
    assert!((1..=30_000).contains(&ttl), "tentative: {ttl} ms");

    lb.set_draining(&on, false).await.unwrap();
    let elsewhere = key("elsewhere");
    let placed = lb.pick(&elsewhere, PickIntent::Publish).await.unwrap().id;
    let stale = if placed == a.id { &b.id } else { &a.id };
    lb.touch(&[live(&elsewhere, stale, true)]).await.unwrap();
    let now: Option<String> = raw.get(url_key(&prefix, &elsewhere)).await.unwrap();
    assert_eq!(
        now.as_deref(),
        Some(placed.as_str()),
        "a placement on another origin is left alone"
    );
    let member: Option<f64> = raw
        .zscore(format!("{prefix}streams:{stale}"), elsewhere.to_string())
        .await
        .unwrap();
    assert_eq!(member, None, "nor counted on the other origin");
}

#[tokio::test]
async fn a_live_player_keeps_a_tentative_placement_and_a_live_publisher_firms_it() {
    let redis = shared_redis();
    let prefix = unique_prefix("player-touch");
    let lb = balancer(&redis, &prefix, with_tentative(1.0), StrategyKind::Random).await;
    let k = key("watched");
    let (first, _) = placed_then_drained(&lb, &k).await;
    for _ in 0..4 {
        sleep(0.4).await;
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
    sleep(1.2).await;
    assert_eq!(lb.placements().await.unwrap().len(), 1, "firm now");
}
