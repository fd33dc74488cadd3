use std::sync::Arc;
use std::time::Duration;

use lb_core::{
    Balancer, BalancerConfig, Error, HlsSession, ManualClock, Origin, OriginId, PickIntent,
    Registration, RtcSession, StrategyKind, StreamKey,
};

use super::MemoryBalancer;

const TTL: Duration = Duration::from_secs(300);

fn balancer(kind: StrategyKind) -> (MemoryBalancer, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let config = BalancerConfig {
        origin_ttl: TTL,
        session_ttl: Duration::from_secs(120),
        placement_ttl: Duration::from_secs(3600),
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
