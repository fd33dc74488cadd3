//! Failover time: how long a publisher whose origin dies takes to be live again on another
//! origin, through the proxy, when it simply publishes again (as an encoder with reconnect
//! does).
//!
//! Each run starts two nginx-rtmp origins and a proxy listing both statically, publishes a
//! stream with ffmpeg (real time), kills the origin that holds it (SIGKILL), waits for the
//! publisher to be cut, and publishes again at once, and again whenever a publish is
//! refused, until the proxy relays it to the other origin. Measured:
//! - baseline: from starting ffmpeg to media relayed, on a healthy fleet (first publish);
//! - recovery: from the kill to media relayed on the other origin;
//!
//! "Media relayed" is the System API listing the stream with a publisher that has sent
//! bytes, polled every 20 ms. The runs are repeated with the proxy's probes on (the
//! interval given, default the shipped 2 s) and off (recovery then relies on the reconnect's
//! failed connect marking the origin suspect).
//!
//! With `--hang` the origin is stopped (SIGSTOP) instead of killed: its kernel still
//! accepts TCP connections, but nothing answers, as with a hung process.
//!
//! `cargo build --release -p proxy-server -p proxy-benches && target/release/failover
//!  [--runs 5] [--interval-ms 2000] [--hang] [--proxy-flags "--idle-timeout 5s"] [--proxy PATH]`

#[path = "common.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A recovery slower than this is reported as failed.
const GIVE_UP: Duration = Duration::from_secs(120);
/// With `--hang`, how long the bench waits for the proxy to find the stopped origin down.
const DETECT_WITHIN: Duration = Duration::from_secs(30);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = common::arg_num(&args, "--runs", 5).max(1) as usize;
    let interval_ms = common::arg_num(&args, "--interval-ms", 2000).max(100);
    let hang = args.iter().any(|a| a == "--hang");
    let extra: Vec<String> = args
        .windows(2)
        .find(|w| w[0] == "--proxy-flags")
        .map(|w| w[1].split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let binary = common::proxy_binary(&args);
    let workdir = std::env::temp_dir().join(format!("failover-{}", std::process::id()));
    std::fs::create_dir_all(&workdir).expect("workdir");

    let how = if hang { "stop (SIGSTOP)" } else { "kill" };
    println!("Failover: {runs} runs per mode; {how} the origin holding a live RTMP publish, publish again");
    let interval = format!("{interval_ms}ms");
    for (mode, probes) in [
        (format!("probes every {interval}"), interval.as_str()),
        ("probes off".to_owned(), "off"),
    ] {
        let (mut baseline, mut recovery, mut attempts, mut failed) =
            (Vec::new(), Vec::new(), Vec::new(), 0);
        for n in 0..runs {
            match run_once(
                &binary,
                &workdir.join(format!("run{n}")),
                probes,
                hang,
                &extra,
            ) {
                Ok(r) => {
                    println!(
                        "  run {n}: {} after {:.0} ms, live again after {:.0} ms",
                        if hang { "held down" } else { "publisher cut" },
                        r.cut * 1e3,
                        r.recovery * 1e3
                    );
                    baseline.push(r.baseline);
                    recovery.push(r.recovery);
                    attempts.push(r.attempts as f64);
                }
                Err(e) => {
                    failed += 1;
                    println!("  run {n}: {e}");
                }
            }
        }
        println!("{mode}:");
        if recovery.is_empty() {
            println!("  no run recovered ({failed} failed)");
            continue;
        }
        let (b50, r50, r90) = (
            percentile(&mut baseline, 0.5),
            percentile(&mut recovery, 0.5),
            percentile(&mut recovery, 0.9),
        );
        println!(
            "  baseline (first publish, healthy fleet): median {:.0} ms; runs {}",
            b50 * 1e3,
            show(&baseline)
        );
        println!(
            "  recovery (kill -> re-published on the other origin): median {:.0} ms, p90 {:.0} ms; runs {}",
            r50 * 1e3,
            r90 * 1e3,
            show(&recovery)
        );
        println!(
            "  ratio recovery/baseline (medians): {:.2}; publish attempts per recovery: {}; failed runs: {failed}",
            r50 / b50,
            attempts
                .iter()
                .map(|a| format!("{a:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let _ = std::fs::remove_dir_all(&workdir);
}

struct Run {
    baseline: f64,
    cut: f64,
    recovery: f64,
    attempts: usize,
}

fn run_once(
    binary: &Path,
    dir: &Path,
    probes: &str,
    hang: bool,
    extra: &[String],
) -> Result<Run, String> {
    std::fs::create_dir_all(dir).expect("run dir");
    let mut origins = [
        common::NginxRtmp::start(&dir.join("nginx-a")),
        common::NginxRtmp::start(&dir.join("nginx-b")),
    ];
    std::fs::write(
        dir.join("proxy.toml"),
        format!(
            "[[origins]]\nname = \"a\"\nrtmp = {}\n[[origins]]\nname = \"b\"\nrtmp = {}\n",
            origins[0].port, origins[1].port
        ),
    )
    .expect("config");
    let mut args = vec!["--config", "proxy.toml", "--health-check-interval", probes];
    args.extend(extra.iter().map(String::as_str));
    let proxy = common::ProxyProcess::start(binary, &args, dir);
    let api = proxy.addr("system-api");
    let url = format!("rtmp://{}/live/failover", proxy.addr("rtmp"));
    let stream = "__defaultVhost__/live/failover";

    let started = Instant::now();
    let mut publisher = Publisher::start(&url);
    let first = wait_publishing(api, stream, &mut publisher, None)
        .ok_or("the first publish did not get through")?;
    let baseline = started.elapsed().as_secs_f64();

    let killed_at = Instant::now();
    let index = if first == "a" { 0 } else { 1 };
    if hang {
        origins[index].stop();
    } else {
        origins[index].kill();
    }
    let survivor = if first == "a" { "b" } else { "a" };
    // Kill: when the publisher is cut. Hang: when the proxy holds the origin down (the
    // stalled publisher's bytes still fill socket buffers, megabytes, so the proxy does not
    // see the session idle for minutes at a low bitrate); the bench then stops the
    // publisher, as an encoder's own stalled-output timeout would.
    let cut = if hang {
        while origin_alive(api, &first) != Some(false) && killed_at.elapsed() < DETECT_WITHIN {
            common::sleep(Duration::from_millis(20));
        }
        if origin_alive(api, &first) != Some(false) {
            return Err(format!(
                "the stopped origin is still alive after {DETECT_WITHIN:?}"
            ));
        }
        drop(publisher);
        killed_at.elapsed()
    } else {
        while publisher.running() {
            if killed_at.elapsed() > GIVE_UP {
                return Err("the publisher was not cut".into());
            }
            common::sleep(Duration::from_millis(5));
        }
        killed_at.elapsed()
    };

    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut again = Publisher::start(&url);
        if let Some(origin) = wait_publishing(api, stream, &mut again, Some(killed_at)) {
            if origin != survivor {
                return Err(format!("re-published on {origin}, the killed origin"));
            }
            break;
        }
        if killed_at.elapsed() > GIVE_UP {
            return Err(format!("no re-publish got through in {GIVE_UP:?}"));
        }
        common::sleep(Duration::from_millis(100));
    }
    Ok(Run {
        baseline,
        cut: cut.as_secs_f64(),
        recovery: killed_at.elapsed().as_secs_f64(),
        attempts,
    })
}

/// Whether the System API lists origin `id` as alive.
fn origin_alive(api: SocketAddr, id: &str) -> Option<bool> {
    let body = get(api, "/api/v1/servers")?;
    let json: serde_json::Value = serde_json::from_slice(&body).ok()?;
    json["data"]
        .as_array()?
        .iter()
        .find(|s| s["id"] == id)
        .and_then(|s| s["alive"].as_bool())
}

/// Polls until `stream` has a publisher through the proxy that has sent media; its origin.
/// `None` when the publisher exits first (refused) or after [`GIVE_UP`].
fn wait_publishing(
    api: SocketAddr,
    stream: &str,
    publisher: &mut Publisher,
    since: Option<Instant>,
) -> Option<String> {
    let since = since.unwrap_or_else(Instant::now);
    while since.elapsed() < GIVE_UP {
        if let Some(origin) = publishing_on(api, stream) {
            return Some(origin);
        }
        if !publisher.running() {
            return None;
        }
        common::sleep(Duration::from_millis(20));
    }
    None
}

fn publishing_on(api: SocketAddr, stream: &str) -> Option<String> {
    let body = get(api, "/api/v1/streams")?;
    let json: serde_json::Value = serde_json::from_slice(&body).ok()?;
    json["data"]
        .as_array()?
        .iter()
        .find(|s| {
            s["stream"] == stream
                && s["sessions"]["publishers"] == 1
                && s["sessions"]["bytes_to_origin"].as_u64() > Some(0)
        })
        .and_then(|s| s["origin"].as_str().map(str::to_owned))
}

/// A GET over HTTP/1.1 with `Connection: close`; the body, if the answer is 200.
fn get(addr: SocketAddr, path: &str) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    raw.starts_with(b"HTTP/1.1 200")
        .then(|| raw[split + 4..].to_vec())
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn show(v: &[f64]) -> String {
    v.iter()
        .map(|s| format!("{:.0}", s * 1e3))
        .collect::<Vec<_>>()
        .join(" ")
}

/// ffmpeg publishing a generated clip in real time; killed on drop.
struct Publisher(Child);

impl Publisher {
    fn start(url: &str) -> Self {
        let child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
            ])
            .args([
                "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
            ])
            .args(["-f", "flv", url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg is needed: apt-get install -y ffmpeg");
        Publisher(child)
    }

    fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
