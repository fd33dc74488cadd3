//! HTTP-FLV fan-out load: one stream, many concurrent viewers, straight to the origin and
//! then through the proxy and through HAProxy in `mode tcp` (the floor), in one run. Reports
//! CPU (% of a core, per MB) and RSS (average, peak) of the proxy and of HAProxy, their
//! ratios, and the throughput ratios to direct. Each relay's CPU while idle (during the
//! direct run) is reported too, and the CPU ratio without it: the proxy's timers, health
//! probes and other listeners cost it something whatever the viewers do. The proxy probes
//! its (HTTP-only) origin with a TCP connect every 2 s by default, so HAProxy's backend is
//! given the same `check inter 2s` (see `common::Haproxy`): both relays do that work.
//!
//! The origin is a FAKE, written here: it replays an FLV clip (made by ffmpeg) to every
//! viewer at a fixed bitrate, because no packaged program serves one HTTP-FLV stream to
//! many clients (ffmpeg's `-listen 1` serves one).
//!
//! `cargo build --release -p proxy-server -p proxy-benches && target/release/flv-fanout
//!  [--viewers 20] [--seconds 10] [--kbps 2000]`

#[path = "common.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let viewers = common::arg_num(&args, "--viewers", 20) as usize;
    let seconds = common::arg_num(&args, "--seconds", 10);
    let kbps = common::arg_num(&args, "--kbps", 2000);
    let binary = common::proxy_binary(&args);
    let clip = make_clip();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let origin = runtime.block_on(common::fake_flv_origin(clip, kbps));

    let workdir = std::env::temp_dir().join(format!("flv-fanout-{}", std::process::id()));
    std::fs::create_dir_all(&workdir).expect("workdir");
    std::fs::write(
        workdir.join("proxy.toml"),
        format!("[[origins]]\nname = \"fake\"\nhttp = {}\n", origin.port()),
    )
    .expect("config");
    let proxy = common::ProxyProcess::start(
        &binary,
        &["--config", "proxy.toml", "--max-connections", "100000"],
        &workdir,
    );
    let proxied_addr = proxy.addr("http");
    let haproxy = common::Haproxy::start(&workdir.join("haproxy"), origin.port());
    let haproxied_addr: SocketAddr = ([127, 0, 0, 1], haproxy.port).into();

    println!("HTTP-FLV fan-out: {viewers} viewers x {seconds} s at {kbps} kbit/s each");
    // Both relays sit idle while the viewers play direct: what each spends with no viewer
    // (timers, health probes, other listeners) over the same time.
    let idle_before = (
        common::cpu_seconds(proxy.child.id()),
        common::cpu_seconds(haproxy.child.id()),
    );
    let direct = runtime.block_on(run_viewers(origin, viewers, seconds));
    let idle_cpu = (
        common::cpu_seconds(proxy.child.id()) - idle_before.0,
        common::cpu_seconds(haproxy.child.id()) - idle_before.1,
    );
    let proxied = measure(&runtime, proxied_addr, viewers, seconds, proxy.child.id());
    let haproxied = measure(
        &runtime,
        haproxied_addr,
        viewers,
        seconds,
        haproxy.child.id(),
    );

    println!(
        "direct : {:>8.1} MB received, {} viewers finished",
        direct.bytes as f64 / 1e6,
        direct.finished
    );
    for (name, m) in [("proxy", &proxied), ("haproxy", &haproxied)] {
        let mb = m.outcome.bytes as f64 / 1e6;
        println!(
            "{name:<8}: {mb:>8.1} MB received, {} viewers finished, throughput ratio to direct {:.3}",
            m.outcome.finished,
            m.outcome.bytes as f64 / direct.bytes.max(1) as f64
        );
        println!(
            "{name:<8}: CPU {:.3} s = {:.2} % of a core, {:.4} ms per MB; RSS {} KiB idle, {:.0} KiB average, {} KiB peak with {viewers} viewers",
            m.cpu,
            m.cpu * 100.0 / seconds as f64,
            m.cpu * 1000.0 / mb.max(1e-9),
            m.rss_idle,
            m.rss_average,
            m.rss_peak,
        );
    }
    println!(
        "idle (no viewers, same {seconds} s): proxy CPU {:.3} s, haproxy CPU {:.3} s",
        idle_cpu.0, idle_cpu.1
    );
    println!(
        "ratios proxy/haproxy: CPU {:.2}, average RSS {:.2}; CPU less each one's idle {:.2}",
        proxied.cpu / haproxied.cpu.max(1e-9),
        proxied.rss_average / haproxied.rss_average.max(1.0),
        (proxied.cpu - idle_cpu.0) / (haproxied.cpu - idle_cpu.1).max(1e-9)
    );
    let _ = std::fs::remove_dir_all(&workdir);
    drop(proxy);
    drop(haproxy);
}

/// One relay's figures over a run of the viewers through it.
struct Measured {
    outcome: Outcome,
    cpu: f64,
    rss_idle: u64,
    rss_average: f64,
    rss_peak: u64,
}

fn measure(
    runtime: &tokio::runtime::Runtime,
    addr: SocketAddr,
    viewers: usize,
    seconds: u64,
    pid: u32,
) -> Measured {
    let rss_idle = common::rss_kib(pid);
    let cpu_before = common::cpu_seconds(pid);
    let run = runtime.spawn(run_viewers(addr, viewers, seconds));
    // Sampled every 250 ms while the viewers run.
    let mut samples = Vec::new();
    while !run.is_finished() {
        common::sleep(Duration::from_millis(250));
        samples.push(common::rss_kib(pid));
    }
    let outcome = runtime.block_on(run).expect("viewers");
    let cpu = common::cpu_seconds(pid) - cpu_before;
    Measured {
        outcome,
        cpu,
        rss_idle,
        rss_average: samples.iter().sum::<u64>() as f64 / samples.len().max(1) as f64,
        rss_peak: samples.iter().copied().max().unwrap_or(0),
    }
}

struct Outcome {
    bytes: u64,
    finished: usize,
}

async fn run_viewers(addr: SocketAddr, viewers: usize, seconds: u64) -> Outcome {
    let total = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for n in 0..viewers {
        let total = total.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(mut stream) = TcpStream::connect(addr).await else {
                return false;
            };
            let request =
                format!("GET /live/stream.flv?viewer={n} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            if stream.write_all(request.as_bytes()).await.is_err() {
                return false;
            }
            let mut buf = vec![0u8; 64 * 1024];
            while Instant::now() < deadline {
                match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return false,
                    Ok(Ok(n)) => {
                        total.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(_) => break,
                }
            }
            true
        }));
    }
    let mut finished = 0;
    for t in tasks {
        if t.await.unwrap_or(false) {
            finished += 1;
        }
    }
    Outcome {
        bytes: total.load(Ordering::Relaxed),
        finished,
    }
}

fn make_clip() -> Arc<Vec<u8>> {
    let path = std::env::temp_dir().join(format!("flv-fanout-{}.flv", std::process::id()));
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x360:rate=25:duration=10",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=duration=10",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-b:v",
            "1500k",
            "-c:a",
            "aac",
            "-f",
            "flv",
        ])
        .arg(&path)
        .status()
        .expect("ffmpeg is needed to make the clip: apt-get install -y ffmpeg");
    assert!(status.success(), "ffmpeg failed to make the clip");
    let bytes = std::fs::read(&path).expect("clip");
    let _ = std::fs::remove_file(&path);
    Arc::new(bytes)
}
