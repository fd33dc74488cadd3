//! `RedisBalancer` against a real redis-server, started and stopped by these tests on a free
//! loopback port: the balancer conformance suite (`lb_core::testing`, module `conformance`),
//! then what only a shared store has: its key layout and scripts, several proxies and races
//! between them, Redis going away, cluster and sentinel.

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use fred::prelude::{ClientLike, Config, KeysInterface, SetsInterface};
use fred::types::{ClusterHash, CustomCommand};
use lb_core::testing::{key, origin, Harness};
use lb_core::{
    Balancer, BalancerConfig, Error, HlsSession, LiveStream, OriginId, PickIntent, RtcSession,
    Strategy, StrategyKind, StreamKey,
};
use lb_redis::{RedisBalancer, RedisBalancerConfig};

#[path = "redis/health.rs"]
mod health;
#[path = "redis/tentative.rs"]
mod tentative;

/// A fresh key prefix on this test's redis-server for each balancer; time passes by
/// sleeping, so the suite's TTLs are [`lb_core::testing::DEFAULT_TTL`] (800 ms) and its
/// timed scenarios take a few seconds each.
struct Redis(Arc<RedisServer>);

#[async_trait::async_trait]
impl Harness for Redis {
    async fn balancer(
        &self,
        config: BalancerConfig,
        strategy: Box<dyn Strategy>,
    ) -> Arc<dyn Balancer> {
        let prefix = unique_prefix("conformance");
        match RedisBalancer::connect(redis_config(&self.0, &prefix), config, strategy).await {
            Ok(lb) => Arc::new(lb),
            Err(e) => panic!("connect to the test redis-server: {e}"),
        }
    }

    async fn advance(&self, by: Duration) {
        tokio::time::sleep(by).await;
    }
}

mod conformance {
    lb_core::conformance_tests!(super::Redis(super::shared_redis()));
}

/// The whole suite again with rendezvous wherever a scenario leaves the choice open.
mod conformance_rendezvous {
    lb_core::conformance_tests!(lb_core::testing::UnderRendezvous(super::Redis(
        super::shared_redis()
    )));
}

const REDIS_SERVER: &str = "redis-server";

/// A redis-server of our own; killed and reaped on drop, even when a test fails.
struct RedisServer {
    child: Child,
    port: u16,
    /// A scratch directory (cluster and sentinel state), removed on drop.
    dir: Option<PathBuf>,
}

impl RedisServer {
    fn start() -> Self {
        Self::start_on(free_port())
    }

    fn start_on(port: u16) -> Self {
        Self::spawn(
            port,
            &[
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            None,
        )
    }

    fn spawn(port: u16, args: &[&str], dir: Option<PathBuf>) -> Self {
        let spawned = Command::new(REDIS_SERVER)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => panic!(
                "cannot run `{REDIS_SERVER}` ({e}): these tests need a real Redis server on the PATH; \
                 install it with `apt-get install redis-server`"
            ),
        };
        let mut server = RedisServer { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{REDIS_SERVER} exited at start ({status}) on port {port}");
            }
            assert!(
                Instant::now() < deadline,
                "{REDIS_SERVER} did not listen on port {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends a signal to the server, as an operator's `kill` would.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_prefix(test));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// A port nothing listens on right now: bound by the OS, then released.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// One server for the tests that run at the same time (each on its own key prefix); it
/// stops when the last of them drops it, so no redis-server outlives the test binary.
fn shared_redis() -> Arc<RedisServer> {
    static SHARED: Mutex<Weak<RedisServer>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = shared.upgrade() {
        return server;
    }
    let server = Arc::new(RedisServer::start());
    *shared = Arc::downgrade(&server);
    server
}

fn unique_prefix(test: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t-{}-{test}-{}-",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn config(origin_ttl: f64, session_ttl: f64, placement_ttl: f64) -> BalancerConfig {
    BalancerConfig {
        origin_ttl: Duration::from_secs_f64(origin_ttl),
        session_ttl: Duration::from_secs_f64(session_ttl),
        placement_ttl: Duration::from_secs_f64(placement_ttl),
        ..BalancerConfig::default()
    }
}

fn redis_config(server: &RedisServer, prefix: &str) -> RedisBalancerConfig {
    RedisBalancerConfig {
        url: Some(server.url()),
        prefix: prefix.to_owned(),
        command_timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(1),
        reconnect_max_delay: Duration::from_millis(500),
        ..Default::default()
    }
}

async fn balancer(
    server: &RedisServer,
    prefix: &str,
    cfg: BalancerConfig,
    kind: StrategyKind,
) -> RedisBalancer {
    RedisBalancer::connect(redis_config(server, prefix), cfg, kind.build())
        .await
        .expect("connect to the test redis-server")
}

/// A plain client, to look at (or spoil) what the balancer stored.
async fn raw_client(server: &RedisServer) -> fred::prelude::Client {
    let client = fred::prelude::Builder::from_config(Config::from_url(&server.url()).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    client
}

async fn sleep(secs: f64) {
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
}

#[tokio::test]
async fn keys_follow_the_reference_layout() {
    let redis = shared_redis();
    let prefix = unique_prefix("keys");
    let lb = balancer(
        &redis,
        &prefix,
        config(10.0, 120.0, 3600.0),
        StrategyKind::Random,
    )
    .await;
    let a = origin("a", "1");
    lb.register(a.clone()).await.unwrap();
    let k = key("cam");
    lb.pick(&k, PickIntent::Publish).await.unwrap();
    lb.put_hls(
        "tok",
        &HlsSession {
            key: k.clone(),
            origin: a.id.clone(),
        },
    )
    .await
    .unwrap();
    lb.set_draining(&a.id, true).await.unwrap();

    let raw = raw_client(&redis).await;
    let server_key = format!("{prefix}server:{}", a.id);
    let record: String = raw.get(&server_key).await.unwrap();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert!(
        record["heartbeat_ms"].as_u64().unwrap() > 1_600_000_000_000,
        "heartbeat is Redis's TIME in ms: {record}"
    );
    assert_eq!(record["origin"]["id"], a.id.as_str());
    let ttl: i64 = raw.pttl(&server_key).await.unwrap();
    assert!(
        (10_000..=20_000).contains(&ttl),
        "a record lives 2 x origin_ttl, got {ttl} ms"
    );
    let members: Vec<String> = raw.smembers(format!("{prefix}all-servers")).await.unwrap();
    assert_eq!(members, [a.id.to_string()]);
    let placed: String = raw
        .get(format!("{prefix}url:__defaultVhost__/live/cam"))
        .await
        .unwrap();
    assert_eq!(placed, a.id.as_str());
    let session: String = raw.get(format!("{prefix}spbhid:tok")).await.unwrap();
    let session: HlsSession = serde_json::from_str(&session).unwrap();
    assert_eq!(session.key, k);
    let drain_ttl: i64 = raw.pttl(format!("{prefix}drain:{}", a.id)).await.unwrap();
    assert!(
        drain_ttl > 0 && drain_ttl <= ttl,
        "the drain flag lives as long as the record: {drain_ttl} vs {ttl}"
    );
}

#[tokio::test]
async fn dead_origins_are_forgotten_after_two_ttls() {
    // The record's PX is 2 x origin_ttl: a dead origin is listed for one more TTL.
    let redis = shared_redis();
    let lb = balancer(
        &redis,
        &unique_prefix("forgotten"),
        config(0.5, 120.0, 3600.0),
        StrategyKind::Random,
    )
    .await;
    let a = origin("a", "1");
    lb.register(a.clone()).await.unwrap();
    sleep(0.6).await;
    let status = lb.origin(&a.id).await.unwrap().expect("listed while dead");
    assert!(!status.alive, "{status:?}");
    sleep(0.5).await;
    assert!(
        lb.origins().await.unwrap().is_empty(),
        "forgotten after 2 x origin_ttl"
    );
    match lb.pick(&key("x"), PickIntent::Play).await {
        Err(Error::NoOrigin { registered: 0, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn least_streams_balances_a_burst_within_the_status_cache() {
    let redis = shared_redis();
    let mut cfg = redis_config(&redis, &unique_prefix("burst"));
    cfg.status_cache = Duration::from_secs(60);
    let lb = RedisBalancer::connect(
        cfg,
        BalancerConfig::default(),
        StrategyKind::LeastStreams.build(),
    )
    .await
    .unwrap();
    lb.register(origin("a", "1")).await.unwrap();
    lb.register(origin("b", "1")).await.unwrap();
    for n in 0..20 {
        lb.pick(&key(&format!("s{n}")), PickIntent::Publish)
            .await
            .unwrap();
    }
    let counts: Vec<usize> = lb
        .origins()
        .await
        .unwrap()
        .iter()
        .map(|s| s.streams)
        .collect();
    assert_eq!(
        counts,
        [10, 10],
        "this proxy counts its own placements without reloading"
    );
}

#[tokio::test]
async fn an_expired_placement_stops_counting_at_once() {
    // A firm stream's score in its origin's set is its placement's expiry: counts need no
    // sweep (lb-memory's do).
    let redis = shared_redis();
    let lb = balancer(
        &redis,
        &unique_prefix("placements"),
        config(300.0, 120.0, 0.4),
        StrategyKind::Random,
    )
    .await;
    lb.register(origin("a", "1")).await.unwrap();
    lb.pick(&key("idle"), PickIntent::Publish).await.unwrap();
    assert_eq!(lb.origins().await.unwrap()[0].streams, 1);
    sleep(0.5).await;
    assert_eq!(
        lb.origins().await.unwrap()[0].streams,
        0,
        "the idle placement no longer counts"
    );
    assert!(lb.placements().await.unwrap().is_empty());
}

#[tokio::test]
async fn two_proxies_share_origins_placements_and_sessions() {
    let redis = shared_redis();
    let prefix = unique_prefix("cross");
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
    assert_eq!(two.origins().await.unwrap().len(), 2);
    for n in 0..10 {
        let k = key(&format!("s{n}"));
        let placed = one.pick(&k, PickIntent::Publish).await.unwrap();
        assert_eq!(two.pick(&k, PickIntent::Play).await.unwrap(), placed);
    }
    assert_eq!(
        two.placements().await.unwrap(),
        one.placements().await.unwrap()
    );

    let hls = HlsSession {
        key: key("s1"),
        origin: a.id.clone(),
    };
    two.put_hls("tok", &hls).await.unwrap();
    assert_eq!(one.hls("tok").await.unwrap(), Some(hls));
    let rtc = RtcSession {
        key: key("s1"),
        origin: b.id.clone(),
        server_ufrag: "su".into(),
        client_ufrag: "cu".into(),
        server_pwd: "pw".into(),
        media: None,
        publishing: None,
        client_pwd: Some("cpw".into()),
        resource: Some("/rtc/v1/whip/?action=delete&session=x".into()),
        resource_secret: Some("ab".repeat(32)),
    };
    one.put_rtc("su", &rtc).await.unwrap();
    assert_eq!(two.rtc("su").await.unwrap(), Some(rtc));
    two.remove_rtc("su").await.unwrap();
    assert_eq!(one.rtc("su").await.unwrap(), None);

    // `one` chose from a snapshot taken before the drain; Redis refuses the stale choice.
    two.set_draining(&a.id, true).await.unwrap();
    for n in 0..10 {
        assert_eq!(
            one.pick(&key(&format!("new{n}")), PickIntent::Publish)
                .await
                .unwrap()
                .id,
            b.id
        );
    }
    assert!(one.origin(&a.id).await.unwrap().unwrap().draining);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_racing_for_new_streams_agree() {
    const PROXIES: usize = 4;
    const TASKS_PER_PROXY: usize = 4;
    const STREAMS: usize = 200;
    let redis = shared_redis();
    let prefix = unique_prefix("race");
    let mut proxies = Vec::new();
    for _ in 0..PROXIES {
        proxies.push(Arc::new(
            balancer(
                &redis,
                &prefix,
                BalancerConfig::default(),
                StrategyKind::Random,
            )
            .await,
        ));
    }
    for s in ["a", "b", "c", "d"] {
        proxies[0].register(origin(s, "1")).await.unwrap();
    }

    // Every task picks every stream; task t of each proxy starts at the same stream as task
    // t of the others, so the proxies meet on each new stream at the same moment.
    let race = |intent: PickIntent| {
        let mut tasks = Vec::new();
        for lb in &proxies {
            for t in 0..TASKS_PER_PROXY {
                let lb = lb.clone();
                let start = t * (STREAMS / TASKS_PER_PROXY);
                tasks.push(tokio::spawn(async move {
                    let mut seen = Vec::new();
                    for n in 0..STREAMS {
                        let k = key(&format!("s{}", (n + start) % STREAMS));
                        seen.push((k.clone(), lb.pick(&k, intent).await.unwrap().id));
                    }
                    seen
                }));
            }
        }
        tasks
    };
    let tally = |results: Vec<Vec<(StreamKey, OriginId)>>| {
        let mut decided = HashMap::new();
        let mut disagreements = 0;
        for (k, id) in results.into_iter().flatten() {
            if decided.entry(k).or_insert_with(|| id.clone()) != &id {
                disagreements += 1;
            }
        }
        (decided, disagreements)
    };

    let mut results = Vec::new();
    for task in race(PickIntent::Play) {
        results.push(task.await.unwrap());
    }
    let (decided, disagreements) = tally(results);
    assert_eq!(disagreements, 0, "proxies disagreed on first placements");
    assert_eq!(decided.len(), STREAMS);
    assert!(
        proxies[0].placements().await.unwrap().is_empty(),
        "plays place tentatively: nothing is listed"
    );
    // The publishers come: every proxy finds the players' placements and makes them firm.
    let mut results = Vec::new();
    for task in race(PickIntent::Publish) {
        results.push(task.await.unwrap());
    }
    let (firmed, disagreements) = tally(results);
    assert_eq!(disagreements, 0, "proxies disagreed on firming placements");
    assert_eq!(firmed, decided, "publishers follow the players' placements");
    let placements = proxies[0].placements().await.unwrap();
    assert_eq!(placements.len(), STREAMS);
    assert!(
        placements.iter().all(|p| decided[&p.key] == p.origin),
        "what they returned is what Redis holds"
    );

    // An origin drains: every proxy's publishers move at once, and again all agree.
    let drained = origin("a", "1").id;
    proxies[1].set_draining(&drained, true).await.unwrap();
    let mut results = Vec::new();
    for task in race(PickIntent::Publish) {
        results.push(task.await.unwrap());
    }
    let (moved, disagreements) = tally(results);
    assert_eq!(disagreements, 0, "proxies disagreed on re-placements");
    assert!(moved.values().all(|id| *id != drained));
    let counted: usize = proxies[2]
        .origins()
        .await
        .unwrap()
        .iter()
        .map(|s| s.streams)
        .sum();
    assert_eq!(counted, STREAMS, "every move left its old origin's count");
}

#[tokio::test]
async fn values_it_cannot_read_are_skipped_not_fatal() {
    let redis = shared_redis();
    let prefix = unique_prefix("foreign");
    let lb = balancer(
        &redis,
        &prefix,
        BalancerConfig::default(),
        StrategyKind::Random,
    )
    .await;
    let raw = raw_client(&redis).await;
    let _: () = raw
        .set(
            format!("{prefix}spbhid:bad"),
            "{not json",
            None,
            None,
            false,
        )
        .await
        .unwrap();
    let _: () = raw
        .sadd(format!("{prefix}all-servers"), "junk")
        .await
        .unwrap();
    let _: () = raw
        .set(format!("{prefix}server:junk"), "[1,2]", None, None, false)
        .await
        .unwrap();
    assert_eq!(lb.hls("bad").await.unwrap(), None);
    lb.register(origin("a", "1")).await.unwrap();
    assert_eq!(lb.origins().await.unwrap().len(), 1);
    assert_eq!(
        lb.pick(&key("cam"), PickIntent::Publish)
            .await
            .unwrap()
            .server,
        "a"
    );
}

#[tokio::test]
async fn connect_fails_fast_without_redis() {
    let cfg = RedisBalancerConfig {
        port: free_port(),
        connect_timeout: Duration::from_secs(1),
        command_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let started = Instant::now();
    let result =
        RedisBalancer::connect(cfg, BalancerConfig::default(), StrategyKind::Random.build()).await;
    assert!(matches!(result, Err(Error::Unavailable(_))), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn redis_down_fails_fast_then_recovers_by_itself() {
    let mut redis = RedisServer::start();
    let lb = balancer(
        &redis,
        &unique_prefix("down"),
        BalancerConfig::default(),
        StrategyKind::Random,
    )
    .await;
    let a = origin("a", "1");
    lb.register(a.clone()).await.unwrap();
    lb.pick(&key("cam"), PickIntent::Publish).await.unwrap();

    redis.stop();
    let bounded = Duration::from_secs(5);
    let started = Instant::now();
    let picked = lb.pick(&key("cam"), PickIntent::Play).await;
    assert!(matches!(picked, Err(Error::Unavailable(_))), "{picked:?}");
    assert!(
        started.elapsed() < bounded,
        "pick took {:?} with Redis down",
        started.elapsed()
    );
    eprintln!("pick failed after {:?} with Redis down", started.elapsed());
    let started = Instant::now();
    let registered = lb.register(a.clone()).await;
    assert!(
        matches!(registered, Err(Error::Unavailable(_))),
        "{registered:?}"
    );
    assert!(
        started.elapsed() < bounded,
        "register took {:?} with Redis down",
        started.elapsed()
    );
    assert!(matches!(lb.hls("tok").await, Err(Error::Unavailable(_))));

    // Back on the same port, empty: the origin re-registers (as its next heartbeat would)
    // and the same balancer serves again without being told anything.
    let redis = RedisServer::start_on(redis.port);
    let restarted = Instant::now();
    let recovered = loop {
        match lb.register(a.clone()).await {
            Ok(()) => break lb.pick(&key("cam"), PickIntent::Publish).await,
            Err(e) if restarted.elapsed() < Duration::from_secs(15) => {
                assert!(matches!(e, Error::Unavailable(_)), "{e}");
                sleep(0.2).await;
            }
            Err(e) => panic!("not recovered 15 s after Redis came back: {e}"),
        }
    };
    assert_eq!(recovered.unwrap().id, a.id);
    eprintln!(
        "recovered {:?} after redis-server restarted",
        restarted.elapsed()
    );
    drop(redis);
}

#[tokio::test]
async fn redis_that_stops_answering_fails_fast_then_recovers() {
    let redis = RedisServer::start();
    let lb = balancer(
        &redis,
        &unique_prefix("frozen"),
        BalancerConfig::default(),
        StrategyKind::Random,
    )
    .await;
    let a = origin("a", "1");
    lb.register(a.clone()).await.unwrap();
    lb.pick(&key("cam"), PickIntent::Publish).await.unwrap();

    // Frozen, as behind a partition: the sockets stay open but nothing answers.
    redis.signal("-STOP");
    let started = Instant::now();
    let picked = lb.pick(&key("cam"), PickIntent::Play).await;
    assert!(matches!(picked, Err(Error::Unavailable(_))), "{picked:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "pick took {:?} with Redis frozen",
        started.elapsed()
    );
    // The next call does not wait out its own timeout: the breaker fails it at once.
    let placed = lb.placements().await;
    assert!(
        matches!(&placed, Err(Error::Unavailable(m)) if m.contains("failing at once")),
        "{placed:?}"
    );

    redis.signal("-CONT");
    let thawed = Instant::now();
    loop {
        match lb.pick(&key("cam"), PickIntent::Play).await {
            Ok(origin) => break assert_eq!(origin.id, a.id, "the data survived the freeze"),
            Err(e) if thawed.elapsed() < Duration::from_secs(15) => {
                assert!(matches!(e, Error::Unavailable(_)), "{e}");
                sleep(0.2).await;
            }
            Err(e) => panic!("not recovered 15 s after Redis resumed: {e}"),
        }
    }
    eprintln!(
        "recovered {:?} after redis-server resumed",
        thawed.elapsed()
    );
}

/// Exercises what a fleet does through the balancer, on any topology.
async fn exercise(lb: &RedisBalancer) {
    let (a, b) = (origin("a", "1"), origin("b", "1"));
    lb.register(a.clone()).await.unwrap();
    lb.register(b.clone()).await.unwrap();
    let mut live = Vec::new();
    for n in 0..20 {
        let k = key(&format!("s{n}"));
        let placed = lb.pick(&k, PickIntent::Publish).await.unwrap();
        assert_eq!(lb.pick(&k, PickIntent::Play).await.unwrap(), placed);
        live.push(LiveStream {
            key: k,
            origin: placed.id,
            publishing: true,
        });
    }
    lb.touch(&live).await.unwrap();
    assert_eq!(lb.placements().await.unwrap().len(), 20);
    let nobody = key("nobody");
    let tried = lb.pick(&nobody, PickIntent::Play).await.unwrap().id;
    lb.release(&nobody, &tried).await.unwrap();
    lb.set_draining(&a.id, true).await.unwrap();
    assert_eq!(
        lb.pick(&key("new"), PickIntent::Publish).await.unwrap().id,
        b.id
    );
    let hls = HlsSession {
        key: key("s1"),
        origin: a.id.clone(),
    };
    lb.put_hls("tok", &hls).await.unwrap();
    assert_eq!(lb.hls("tok").await.unwrap(), Some(hls));
    let streams: usize = lb.origins().await.unwrap().iter().map(|s| s.streams).sum();
    assert_eq!(streams, 21);
}

/// A cluster node of our own, in its own scratch directory.
fn cluster_node() -> RedisServer {
    let port = free_port();
    let dir = scratch_dir("cluster");
    let nodes = dir.join("nodes.conf");
    let port_arg = port.to_string();
    let args = [
        "--port",
        &port_arg,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--cluster-enabled",
        "yes",
        "--cluster-announce-ip",
        "127.0.0.1",
        "--cluster-config-file",
        nodes.to_str().unwrap(),
        "--dir",
        dir.to_str().unwrap(),
    ];
    RedisServer::spawn(port, &args, Some(dir.clone()))
}

#[tokio::test]
async fn works_on_a_redis_cluster() {
    // Three primaries sharing the slots: a script touching keys of another node's slot
    // fails, so this catches any key left out of the fleet's hash tag.
    let nodes = [cluster_node(), cluster_node(), cluster_node()];
    let cluster = || CustomCommand::new_static("CLUSTER", ClusterHash::Random, false);
    let mut clients = Vec::new();
    for (node, (first, last)) in
        nodes
            .iter()
            .zip([("0", "5460"), ("5461", "10922"), ("10923", "16383")])
    {
        let raw = raw_client(node).await;
        let _: () = raw
            .custom(cluster(), vec!["ADDSLOTSRANGE", first, last])
            .await
            .unwrap();
        clients.push(raw);
    }
    for node in &nodes[1..] {
        let port = node.port.to_string();
        let _: () = clients[0]
            .custom(cluster(), vec!["MEET", "127.0.0.1", &port])
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for raw in &clients {
        loop {
            let info: String = raw.custom(cluster(), vec!["INFO"]).await.unwrap();
            if info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not come up: {info}"
            );
            sleep(0.1).await;
        }
    }
    let mut cfg = redis_config(&nodes[0], "cl-");
    cfg.url = Some(format!("redis-cluster://127.0.0.1:{}", nodes[0].port));
    let lb = RedisBalancer::connect(cfg, BalancerConfig::default(), StrategyKind::Random.build())
        .await
        .unwrap();
    assert_eq!(
        lb.prefix(),
        "{cl-}",
        "one hash tag keeps every key of the fleet in one slot"
    );
    exercise(&lb).await;
}

#[tokio::test]
async fn works_behind_redis_sentinel() {
    let master = RedisServer::start();
    let port = free_port();
    let dir = scratch_dir("sentinel");
    let conf = dir.join("sentinel.conf");
    let text = format!(
        "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {} 1\n",
        dir.display(),
        master.port
    );
    std::fs::write(&conf, text).unwrap();
    let _sentinel = RedisServer::spawn(
        port,
        &[conf.to_str().unwrap(), "--sentinel"],
        Some(dir.clone()),
    );
    let mut cfg = redis_config(&master, &unique_prefix("sentinel"));
    cfg.url = Some(format!(
        "redis-sentinel://127.0.0.1:{port}/0?sentinelServiceName=mymaster"
    ));
    let lb = RedisBalancer::connect(cfg, BalancerConfig::default(), StrategyKind::Random.build())
        .await
        .unwrap();
    exercise(&lb).await;
}
