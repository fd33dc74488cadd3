//! Where streams go: stickiness, dead, restarted and draining origins, capacity and the
//! strategy, placement expiry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{
    expect, key, live, ok, origin, per_server, pick, server, static_origin, status, streams,
    Capability, Harness, Run,
};
use crate::{BalancerConfig, Error, OriginId, OriginLoad, PickIntent, StrategyKind, StreamKey};

/// A stream picked once stays on its origin: every later play of it goes there too. With
/// stored placements, the 30 published streams are listed and counted once each.
pub async fn a_stream_sticks_to_its_origin(h: &dyn Harness) {
    let run = Run::start(h, "a_stream_sticks_to_its_origin");
    let lb = run
        .balancer(BalancerConfig::default(), StrategyKind::Random.build())
        .await;
    for s in ["a", "b", "c"] {
        ok(lb.register(origin(s, "1")).await, "register");
    }
    for n in 0..30 {
        let k = key(&format!("s{n}"));
        let first = pick(&lb, &k, PickIntent::Publish).await.id;
        for _ in 0..5 {
            assert_eq!(
                pick(&lb, &k, PickIntent::Play).await.id,
                first,
                "every play of {k} goes where its publish went"
            );
        }
    }
    if run.has(Capability::Placements) {
        assert_eq!(
            ok(lb.placements().await, "placements").len(),
            30,
            "30 published streams are 30 firm placements"
        );
        let counted: usize = streams(&lb).await.iter().map(|(_, n)| n).sum();
        assert_eq!(counted, 30, "each firm placement counts once");
    }
}

/// Many tasks picking the same new streams at once agree on each one's origin (one
/// balancer instance; a multi-threaded runtime makes them race for real).
pub async fn concurrent_first_picks_agree(h: &dyn Harness) {
    const TASKS: usize = 8;
    const STREAMS: usize = 100;
    let run = Run::start(h, "concurrent_first_picks_agree");
    let lb = run
        .balancer(BalancerConfig::default(), StrategyKind::Random.build())
        .await;
    for s in ["a", "b", "c", "d"] {
        ok(lb.register(origin(s, "1")).await, "register");
    }
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let lb = Arc::clone(&lb);
        // Task t starts where task t-1 is a few streams ahead: they meet on new streams.
        let start = t * STREAMS / TASKS;
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::with_capacity(STREAMS);
            for n in 0..STREAMS {
                let k = key(&format!("s{}", (n + start) % STREAMS));
                let picked = lb.pick(&k, PickIntent::Play).await;
                seen.push((k, picked.map(|o| o.id)));
            }
            seen
        }));
    }
    let mut decided: HashMap<StreamKey, OriginId> = HashMap::new();
    for task in tasks {
        let seen = match task.await {
            Ok(seen) => seen,
            Err(e) => panic!("a picking task failed: {e}"),
        };
        for (k, picked) in seen {
            let id = ok(picked, "a concurrent play pick");
            let first = decided.entry(k.clone()).or_insert_with(|| id.clone());
            assert_eq!(*first, id, "concurrent first picks of {k} disagreed");
        }
    }
    assert_eq!(decided.len(), STREAMS);
    if run.has(Capability::Placements) {
        assert_eq!(
            ok(lb.placements().await, "placements"),
            [],
            "plays place tentatively: nothing is listed"
        );
    }
}

/// Without an origin that can take the stream, a pick fails with [`Error::NoOrigin`],
/// counting the origins known and alive: none at all, then one whose heartbeat is older
/// than `origin_ttl`.
pub async fn no_origin_says_why(h: &dyn Harness) {
    let run = Run::start(h, "no_origin_says_why");
    let ttl = h.ttl();
    let config = BalancerConfig {
        origin_ttl: ttl,
        ..BalancerConfig::default()
    };
    let lb = run.balancer(config, StrategyKind::Random.build()).await;
    match lb.pick(&key("x"), PickIntent::Play).await {
        Err(Error::NoOrigin {
            registered: 0,
            alive: 0,
            accepting: 0,
        }) => {}
        other => {
            panic!("expected NoOrigin {{ 0 registered, 0 alive, 0 accepting }}, got {other:?}")
        }
    }
    ok(lb.register(origin("a", "1")).await, "register");
    assert_eq!(server(&lb, "x", PickIntent::Publish).await, "a");
    h.advance(ttl * 12 / 10).await;
    match lb.pick(&key("x"), PickIntent::Play).await {
        Err(Error::NoOrigin {
            registered: 1,
            alive: 0,
            ..
        }) => {}
        other => panic!(
            "expected NoOrigin {{ 1 registered, 0 alive }} once the only origin's heartbeat \
             is older than origin_ttl, got {other:?}"
        ),
    }
}

/// A registered origin dies when its heartbeat is older than `origin_ttl` (and stays
/// listed, not alive, meanwhile); its streams move at their next pick, leaving its count.
pub async fn a_dead_origin_loses_its_streams_at_the_next_pick(h: &dyn Harness) {
    let run = Run::start(h, "a_dead_origin_loses_its_streams_at_the_next_pick");
    let ttl = h.ttl();
    let config = BalancerConfig {
        origin_ttl: ttl,
        ..BalancerConfig::default()
    };
    let lb = run.balancer(config, StrategyKind::Random.build()).await;
    let placements = run.has(Capability::Placements);
    ok(lb.register(origin("a", "1")).await, "register a");
    assert_eq!(server(&lb, "cam", PickIntent::Publish).await, "a");
    h.advance(ttl / 2).await;
    ok(lb.register(origin("b", "1")).await, "register b");
    if placements {
        assert_eq!(
            server(&lb, "cam", PickIntent::Play).await,
            "a",
            "a's heartbeat is within origin_ttl: its stream stays"
        );
    }
    h.advance(ttl * 6 / 10).await;
    ok(lb.register(origin("b", "1")).await, "heartbeat of b"); // a sends none
    assert_eq!(
        server(&lb, "cam", PickIntent::Play).await,
        "b",
        "a's heartbeat is older than origin_ttl: the stream is placed again"
    );
    let statuses = ok(lb.origins().await, "origins");
    let a = statuses.iter().find(|s| s.origin.server == "a");
    let a = a.unwrap_or_else(|| panic!("a dead origin stays listed for a while: {statuses:?}"));
    assert!(
        !a.alive && a.since_heartbeat >= ttl,
        "a is listed dead, its heartbeat at least origin_ttl old: {a:?}"
    );
    let b = statuses.iter().find(|s| s.origin.server == "b");
    assert!(b.is_some_and(|b| b.alive), "b is alive: {statuses:?}");
    if placements {
        assert_eq!(
            streams(&lb).await,
            expect(&[("a", 0), ("b", 0)]),
            "the firm placement left a; the play's new placement on b is tentative"
        );
    }
    assert_eq!(server(&lb, "cam", PickIntent::Publish).await, "b");
    if placements {
        assert_eq!(
            streams(&lb).await,
            expect(&[("a", 0), ("b", 1)]),
            "the republish made the placement on b firm"
        );
    }
}

/// A static origin (from the configuration) is alive however old its registration.
pub async fn static_origins_never_expire(h: &dyn Harness) {
    let run = Run::start(h, "static_origins_never_expire");
    let ttl = h.ttl();
    let config = BalancerConfig {
        origin_ttl: ttl,
        ..BalancerConfig::default()
    };
    let lb = run.balancer(config, StrategyKind::Random.build()).await;
    let s = static_origin("s");
    ok(lb.register(s.clone()).await, "register");
    h.advance(ttl * 12 / 10).await;
    assert!(
        status(&lb, &s.id).await.alive,
        "a static origin is alive past origin_ttl"
    );
    assert_eq!(pick(&lb, &key("cam"), PickIntent::Publish).await.id, s.id);
}

/// A registration from the same `server` with a new `service`/`pid` is a restart: the
/// old process is gone at once (not listed, its streams move to the new one).
pub async fn a_restart_replaces_the_old_process_at_once(h: &dyn Harness) {
    let run = Run::start(h, "a_restart_replaces_the_old_process_at_once");
    let lb = run
        .balancer(BalancerConfig::default(), StrategyKind::Random.build())
        .await;
    let (old, other) = (origin("a", "1"), origin("other", "1"));
    ok(lb.register(old.clone()).await, "register a");
    ok(lb.register(other.clone()).await, "register other");
    ok(lb.set_draining(&other.id, true).await, "set_draining");
    assert_eq!(pick(&lb, &key("cam"), PickIntent::Publish).await.id, old.id);
    let new = origin("a", "2");
    ok(lb.register(new.clone()).await, "register a's new process");
    let mut ids: Vec<String> = ok(lb.origins().await, "origins")
        .iter()
        .map(|s| s.origin.id.to_string())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [new.id.as_str(), other.id.as_str()],
        "the new process replaced the old one"
    );
    assert_eq!(
        ok(lb.origin(&old.id).await, "origin"),
        None,
        "the old process is unknown"
    );
    assert_eq!(
        pick(&lb, &key("cam"), PickIntent::Play).await.id,
        new.id,
        "the stream follows the restart"
    );
    assert_eq!(pick(&lb, &key("cam"), PickIntent::Publish).await.id, new.id);
}

/// A draining origin takes no new streams and loses its publishers at their next pick, but
/// keeps its players; the flag is the balancer's (heartbeats neither set nor clear it), and
/// draining an unknown origin is [`Error::UnknownOrigin`].
pub async fn draining_moves_publishers_keeps_players_and_refuses_new_streams(h: &dyn Harness) {
    let run = Run::start(
        h,
        "draining_moves_publishers_keeps_players_and_refuses_new_streams",
    );
    let lb = run
        .balancer(BalancerConfig::default(), StrategyKind::Random.build())
        .await;
    let placements = run.has(Capability::Placements);
    let a = origin("a", "1");
    ok(lb.register(a.clone()).await, "register a");
    assert_eq!(server(&lb, "cam", PickIntent::Publish).await, "a");
    ok(lb.register(origin("b", "1")).await, "register b");
    ok(lb.set_draining(&a.id, true).await, "set_draining");
    assert!(status(&lb, &a.id).await.draining, "a is listed draining");
    if placements {
        assert_eq!(
            server(&lb, "cam", PickIntent::Play).await,
            "a",
            "players follow the live stream on the draining origin"
        );
    }
    for n in 0..20 {
        assert_eq!(
            server(&lb, &format!("new{n}"), PickIntent::Publish).await,
            "b",
            "a draining origin takes no new published stream"
        );
        if placements {
            assert_eq!(
                server(&lb, &format!("played{n}"), PickIntent::Play).await,
                "b",
                "a draining origin takes no new played stream"
            );
        }
    }
    assert_eq!(
        server(&lb, "cam", PickIntent::Publish).await,
        "b",
        "a republish leaves the draining origin"
    );
    if placements {
        assert_eq!(
            server(&lb, "cam", PickIntent::Play).await,
            "b",
            "players follow the publisher to its new origin"
        );
    }
    match lb.set_draining(&OriginId::new("nope"), true).await {
        Err(Error::UnknownOrigin(_)) => {}
        other => panic!("draining an unknown origin: expected UnknownOrigin, got {other:?}"),
    }
    ok(lb.set_draining(&a.id, false).await, "set_draining false");
    assert!(!status(&lb, &a.id).await.draining, "a no longer drains");
    ok(lb.register(a.clone()).await, "heartbeat of a");
    assert!(
        !status(&lb, &a.id).await.draining,
        "a heartbeat does not bring the flag back"
    );
    ok(lb.set_draining(&a.id, true).await, "set_draining");
    ok(lb.register(a.clone()).await, "heartbeat of a");
    assert!(
        status(&lb, &a.id).await.draining,
        "a heartbeat does not clear the flag"
    );
}

/// `max_streams` bounds an origin's firm placements; least-streams fills the others.
pub async fn max_streams_limits_firm_placements(h: &dyn Harness) {
    let run = Run::start(h, "max_streams_limits_firm_placements");
    if !run.needs(&[Capability::Placements]).await {
        return;
    }
    let lb = run
        .balancer(
            BalancerConfig::default(),
            StrategyKind::LeastStreams.build(),
        )
        .await;
    let mut small = origin("small", "1");
    small.max_streams = Some(2);
    ok(lb.register(small).await, "register small");
    ok(lb.register(origin("big", "1")).await, "register big");
    for n in 0..10 {
        pick(&lb, &key(&format!("s{n}")), PickIntent::Publish).await;
    }
    assert_eq!(
        streams(&lb).await,
        expect(&[("big", 8), ("small", 2)]),
        "least-streams alternates until small is full (max_streams 2)"
    );
}

/// The strategy chooses new placements from the origins' reported load: least-load sends
/// every new stream to the origin with the lowest CPU.
pub async fn least_load_follows_the_reported_cpu(h: &dyn Harness) {
    let run = Run::start(h, "least_load_follows_the_reported_cpu");
    if !run.needs(&[Capability::Placements]).await {
        return;
    }
    let lb = run
        .balancer(BalancerConfig::default(), StrategyKind::LeastLoad.build())
        .await;
    for (server, cpu) in [("hot", 90), ("cool", 15)] {
        let mut o = origin(server, "1");
        o.load = Some(OriginLoad {
            cpu_percent: Some(cpu),
            ..Default::default()
        });
        ok(lb.register(o).await, "register");
    }
    for n in 0..10 {
        assert_eq!(
            server(&lb, &format!("s{n}"), PickIntent::Publish).await,
            "cool",
            "least-load places on the origin with the lowest CPU"
        );
    }
}

/// A firm placement that moves (its origin drains and the publisher comes back) leaves
/// its old origin's count for the new one's.
pub async fn stream_counts_follow_re_placement(h: &dyn Harness) {
    let run = Run::start(h, "stream_counts_follow_re_placement");
    if !run.needs(&[Capability::Placements]).await {
        return;
    }
    let lb = run
        .balancer(
            BalancerConfig::default(),
            StrategyKind::LeastStreams.build(),
        )
        .await;
    let a = origin("a", "1");
    ok(lb.register(a.clone()).await, "register a");
    for n in 0..6 {
        pick(&lb, &key(&format!("s{n}")), PickIntent::Publish).await;
    }
    ok(lb.register(origin("b", "1")).await, "register b");
    ok(lb.set_draining(&a.id, true).await, "set_draining");
    for n in 0..2 {
        assert_eq!(
            server(&lb, &format!("s{n}"), PickIntent::Publish).await,
            "b",
            "the republish leaves the draining origin"
        );
    }
    assert_eq!(
        streams(&lb).await,
        expect(&[("a", 4), ("b", 2)]),
        "two streams moved from a to b"
    );
}

/// A firm placement is forgotten after `placement_ttl` without a pick or a touch; a pick
/// or a touch renews it.
pub async fn placements_expire_unless_picked_or_touched(h: &dyn Harness) {
    let run = Run::start(h, "placements_expire_unless_picked_or_touched");
    if !run.needs(&[Capability::Placements]).await {
        return;
    }
    let ttl = h.ttl();
    let config = BalancerConfig {
        placement_ttl: ttl,
        ..BalancerConfig::default()
    };
    let lb = run.balancer(config, StrategyKind::Random.build()).await;
    let a = origin("a", "1");
    ok(lb.register(a.clone()).await, "register");
    let (touched, picked, idle) = (key("touched"), key("picked"), key("idle"));
    for k in [&touched, &picked, &idle] {
        pick(&lb, k, PickIntent::Publish).await;
    }
    h.advance(ttl * 6 / 10).await;
    ok(lb.touch(&[live(&touched, &a.id, true)]).await, "touch");
    pick(&lb, &picked, PickIntent::Play).await;
    h.advance(ttl * 6 / 10).await;
    let mut listed: Vec<StreamKey> = ok(lb.placements().await, "placements")
        .into_iter()
        .map(|p| p.key)
        .collect();
    listed.sort();
    let mut expected = vec![picked, touched];
    expected.sort();
    assert_eq!(
        listed, expected,
        "the idle placement expired after placement_ttl; the picked and touched ones were renewed"
    );
}

/// One day of a small fleet, step by step, with least-load: health marks, a full origin
/// (`max_connections`), a drain and a mark that expires, each pick landing where the rules
/// say. Every balancer must place exactly alike.
pub async fn placement_rules_in_sequence(h: &dyn Harness) {
    let run = Run::start(h, "placement_rules_in_sequence");
    if !run
        .needs(&[
            Capability::Placements,
            Capability::HealthMarks,
            Capability::ConnectionReports,
        ])
        .await
    {
        return;
    }
    let ttl = h.ttl();
    let lb = run
        .balancer(BalancerConfig::default(), StrategyKind::LeastLoad.build())
        .await;
    let with_cpu = |name: &str, cpu: u32| {
        let mut o = static_origin(name);
        o.load = Some(OriginLoad {
            cpu_percent: Some(cpu),
            ..Default::default()
        });
        o
    };
    let (a, b, mut c) = (with_cpu("a", 20), with_cpu("b", 80), with_cpu("c", 50));
    c.max_connections = Some(5);
    for o in [&a, &b, &c] {
        ok(lb.register(o.clone()).await, "register");
    }
    let mut out = Vec::new();
    let pick = |stream: &'static str, intent: PickIntent| {
        let lb = Arc::clone(&lb);
        async move {
            lb.pick(&key(stream), intent)
                .await
                .map_or_else(|e| format!("error: {e}"), |o| o.server)
        }
    };
    // Lowest CPU band first: a (20), c (50), b (80); distinct bands, so no random ties.
    out.push(pick("s1", PickIntent::Publish).await);
    out.push(pick("s2", PickIntent::Play).await);
    ok(
        lb.mark_down(&a.id, "probe failed", Duration::from_secs(60))
            .await,
        "mark_down a",
    );
    out.push(pick("s1", PickIntent::Publish).await);
    out.push(pick("s2", PickIntent::Play).await);
    out.push(pick("s3", PickIntent::Publish).await);
    ok(
        lb.report_connections("p", &[(c.id.clone(), 5)], Duration::from_secs(60))
            .await,
        "report_connections",
    );
    out.push(pick("s4", PickIntent::Publish).await);
    out.push(pick("s1", PickIntent::Play).await);
    ok(lb.mark_up(&a.id).await, "mark_up a");
    out.push(pick("s5", PickIntent::Publish).await);
    ok(lb.set_draining(&a.id, true).await, "set_draining a");
    out.push(pick("s5", PickIntent::Play).await);
    out.push(pick("s5", PickIntent::Publish).await);
    ok(lb.mark_down(&b.id, "x", ttl / 2).await, "mark_down b");
    out.push(pick("s6", PickIntent::Publish).await);
    h.advance(ttl * 8 / 10).await;
    out.push(pick("s6", PickIntent::Publish).await);
    out.push(pick("s7", PickIntent::Publish).await);
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
    assert_eq!(
        out, expected,
        "each step's pick (see the comments of `expected` in lb_core::testing) "
    );
}

/// The connections of every origin, in server order.
pub(super) async fn connections(lb: &Arc<dyn crate::Balancer>) -> Vec<(String, u64)> {
    per_server(lb, |s| s.connections).await
}
