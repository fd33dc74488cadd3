//! Pick latency and picks per second: the memory balancer vs the Redis balancer (a real
//! redis-server started here on a free loopback port), in one run.
//!
//! Two workloads per balancer: picks of streams already placed (the common case: every
//! viewer, every playlist reload) and first picks of new streams.
//!
//! `cargo build --release -p proxy-benches --bin pick-latency && target/release/pick-latency [--picks 20000] [--tasks 16]`

#[path = "common.rs"]
mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lb_core::{Balancer, BalancerConfig, PickIntent, Registration, StrategyKind, StreamKey};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let picks = common::arg_num(&args, "--picks", 20_000) as usize;
    let tasks = common::arg_num(&args, "--tasks", 16) as usize;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut redis = Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is needed: apt-get install -y redis-server");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let memory: Arc<dyn Balancer> = Arc::new(lb_memory::MemoryBalancer::new(BalancerConfig::default(), StrategyKind::Random.build()));
        let redis_cfg = lb_redis::RedisBalancerConfig { port, ..Default::default() };
        let redis_lb: Arc<dyn Balancer> = Arc::new(
            lb_redis::RedisBalancer::connect(redis_cfg, BalancerConfig::default(), StrategyKind::Random.build()).await.expect("connect to redis"),
        );
        println!("pick latency: {picks} picks per workload, {tasks} concurrent tasks");
        let mut results = Vec::new();
        for (name, lb) in [("memory", memory), ("redis", redis_lb)] {
            for n in 0..4 {
                let body = format!(r#"{{"ip":"127.0.0.1","server":"o{n}","service":"s","pid":"1","rtmp":["1935"]}}"#);
                lb.register(Registration::from_json(body.as_bytes()).unwrap().into_origin().unwrap()).await.unwrap();
            }
            let new = run(&lb, picks, tasks, "new").await;
            let placed = run(&lb, picks, tasks, "new").await; // the same keys again: all placed now
            println!("{name:>6}: first picks {:>9.0}/s  p50 {:>7.1} µs  p99 {:>7.1} µs | placed picks {:>9.0}/s  p50 {:>7.1} µs  p99 {:>7.1} µs",
                new.rate, new.p50, new.p99, placed.rate, placed.p50, placed.p99);
            results.push((new, placed));
        }
        let (m, r) = (&results[0], &results[1]);
        println!("ratio redis/memory (placed picks): rate {:.4}, p50 latency {:.1}x", r.1.rate / m.1.rate, r.1.p50 / m.1.p50);
        println!("ratio redis/memory (first picks):  rate {:.4}, p50 latency {:.1}x", r.0.rate / m.0.rate, r.0.p50 / m.0.p50);
    });
    let _ = redis.kill();
    let _ = redis.wait();
}

struct Figures {
    rate: f64,
    p50: f64,
    p99: f64,
}

async fn run(lb: &Arc<dyn Balancer>, picks: usize, tasks: usize, prefix: &str) -> Figures {
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let lb = lb.clone();
        let prefix = prefix.to_owned();
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(picks / tasks + 1);
            for n in (t..picks).step_by(tasks) {
                let key = StreamKey::new(None, "live", &format!("{prefix}{n}")).unwrap();
                let t0 = Instant::now();
                lb.pick(&key, PickIntent::Play).await.expect("pick");
                lat.push(t0.elapsed().as_secs_f64() * 1e6);
            }
            lat
        }));
    }
    let mut all = Vec::with_capacity(picks);
    for h in handles {
        all.extend(h.await.expect("task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Figures {
        rate: all.len() as f64 / elapsed,
        p50: at(0.5),
        p99: at(0.99),
    }
}
