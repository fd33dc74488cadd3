//! Health marks, connection reports and `max_connections`.

use std::time::Duration;

use super::placement::connections;
use super::{
    expect, key, ok, origin, server, static_origin, status, streams, Capability, Harness, Run,
};
use crate::{
    BalancerConfig, Error, OriginId, PickIntent, StrategyKind, MAX_PROXY_ID_LEN, MAX_REASON_LEN,
    MAX_REPORT_ENTRIES,
};

/// A marked down origin is not alive: its streams move at their next pick (publish and
/// play alike) and it takes no new ones, until the mark ends or is cleared. A later mark
/// replaces an earlier one, whether it ends sooner or later; reasons are cut to
/// [`MAX_REASON_LEN`] and an empty one reads `down`; an absurd duration is accepted; an
/// unknown origin is [`Error::UnknownOrigin`].
pub async fn a_marked_down_origin_loses_its_streams_until_the_mark_ends(h: &dyn Harness) {
    let run = Run::start(
        h,
        "a_marked_down_origin_loses_its_streams_until_the_mark_ends",
    );
    if !run.needs(&[Capability::HealthMarks]).await {
        return;
    }
    let ttl = h.ttl();
    let lb = run
        .balancer(BalancerConfig::default(), StrategyKind::Random.build())
        .await;
    let (a, b) = (static_origin("a"), static_origin("b"));
    ok(lb.register(a.clone()).await, "register a");
    assert_eq!(server(&lb, "pub", PickIntent::Publish).await, "a");
    assert_eq!(server(&lb, "play", PickIntent::Play).await, "a");
    ok(lb.register(b.clone()).await, "register b");

    let long = Duration::from_secs(60);
    ok(
        lb.mark_down(&a.id, "probe: connection refused", long).await,
        "mark_down",
    );
    let s = status(&lb, &a.id).await;
    assert_eq!(
        (s.alive, s.down.as_deref()),
        (false, Some("probe: connection refused")),
        "a marked down origin is listed not alive, with the mark's reason"
    );
    assert_eq!(
        server(&lb, "pub", PickIntent::Publish).await,
        "b",
        "a publisher leaves a marked down origin"
    );
    assert_eq!(
        server(&lb, "play", PickIntent::Play).await,
        "b",
        "players leave a marked down origin too"
    );
    for n in 0..10 {
        assert_eq!(
            server(&lb, &format!("new{n}"), PickIntent::Publish).await,
            "b",
            "a marked down origin takes no new stream"
        );
    }
    if run.has(Capability::Placements) {
        assert_eq!(
            streams(&lb).await,
            expect(&[("a", 0), ("b", 11)]),
            "11 firm (published) placements on b; the play's is tentative"
        );
    }

    // A later mark replaces an earlier one: on a it ends later, on b sooner.
    ok(lb.mark_down(&a.id, "first", ttl / 2).await, "mark_down");
    ok(lb.mark_down(&a.id, "second", long).await, "mark_down");
    ok(lb.mark_down(&b.id, "long", long).await, "mark_down");
    ok(lb.mark_down(&b.id, "short", ttl / 2).await, "mark_down");
    h.advance(ttl * 8 / 10).await;
    let s = status(&lb, &a.id).await;
    assert_eq!(
        (s.alive, s.down.as_deref()),
        (false, Some("second")),
        "the later, longer mark holds a down past the earlier one's end"
    );
    let s = status(&lb, &b.id).await;
    assert_eq!(
        (s.alive, s.down),
        (true, None),
        "the later, shorter mark ended: b is up although the earlier mark would still hold"
    );
    ok(lb.mark_up(&a.id).await, "mark_up");
    let s = status(&lb, &a.id).await;
    assert_eq!((s.alive, s.down), (true, None), "mark_up clears the mark");
    assert_eq!(server(&lb, "pub", PickIntent::Play).await, "b");

    let unknown = OriginId::new("nope");
    match lb.mark_down(&unknown, "x", long).await {
        Err(Error::UnknownOrigin(_)) => {}
        other => panic!("mark_down of an unknown origin: expected UnknownOrigin, got {other:?}"),
    }
    match lb.mark_up(&unknown).await {
        Err(Error::UnknownOrigin(_)) => {}
        other => panic!("mark_up of an unknown origin: expected UnknownOrigin, got {other:?}"),
    }
    ok(
        lb.mark_down(&a.id, &"r".repeat(10_000), Duration::MAX)
            .await,
        "mark_down for Duration::MAX with a 10 000-byte reason (an absurd duration means \
         a long time, not an error)",
    );
    let s = status(&lb, &a.id).await;
    assert_eq!(
        (s.alive, s.down.map(|r| r.len())),
        (false, Some(MAX_REASON_LEN)),
        "a long reason is cut to MAX_REASON_LEN"
    );
    ok(lb.mark_down(&a.id, "", long).await, "mark_down");
    let s = status(&lb, &a.id).await;
    assert_eq!(
        (s.alive, s.down.as_deref()),
        (false, Some("down")),
        "an empty reason still holds the origin down, and reads `down`"
    );
}

/// A mark holds a registered origin down through its heartbeats.
pub async fn a_registered_origin_marked_down_stays_down_through_heartbeats(h: &dyn Harness) {
    let run = Run::start(
        h,
        "a_registered_origin_marked_down_stays_down_through_heartbeats",
    );
    if !run.needs(&[Capability::HealthMarks]).await {
        return;
    }
    let lb = run
        .balancer(BalancerConfig::default(), StrategyKind::Random.build())
        .await;
    let a = origin("a", "1");
    ok(lb.register(a.clone()).await, "register");
    ok(
        lb.mark_down(&a.id, "probe failed", Duration::from_secs(60))
            .await,
        "mark_down",
    );
    ok(lb.register(a.clone()).await, "heartbeat");
    assert!(
        !status(&lb, &a.id).await.alive,
        "a heartbeat does not lift a mark"
    );
    match lb.pick(&key("x"), PickIntent::Publish).await {
        Err(Error::NoOrigin {
            registered: 1,
            alive: 0,
            ..
        }) => {}
        other => panic!(
            "the only origin is marked down: expected NoOrigin {{ 1 registered, 0 alive }}, \
             got {other:?}"
        ),
    }
    ok(lb.mark_up(&a.id).await, "mark_up");
    assert_eq!(server(&lb, "x", PickIntent::Publish).await, "a");
}

/// Connection reports: each proxy's latest report replaces its previous one, reports of
/// all proxies add up per origin (an origin named twice in one report too), and a report
/// stops counting when its TTL passes. A proxy id longer than [`MAX_PROXY_ID_LEN`] or
/// empty, or a report naming more than [`MAX_REPORT_ENTRIES`] origins, is
/// [`Error::InvalidInput`].
pub async fn connection_reports_sum_per_proxy_replace_and_expire(h: &dyn Harness) {
    let run = Run::start(h, "connection_reports_sum_per_proxy_replace_and_expire");
    if !run.needs(&[Capability::ConnectionReports]).await {
        return;
    }
    let ttl = h.ttl();
    let lb = run
        .balancer(BalancerConfig::default(), StrategyKind::Random.build())
        .await;
    let (a, b) = (origin("a", "1"), origin("b", "1"));
    ok(lb.register(a.clone()).await, "register a");
    ok(lb.register(b.clone()).await, "register b");
    let long = Duration::from_secs(60);
    ok(
        lb.report_connections("p1", &[(a.id.clone(), 5), (b.id.clone(), 1)], long)
            .await,
        "report_connections",
    );
    ok(
        lb.report_connections("p2", &[(a.id.clone(), 2), (a.id.clone(), 1)], ttl / 2)
            .await,
        "report_connections",
    );
    assert_eq!(
        connections(&lb).await,
        expect(&[("a", 8), ("b", 1)]),
        "reports add up over proxies and within one"
    );
    ok(
        lb.report_connections("p1", &[(b.id.clone(), 4)], long)
            .await,
        "report_connections",
    );
    assert_eq!(
        connections(&lb).await,
        expect(&[("a", 3), ("b", 4)]),
        "p1's new report replaces its old one"
    );
    h.advance(ttl * 8 / 10).await;
    assert_eq!(
        connections(&lb).await,
        expect(&[("a", 0), ("b", 4)]),
        "p2's report expired with its TTL"
    );
    for bad in ["", &"p".repeat(MAX_PROXY_ID_LEN + 1)] {
        match lb.report_connections(bad, &[], long).await {
            Err(Error::InvalidInput(_)) => {}
            other => panic!(
                "a report from proxy id of {} bytes: expected InvalidInput, got {other:?}",
                bad.len()
            ),
        }
    }
    let many: Vec<(OriginId, u64)> = (0..=MAX_REPORT_ENTRIES)
        .map(|n| (OriginId::new(format!("o{n}")), 1))
        .collect();
    match lb.report_connections("p3", &many, long).await {
        Err(Error::InvalidInput(_)) => {}
        other => panic!(
            "a report naming {} origins: expected InvalidInput, got {other:?}",
            many.len()
        ),
    }
}

/// An origin whose reported connections reach its `max_connections` takes no new stream;
/// when reports free room, it takes streams again (seen, at the latest, once the statuses
/// have been read: a balancer may choose from a snapshot that a status read refreshes).
pub async fn max_connections_refuses_new_streams(h: &dyn Harness) {
    let run = Run::start(h, "max_connections_refuses_new_streams");
    if !run
        .needs(&[Capability::ConnectionReports, Capability::Placements])
        .await
    {
        return;
    }
    let lb = run
        .balancer(
            BalancerConfig::default(),
            StrategyKind::LeastStreams.build(),
        )
        .await;
    let mut small = origin("small", "1");
    small.max_connections = Some(10);
    ok(lb.register(small.clone()).await, "register small");
    ok(lb.register(origin("big", "1")).await, "register big");
    let long = Duration::from_secs(60);
    ok(
        lb.report_connections("p1", &[(small.id.clone(), 6)], long)
            .await,
        "report_connections",
    );
    ok(
        lb.report_connections("p2", &[(small.id.clone(), 4)], long)
            .await,
        "report_connections",
    );
    for n in 0..10 {
        assert_eq!(
            server(&lb, &format!("s{n}"), PickIntent::Publish).await,
            "big",
            "small has 10 connections, its max_connections: it takes no new stream"
        );
    }
    let s = status(&lb, &small.id).await;
    assert!(
        s.connections == 10 && s.alive && !s.accepts_new_streams(),
        "small is alive and full: {s:?}"
    );
    ok(
        lb.report_connections("p2", &[], long).await,
        "report_connections",
    );
    let s = status(&lb, &small.id).await;
    assert!(
        s.connections == 6 && s.accepts_new_streams(),
        "p2's empty report freed room on small: {s:?}"
    );
    assert_eq!(
        server(&lb, "late", PickIntent::Publish).await,
        "small",
        "6 connections < 10: small takes streams again (and has the fewest)"
    );
}
