//! Firm and tentative placements as Redis keys, and `touch` putting back what a Redis
//! restart lost.

use fred::prelude::SortedSetsInterface;

use super::*;

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

#[tokio::test]
async fn placements_are_url_keys_and_firm_ones_set_members() {
    let redis = shared_redis();
    let prefix = unique_prefix("placement-keys");
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
    let raw = raw_client(&redis).await;
    let placed = |k: StreamKey| {
        let raw = raw.clone();
        let url = url_key(&prefix, &k);
        async move {
            let placed: Option<String> = raw.get(&url).await.unwrap();
            let ttl: i64 = raw.pttl(&url).await.unwrap();
            (placed, ttl)
        }
    };
    let member = |id: &OriginId, k: &StreamKey| {
        let raw = raw.clone();
        let set = format!("{prefix}streams:{id}");
        let k = k.to_string();
        async move {
            let score: Option<f64> = raw.zscore(set, k).await.unwrap();
            score
        }
    };

    // Plays: the url key alone, with the tentative TTL (default 30 s).
    for n in 0..5 {
        let k = key(&format!("random-{n}"));
        let on = lb.pick(&k, PickIntent::Play).await.unwrap().id;
        let (stored, ttl) = placed(k.clone()).await;
        assert_eq!(stored.as_deref(), Some(on.as_str()));
        assert!(
            (1..=30_000).contains(&ttl),
            "a play's placement lives the tentative TTL, got {ttl} ms"
        );
    }
    for id in [&a.id, &b.id] {
        let sets: i64 = raw.exists(format!("{prefix}streams:{id}")).await.unwrap();
        assert_eq!(sets, 0, "no per-origin set grows for plays");
    }

    // Release deletes the key, only when it names the released origin.
    let k = key("random-0");
    let (on, _) = placed(k.clone()).await;
    let on = OriginId::new(on.unwrap());
    let other = if on == a.id { &b.id } else { &a.id };
    lb.release(&k, other).await.unwrap();
    assert_eq!(placed(k.clone()).await.0.as_deref(), Some(on.as_str()));
    lb.release(&k, &on).await.unwrap();
    assert_eq!(placed(k.clone()).await.0, None, "released at once");

    // A publish makes a firm placement, a member of the origin's set; it lives the tentative
    // TTL until a live publisher confirms it, then the placement TTL.
    let early = key("early-player");
    let on = lb.pick(&early, PickIntent::Play).await.unwrap().id;
    assert_eq!(member(&on, &early).await, None);
    assert_eq!(lb.pick(&early, PickIntent::Publish).await.unwrap().id, on);
    assert!(member(&on, &early).await.is_some(), "firm: in streams:{on}");
    let (_, ttl) = placed(early.clone()).await;
    assert!(
        (1..=30_000).contains(&ttl),
        "unconfirmed: kept for the tentative TTL, got {ttl} ms"
    );
    lb.touch(&[live(&early, &on, true)]).await.unwrap();
    let (_, ttl) = placed(early.clone()).await;
    assert!(
        ttl > 30_000,
        "confirmed: kept for the placement TTL, got {ttl} ms"
    );
    // A player's touch keeps what a publisher confirmed.
    lb.touch(&[live(&early, &on, false)]).await.unwrap();
    assert!(placed(early.clone()).await.1 > 30_000);
    lb.release(&early, &on).await.unwrap();
    assert_eq!(
        placed(early.clone()).await.0.as_deref(),
        Some(on.as_str()),
        "a firm placement is never released"
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
