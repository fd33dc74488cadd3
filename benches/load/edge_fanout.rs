//! Edge fan-out load: N HTTP-FLV viewers of one ~700 kbit/s stream through an edge
//! (`--edge on`, pulling over RTMP from nginx-rtmp), through a plain proxy, and direct.
//! Reports, per path: CPU per viewer-second and RSS per viewer of the proxy, connections
//! the origin holds, how much of the stream each viewer got (do they keep up), and a late
//! joiner's time to its first video frame.
//!
//! nginx-rtmp serves no HTTP-FLV, so the plain proxy and the direct path use a FAKE HTTP-FLV
//! origin written here, which replays the same clip (made by ffmpeg) to every viewer at
//! its bitrate; the edge's origin is nginx-rtmp fed by ffmpeg with that clip.
//!
//! `cargo build --release -p proxy-server -p proxy-benches && target/release/edge-fanout
//!  [--viewers 500] [--seconds 20] [--kbps 700]`

#[path = "common.rs"]
mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flv_http::{FlvReader, TagKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let viewers = common::arg_num(&args, "--viewers", 500) as usize;
    let seconds = common::arg_num(&args, "--seconds", 20);
    let kbps = common::arg_num(&args, "--kbps", 700);
    let binary = common::proxy_binary(&args);
    let workdir = std::env::temp_dir().join(format!("edge-fanout-{}", std::process::id()));
    std::fs::create_dir_all(&workdir).expect("workdir");
    let clip_path = workdir.join("clip.flv");
    make_clip(&clip_path, kbps);
    let clip = Arc::new(std::fs::read(&clip_path).expect("clip"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let fake = runtime.block_on(common::fake_flv_origin(clip.clone(), kbps));

    let nginx = common::NginxRtmp::start(&workdir.join("nginx"));
    let mut publisher = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
        ])
        .arg(&clip_path)
        .args(["-c", "copy", "-f", "flv"])
        .arg(format!("rtmp://127.0.0.1:{}/live/stream", nginx.port))
        .stdin(Stdio::null())
        .spawn()
        .expect("ffmpeg is needed: apt-get install -y ffmpeg");

    std::fs::write(
        workdir.join("edge.toml"),
        format!("[[origins]]\nname = \"nginx\"\nrtmp = {}\n", nginx.port),
    )
    .expect("config");
    std::fs::write(
        workdir.join("plain.toml"),
        format!("[[origins]]\nname = \"fake\"\nhttp = {}\n", fake.port()),
    )
    .expect("config");
    let common_args = [
        "--max-connections",
        "100000",
        "--max-connections-per-ip",
        "0",
        "--health-check-interval",
        "off",
    ];
    let edge = common::ProxyProcess::start(
        &binary,
        &[
            &["--config", "edge.toml", "--edge", "on"][..],
            &common_args[..],
        ]
        .concat(),
        &workdir,
    );
    let plain = common::ProxyProcess::start(
        &binary,
        &[&["--config", "plain.toml"][..], &common_args[..]].concat(),
        &workdir,
    );
    common::sleep(Duration::from_secs(2));

    println!("HTTP-FLV edge fan-out: {viewers} viewers x {seconds} s of a {kbps} kbit/s stream");
    let expected = kbps * 1000 / 8 * seconds;
    let direct = runtime.block_on(measure(
        "direct",
        &runtime,
        None,
        fake,
        fake.port(),
        viewers,
        seconds,
        expected,
    ));
    let proxied = runtime.block_on(measure(
        "plain proxy",
        &runtime,
        Some(&plain),
        plain.addr("http"),
        fake.port(),
        viewers,
        seconds,
        expected,
    ));
    let edged = runtime.block_on(measure(
        "edge",
        &runtime,
        Some(&edge),
        edge.addr("http"),
        nginx.port,
        viewers,
        seconds,
        expected,
    ));
    println!();
    println!(
        "edge / plain proxy: CPU per viewer-second {:.3}, RSS per viewer {:.3}, origin connections {} / {}",
        edged.cpu_per_viewer_second / proxied.cpu_per_viewer_second.max(1e-12),
        edged.rss_per_viewer_kib / proxied.rss_per_viewer_kib.max(1e-12),
        edged.origin_connections,
        proxied.origin_connections,
    );
    println!(
        "late joiner first video: edge {:.1} ms, plain proxy {:.1} ms, direct {:.1} ms",
        edged.first_video_ms, proxied.first_video_ms, direct.first_video_ms
    );
    let _ = publisher.kill();
    let _ = publisher.wait();
    drop(edge);
    drop(plain);
    drop(nginx);
    let _ = std::fs::remove_dir_all(&workdir);
}

struct Figures {
    cpu_per_viewer_second: f64,
    rss_per_viewer_kib: f64,
    origin_connections: usize,
    first_video_ms: f64,
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    name: &str,
    runtime: &tokio::runtime::Runtime,
    proxy: Option<&common::ProxyProcess>,
    addr: SocketAddr,
    origin_port: u16,
    viewers: usize,
    seconds: u64,
    expected: u64,
) -> Figures {
    let rss_before = proxy.map_or(0, |p| p.rss_kib());
    let cpu_before = proxy.map_or(0.0, |p| p.cpu_seconds());
    let started = Arc::new(AtomicUsize::new(0));
    let run = runtime.spawn(run_viewers(addr, viewers, seconds, started.clone()));
    // Loaded: every viewer connected, then half the run.
    while started.load(Ordering::Relaxed) < viewers {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(seconds) / 2).await;
    let rss_loaded = proxy.map_or(0, |p| p.rss_kib());
    let origin_connections = established_to(origin_port);
    let first_video = first_video(addr).await;
    let per_viewer = run.await.expect("viewers");
    let cpu = proxy.map_or(0.0, |p| p.cpu_seconds()) - cpu_before;
    let kept_up = per_viewer
        .iter()
        .filter(|&&b| b * 10 >= expected * 9)
        .count();
    let min = per_viewer.iter().copied().min().unwrap_or(0);
    let figures = Figures {
        cpu_per_viewer_second: cpu / (viewers as f64 * seconds as f64),
        rss_per_viewer_kib: rss_loaded.saturating_sub(rss_before) as f64 / viewers as f64,
        origin_connections,
        first_video_ms: first_video.as_secs_f64() * 1000.0,
    };
    println!(
        "{name:>12}: {kept_up}/{viewers} viewers got >= 90% of the stream (least {:.0}%); \
         CPU {:.3} ms per viewer-second; RSS {:.1} KiB per viewer; origin connections {}; \
         late joiner's first video after {:.1} ms",
        min as f64 * 100.0 / expected.max(1) as f64,
        figures.cpu_per_viewer_second * 1000.0,
        figures.rss_per_viewer_kib,
        figures.origin_connections,
        figures.first_video_ms,
    );
    figures
}

/// Established TCP connections to 127.0.0.1:`port` (the origin's side of each client).
fn established_to(port: u16) -> usize {
    let needle = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1] == needle && f[3] == "01"
        })
        .count()
}

/// Time from connecting to the first video frame (not a sequence header) read.
async fn first_video(addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return Duration::MAX;
    };
    // HTTP/1.0: the body comes as it is, not in chunks.
    let request = format!("GET /live/stream.flv HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return Duration::MAX;
    }
    let mut reader = FlvReader::new();
    let mut head = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = started + Duration::from_secs(10);
    loop {
        let n = match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return Duration::MAX,
        };
        let mut data = &buf[..n];
        if head.len() < 4 || !head.windows(4).any(|w| w == b"\r\n\r\n") {
            head.extend_from_slice(data);
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let body = head[end + 4..].to_vec();
            reader.push_slice(&body);
            data = &[];
        }
        reader.push_slice(data);
        while let Ok(Some(tag)) = reader.next_tag() {
            if tag.kind == TagKind::Video && !tag.is_sequence_header() {
                return started.elapsed();
            }
        }
    }
}

async fn run_viewers(
    addr: SocketAddr,
    viewers: usize,
    seconds: u64,
    started: Arc<AtomicUsize>,
) -> Vec<u64> {
    let mut tasks = Vec::new();
    for n in 0..viewers {
        let started = started.clone();
        tasks.push(tokio::spawn(async move {
            let received = AtomicU64::new(0);
            let Ok(mut stream) = TcpStream::connect(addr).await else {
                started.fetch_add(1, Ordering::Relaxed);
                return 0;
            };
            let request =
                format!("GET /live/stream.flv?viewer={n} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            started.fetch_add(1, Ordering::Relaxed);
            if stream.write_all(request.as_bytes()).await.is_err() {
                return 0;
            }
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(n)) => {
                        received.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
            }
            received.load(Ordering::Relaxed)
        }));
        // Connect at about 500 per second, as a crowd arriving.
        if n % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap_or(0));
    }
    out
}

fn make_clip(path: &std::path::Path, kbps: u64) {
    let video = format!("{}k", kbps.saturating_sub(64).max(100));
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args([
            "-i",
            "testsrc=size=640x360:rate=25:duration=10",
            "-f",
            "lavfi",
        ])
        .args([
            "-i",
            "sine=duration=10",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args([
            "-g", "50", "-b:v", &video, "-maxrate", &video, "-bufsize", &video,
        ])
        .args(["-c:a", "aac", "-b:a", "64k", "-f", "flv"])
        .arg(path)
        .status()
        .expect("ffmpeg is needed to make the clip: apt-get install -y ffmpeg");
    assert!(status.success(), "ffmpeg failed to make the clip");
}
