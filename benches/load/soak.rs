//! Soak: many concurrent sessions across protocols for minutes, clients connecting, staying
//! a few seconds and leaving, over and over, optionally next to hostile clients. Reports
//! the proxy's memory and open descriptors after warm-up, periodically and at the end (and
//! again once every session has expired), sessions completed and errors per protocol, and
//! the client sessions the proxy's API lists (its live-session registry) at each sample and
//! after the quiet.
//!
//! Virtual clients, spread evenly over six kinds, each in a loop (connect, stay 2-8 s, leave,
//! pause up to 1 s):
//! - RTMP publishers and RTMP players, built on rtmp-peek's client session, through the
//!   proxy to a real nginx-rtmp origin (publishers send small video messages every 40 ms,
//!   players play the publishers' streams);
//! - SRT publishers, built on srt-streamid's handshake codec (induction, conclusion with
//!   ffmpeg's captured HSREQ and a streamid, then 1316-byte data packets every 20 ms that the
//!   origin echoes back; every other session ends with a SHUTDOWN, the rest just go
//!   silent), against a FAKE SRT listener written here on the same codec;
//! - HTTP-FLV viewers, HLS players (playlist, then a segment through the rewritten URI,
//!   every second) and WebRTC clients (WHIP offer through the proxy's HTTP API, a signed
//!   STUN check, then 1200-byte datagrams every 20 ms that the origin echoes back) against a
//!   FAKE origin written here: one HTTP server for FLV, HLS and WHIP, and one UDP socket for
//!   media. No packaged program serves many HTTP-FLV viewers, or HLS without a live
//!   encoder, or answers WHIP without a browser-grade WebRTC stack, and srt-live-transmit
//!   serves one caller at a time.
//!
//! A WebRTC or SRT session whose echoes stop more than a second before it ends counts as
//! an error (the proxy dropped it mid-way), as does any other session the proxy ends early.
//!
//! `--hostile N` adds N hostile clients (hostile.rs): each in a loop picks a random attack
//! on one of the proxy's ports (silent and garbage connections, RTMP and HTTP heads that
//! never end or declare huge sizes, keep-alive hoarding of the System API, plays of missing
//! streams, forged WHIP DELETE/PATCH, FLV viewers that stop reading, spoofed
//! X-Forwarded-For, random datagrams, bad STUN, bad SRT handshakes, small-datagram floods),
//! all together at most `--hostile-rate` operations a second (default 200), from
//! 127.0.0.10-17. `--seed S` replays the random choices (the seed is printed), `--attacks
//! a,b` runs only those (`--attacks -a,-b`: all but those). The end prints, per attack,
//! what the proxy did (answered, closed after how long, held, silent).
//!
//! `cargo build --release -p proxy-server -p proxy-benches && target/release/soak
//!  [--seconds 300] [--clients 120] [--every 30] [--warmup 20] [--proxy PATH]
//!  [--hostile 0] [--hostile-rate 200] [--seed S] [--attacks all]`
//!
//! Each sample row: the proxy's RSS and open descriptors (entries of /proc/PID/fd), the
//! real sessions open per kind, real sessions completed and lost (errors and refusals),
//! client sessions the API lists, hostile operations so far, and `nx-*` streams listed.
//!
//! Verdict: the last line is PASS or FAIL, and the exit status 0 or 1. FAIL if any real
//! session ended in an error or was refused, if the proxy's RSS or open descriptor count
//! at the end (once the clients stopped) or after the quiet exceeds 1.5 times its value
//! after the warm-up, or if it still lists a stream that does not exist (`nx-*`, asked
//! for by hostiles only) after the quiet.
//!
//! The proxy runs with a 15 s session TTL and tentative-placement TTL and a 10 s idle
//! timeout, so that what the clients leave behind expires within the quiet period; the
//! Prometheus series count is printed too (labels minted per session would grow it).

#[path = "common.rs"]
mod common;
#[path = "hostile.rs"]
mod hostile;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtmp_peek::{ClientConfig, ClientEvent, ClientSession, Message, OriginRequest, StreamKind};
use srt_streamid::extension::{encode_text, push_extension};
use srt_streamid::handshake::ext_flags;
use srt_streamid::packet::control_type;
use srt_streamid::{
    dest_socket_id, set_dest_socket_id, ControlHeader, DataHeader, ExtensionType, Extensions,
    Handshake, HandshakeType, KeyFlags, Listener, Packet, PacketPosition, PeerIp, SynCookies,
};
use stun_ufrag::{sdp, BindingRequest, IceRole, IntegrityKey, TransactionId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const KINDS: [&str; 6] = [
    "rtmp-publish",
    "rtmp-play",
    "http-flv",
    "hls",
    "webrtc",
    "srt",
];
const PWD: &str = "soak-fake-origin-password";
const SEGMENT_LEN: usize = 188 * 64;
/// Proxy timeouts shortened so that sessions left behind expire within the quiet period.
const SESSION_TTL_S: u64 = 15;
const IDLE_TIMEOUT_S: u64 = 10;
/// End values above this multiple of the post-warm-up ones fail the run.
const GROWTH_LIMIT: f64 = 1.5;
/// WHIP answers the FAKE origin has given; its ufrags are `fake<n>` (hostiles guess them).
static WHIP_ANSWERS: AtomicU64 = AtomicU64::new(0);

/// Per-kind counters.
#[derive(Default)]
struct Stats {
    completed: [AtomicU64; 6],
    errors: [AtomicU64; 6],
    refused: [AtomicU64; 6],
    active: [AtomicU64; 6],
    last_error: [Mutex<Option<String>>; 6],
    /// When sessions ended in an error (seconds since the start) and of which kind.
    lost_at: Mutex<Vec<(f64, usize)>>,
}

enum Ending {
    Done,
    Refused,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = common::arg_num(&args, "--seconds", 300);
    let clients = common::arg_num(&args, "--clients", 120).max(6) as usize;
    let every = common::arg_num(&args, "--every", 30).max(1);
    let warmup = common::arg_num(&args, "--warmup", 20);
    let hostiles = common::arg_num(&args, "--hostile", 0) as usize;
    let hostile_rate = common::arg_num(&args, "--hostile-rate", 200).max(1);
    let seed = common::arg_num(&args, "--seed", fastrand::u64(..));
    let attacks = hostile::Attack::parse_list(arg_str(&args, "--attacks").unwrap_or("all"))
        .unwrap_or_else(|e| panic!("--attacks: {e}"));
    let binary = common::proxy_binary(&args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The hostiles get a runtime of their own, so that they cannot delay the real clients
    // on this side and pass that off as the proxy's doing.
    let hostile_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");

    let workdir = std::env::temp_dir().join(format!("soak-{}", std::process::id()));
    std::fs::create_dir_all(&workdir).expect("workdir");
    let nginx = common::NginxRtmp::start(&workdir.join("nginx"));
    let (http_port, media_port) = runtime.block_on(start_fake_origin());
    let srt_port = runtime.block_on(start_fake_srt_origin());
    std::fs::write(
        workdir.join("proxy.toml"),
        format!(
            "[[origins]]\nname = \"soak\"\nrtmp = {}\nhttp = {http_port}\napi = {http_port}\nrtc = {media_port}\nsrt = {srt_port}\n",
            nginx.port
        ),
    )
    .expect("config");
    let (ttl, idle) = (format!("{SESSION_TTL_S}s"), format!("{IDLE_TIMEOUT_S}s"));
    let proxy = common::ProxyProcess::start(
        &binary,
        &[
            "--config",
            "proxy.toml",
            "--max-connections-per-ip",
            "0",
            "--session-ttl",
            &ttl,
            "--idle-timeout",
            &idle,
            "--tentative-ttl",
            &ttl,
        ],
        &workdir,
    );
    let addrs = Addrs {
        rtmp: proxy.addr("rtmp"),
        http: proxy.addr("http"),
        http_api: proxy.addr("http-api"),
        webrtc: proxy.addr("webrtc"),
        srt: proxy.addr("srt"),
    };
    let api = proxy.addr("system-api");
    let pid = proxy.child.id();

    println!(
        "Soak: {clients} virtual clients ({} per kind: {}) for {seconds} s, each connecting, staying 2-8 s, leaving",
        clients / 6,
        KINDS.join(", ")
    );
    let stats = Arc::new(Stats::default());
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let publishers = clients.div_ceil(6);
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let times = (start, end);
            runtime.spawn(virtual_client(i, publishers, addrs, times, stats.clone()))
        })
        .collect();
    let pauses = Arc::new(Mutex::new(Vec::new()));
    runtime.spawn(watch_pauses(start, pauses.clone()));
    let targets = hostile::Targets {
        rtmp: addrs.rtmp,
        http: addrs.http,
        http_api: addrs.http_api,
        system_api: api,
        webrtc: addrs.webrtc,
        srt: addrs.srt,
    };
    let names: Vec<&str> = attacks.iter().map(|a| a.name()).collect();
    let hostile = hostile::Hostiles::new(targets, attacks, hostile_rate, &WHIP_ANSWERS);
    if hostiles > 0 {
        println!(
            "and {hostiles} hostile clients, at most {hostile_rate} operations/s in all, seed {seed} (--seed {seed} replays), attacks: {}",
            names.join(", ")
        );
    }
    let hostile_tasks: Vec<_> = (0..hostiles)
        .map(|i| hostile_runtime.spawn(hostile.clone().client(i, seed, end)))
        .collect();

    println!(
        "{:>6} {:>10} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>10} {:>7} {:>7} {:>8} {:>9}",
        "t (s)",
        "RSS (KiB)",
        "fds",
        "pub",
        "play",
        "flv",
        "hls",
        "rtc",
        "srt",
        "completed",
        "errors",
        "listed",
        "hostile",
        "nx listed"
    );
    let row = |label: &str, sample: Sample| {
        let (listed, odd) = match runtime.block_on(listed_sessions(api)) {
            Some((clients, odd)) => (clients.to_string(), odd.to_string()),
            None => ("?".to_owned(), "?".to_owned()),
        };
        let active: Vec<String> = (0..6)
            .map(|k| stats.active[k].load(Ordering::Relaxed).to_string())
            .collect();
        let sum = |c: &[AtomicU64; 6]| c.iter().map(|a| a.load(Ordering::Relaxed)).sum::<u64>();
        println!(
            "{label:>6} {:>10} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>10} {:>7} {listed:>7} {:>8} {odd:>9}",
            sample.rss,
            sample.fds,
            active[0],
            active[1],
            active[2],
            active[3],
            active[4],
            active[5],
            sum(&stats.completed),
            sum(&stats.errors) + sum(&stats.refused),
            hostile.ops(),
        );
    };
    let warm = start + Duration::from_secs(warmup.min(seconds));
    sleep_until(warm);
    let first = Sample::of(&proxy, pid);
    let series_start = runtime.block_on(metric_series(api));
    row(&format!("{warmup}"), first);
    let mut samples = vec![first];
    let mut next = warm + Duration::from_secs(every);
    while next < end {
        sleep_until(next);
        let sample = Sample::of(&proxy, pid);
        samples.push(sample);
        row(&format!("{}", next.duration_since(start).as_secs()), sample);
        next += Duration::from_secs(every);
    }
    sleep_until(end);
    for t in tasks {
        let _ = runtime.block_on(t);
    }
    for t in hostile_tasks {
        let _ = hostile_runtime.block_on(t);
    }
    let last = Sample::of(&proxy, pid);
    samples.push(last);
    row(&format!("{}", start.elapsed().as_secs()), last);
    // Every session left; wait for the proxy's timers to forget them.
    let quiet = SESSION_TTL_S.max(IDLE_TIMEOUT_S) + 10;
    common::sleep(Duration::from_secs(quiet));
    let settled = Sample::of(&proxy, pid);
    row(&format!("+{quiet}"), settled);
    let listed = runtime.block_on(listed_sessions(api));
    let series_end = runtime.block_on(metric_series(api));

    println!();
    if hostiles > 0 {
        println!(
            "Hostile clients: {hostiles}, {} operations, seed {seed}",
            hostile.ops()
        );
        hostile.print_report();
        println!();
    }
    println!(
        "Real clients{}:",
        if hostiles > 0 {
            " (next to the hostiles)"
        } else {
            ""
        }
    );
    println!(
        "{:<14} {:>10} {:>8} {:>8}  last error",
        "protocol", "sessions", "errors", "refused"
    );
    let mut lost = 0;
    for (k, kind) in KINDS.iter().enumerate() {
        let errors = stats.errors[k].load(Ordering::Relaxed);
        let refused = stats.refused[k].load(Ordering::Relaxed);
        lost += errors + refused;
        println!(
            "{kind:<14} {:>10} {errors:>8} {refused:>8}  {}",
            stats.completed[k].load(Ordering::Relaxed),
            stats.last_error[k]
                .lock()
                .unwrap()
                .as_deref()
                .unwrap_or("-")
        );
    }
    let lost_at = stats.lost_at.lock().unwrap();
    if !lost_at.is_empty() {
        let when: Vec<String> = lost_at
            .iter()
            .map(|(t, k)| format!("{t:.1} ({})", KINDS[*k]))
            .collect();
        println!("lost sessions ended at t = {}", when.join(", "));
    }
    let pauses = pauses.lock().unwrap();
    let when: Vec<String> = pauses
        .iter()
        .map(|(t, late)| format!("{t:.1} ({late:.1} s)"))
        .collect();
    println!(
        "the bench's own runtime stalled over {PAUSE_NOTED:?} at t = {} (a stall there delays echoes without the proxy's doing)",
        if when.is_empty() { "never".to_owned() } else { when.join(", ") }
    );
    println!();
    let mut failures = Vec::new();
    if lost > 0 {
        failures.push(format!("{lost} real sessions lost (errors or refusals)"));
    }
    for (what, unit, of) in [
        ("RSS", " KiB", (|s: &Sample| s.rss) as fn(&Sample) -> u64),
        ("open descriptors", "", |s: &Sample| s.fds),
    ] {
        let (start_v, end_v, settled_v) = (of(&first), of(&last), of(&settled));
        let peak = samples.iter().map(of).max().unwrap_or(0);
        let ratio = |x: u64| x as f64 / start_v.max(1) as f64;
        println!(
            "proxy {what}: start {start_v}{unit} (after {warmup} s warm-up), peak {peak}, end {end_v}, after {quiet} s quiet {settled_v}; end/start {:.3} ({:+}), settled/start {:.3} ({:+})",
            ratio(end_v),
            end_v as i64 - start_v as i64,
            ratio(settled_v),
            settled_v as i64 - start_v as i64
        );
        if ratio(end_v.max(settled_v)) > GROWTH_LIMIT {
            failures.push(format!(
                "{what} grew to {:.2}x its post-warm-up value (limit {GROWTH_LIMIT}x)",
                ratio(end_v.max(settled_v))
            ));
        }
    }
    if let Some((_, odd @ 1..)) = listed {
        failures.push(format!(
            "{odd} streams that do not exist (nx-*) still listed after the quiet"
        ));
    }
    match listed {
        Some((n, odd)) => println!(
            "client sessions the proxy still lists after the quiet: {n}; streams that do not exist (nx-*) it lists: {odd}"
        ),
        None => println!("client sessions the proxy still lists after the quiet: (API unreadable)"),
    }
    if listed.is_some_and(|(_, odd)| odd > 0) {
        for line in runtime.block_on(missing_streams(api)) {
            println!("  {line}");
        }
    }
    let show = |n: Option<usize>| n.map_or("?".to_owned(), |n| n.to_string());
    println!(
        "Prometheus series on /metrics: {} after warm-up, {} after the quiet",
        show(series_start),
        show(series_end)
    );
    if first.rss > 0
        && last.rss as f64 / first.rss as f64 > 1.25
        && last.rss.saturating_sub(first.rss) > 16 * 1024
    {
        println!("FINDING: memory grew beyond 25% and 16 MiB over the run");
    }
    drop(proxy);
    drop(nginx);
    let _ = std::fs::remove_dir_all(&workdir);
    hostile_runtime.shutdown_background();
    if failures.is_empty() {
        println!("PASS: no real session lost; RSS and descriptors within {GROWTH_LIMIT}x of their post-warm-up values");
    } else {
        println!("FAIL: {}", failures.join("; "));
        std::process::exit(1);
    }
}

/// Stalls of the real clients' runtime at least this long are noted.
const PAUSE_NOTED: Duration = Duration::from_millis(300);

/// Notes when the real clients' runtime could not run a task for [`PAUSE_NOTED`] or more
/// (a loaded machine): an echo gap of that length is then the bench's, not the proxy's.
async fn watch_pauses(start: Instant, pauses: Arc<Mutex<Vec<(f64, f64)>>>) {
    let tick = Duration::from_millis(50);
    loop {
        let before = Instant::now();
        tokio::time::sleep(tick).await;
        let late = before.elapsed().saturating_sub(tick);
        if late >= PAUSE_NOTED {
            let at = start.elapsed().as_secs_f64();
            pauses.lock().unwrap().push((at, late.as_secs_f64()));
        }
    }
}

/// The proxy's resident memory and open descriptors at one moment.
#[derive(Clone, Copy)]
struct Sample {
    rss: u64,
    fds: u64,
}

impl Sample {
    fn of(proxy: &common::ProxyProcess, pid: u32) -> Sample {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
        Sample {
            rss: proxy.rss_kib(),
            fds,
        }
    }
}

/// `--NAME VALUE` as text.
fn arg_str<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.windows(2)
        .find(|w| w[0] == name)
        .map(|w| w[1].as_str())
}

fn sleep_until(t: Instant) {
    if let Some(d) = t.checked_duration_since(Instant::now()) {
        common::sleep(d);
    }
}

#[derive(Clone, Copy)]
struct Addrs {
    rtmp: SocketAddr,
    http: SocketAddr,
    http_api: SocketAddr,
    webrtc: SocketAddr,
    srt: SocketAddr,
}

/// xorshift64: stay lengths and pauses, reproducible per client.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

async fn virtual_client(
    i: usize,
    publishers: usize,
    addrs: Addrs,
    (start, end): (Instant, Instant),
    stats: Arc<Stats>,
) {
    let kind = i % 6;
    let slot = i / 6;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1).wrapping_mul(0x2545_F491));
    let mut round = 0u64;
    // Spread the first connections over the first seconds.
    tokio::time::sleep(Duration::from_millis(rng.below(3000))).await;
    while Instant::now() + Duration::from_secs(2) < end {
        let stay = Duration::from_millis(2000 + rng.below(6000));
        let stay = stay.min(end.saturating_duration_since(Instant::now()));
        stats.active[kind].fetch_add(1, Ordering::Relaxed);
        let session = async {
            match kind {
                0 => rtmp(addrs.rtmp, StreamKind::Publish, &format!("p{slot}"), stay).await,
                1 => {
                    let stream = format!("p{}", slot % publishers);
                    rtmp(addrs.rtmp, StreamKind::Play, &stream, stay).await
                }
                2 => flv(addrs.http, slot, stay).await,
                3 => hls(addrs.http, slot, stay).await,
                4 => webrtc(addrs, i, round, stay).await,
                _ => srt(addrs.srt, i, round, stay).await,
            }
        };
        let result = tokio::time::timeout(stay + Duration::from_secs(20), session)
            .await
            .unwrap_or_else(|_| Err("session hung".into()));
        stats.active[kind].fetch_sub(1, Ordering::Relaxed);
        match result {
            Ok(Ending::Done) => stats.completed[kind].fetch_add(1, Ordering::Relaxed),
            Ok(Ending::Refused) => stats.refused[kind].fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                *stats.last_error[kind].lock().unwrap() = Some(e);
                let at = start.elapsed().as_secs_f64();
                stats.lost_at.lock().unwrap().push((at, kind));
                stats.errors[kind].fetch_add(1, Ordering::Relaxed)
            }
        };
        round += 1;
        tokio::time::sleep(Duration::from_millis(rng.below(1000))).await;
    }
}

type Outcome = Result<Ending, String>;

fn err(what: &'static str) -> impl Fn(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

/// Reads with a generous timeout; a close is an error (the proxy must not end a session
/// the client still wants).
async fn read_some(
    sock: &mut TcpStream,
    buf: &mut [u8],
    what: &'static str,
) -> Result<usize, String> {
    match tokio::time::timeout(Duration::from_secs(10), sock.read(buf)).await {
        Err(_) => Err(format!("{what}: nothing for 10 s")),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Ok(Ok(0)) => Err(format!("{what}: closed by the proxy")),
        Ok(Ok(n)) => Ok(n),
    }
}

/// One RTMP publisher or player: setup through rtmp-peek's client session, then media for
/// `stay` (publisher: a 1 KiB video message every 40 ms; player: whatever comes), then an
/// abrupt close.
async fn rtmp(addr: SocketAddr, kind: StreamKind, stream: &str, stay: Duration) -> Outcome {
    let mut sock = TcpStream::connect(addr).await.map_err(err("connect"))?;
    let tc_url = format!("rtmp://{addr}/live");
    let request = OriginRequest::new(kind, "live", &tc_url, stream).map_err(|e| e.to_string())?;
    let mut session =
        ClientSession::new(request, ClientConfig::default()).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 64 * 1024];
    'setup: loop {
        let out = session.take_output();
        sock.write_all(&out).await.map_err(err("setup write"))?;
        while let Some(event) = session.poll_event() {
            match event {
                ClientEvent::Accepted { .. } => break 'setup,
                ClientEvent::Rejected { .. } => return Ok(Ending::Refused),
                _ => {}
            }
        }
        let n = read_some(&mut sock, &mut buf, "setup").await?;
        session.feed(&buf[..n]).map_err(|e| format!("setup: {e}"))?;
    }
    let mut leg = session.into_leg();
    let payload = Bytes::from({
        let mut p = vec![0u8; 1024];
        p[..2].copy_from_slice(&[0x17, 0x01]);
        p
    });
    let deadline = tokio::time::Instant::now() + stay;
    let mut tick = tokio::time::interval(Duration::from_millis(40));
    let mut timestamp = 0u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return Ok(Ending::Done),
            _ = tick.tick(), if kind == StreamKind::Publish => {
                let msg = Message::new(6, 9, leg.stream_id(), timestamp, payload.clone());
                leg.send(&msg).map_err(|e| e.to_string())?;
                timestamp += 40;
            }
            read = sock.read(&mut buf) => match read {
                Ok(0) => return Err("closed by the proxy mid-session".into()),
                Ok(n) => {
                    leg.feed(&buf[..n]);
                    while leg.next_message().map_err(|e| e.to_string())?.is_some() {}
                }
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        let out = leg.take_output();
        if !out.is_empty() {
            sock.write_all(&out).await.map_err(err("write"))?;
        }
    }
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> Result<TcpStream, String> {
    let mut sock = TcpStream::connect(addr).await.map_err(err("connect"))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(head.as_bytes())
        .await
        .map_err(err("request"))?;
    Ok(sock)
}

/// A whole HTTP/1.1 exchange: status and body.
async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, Vec<u8>), String> {
    let mut sock = request(addr, method, path, body).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut raw))
        .await
        .map_err(|_| format!("{path}: no complete answer in 10 s"))?
        .map_err(err("response"))?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("{path}: no HTTP head"))?;
    let status = String::from_utf8_lossy(&raw[..end])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, raw[end + 4..].to_vec()))
}

/// One HTTP-FLV viewer: the stream for `stay`, then a close.
async fn flv(addr: SocketAddr, slot: usize, stay: Duration) -> Outcome {
    let mut sock = request(addr, "GET", &format!("/live/f{slot}.flv"), "").await?;
    let mut buf = vec![0u8; 64 * 1024];
    let n = read_some(&mut sock, &mut buf, "flv head").await?;
    if !buf[..n].starts_with(b"HTTP/1.1 200") {
        let line = String::from_utf8_lossy(&buf[..n.min(40)]).into_owned();
        return Err(format!("flv: {line}"));
    }
    let deadline = Instant::now() + stay;
    while Instant::now() < deadline {
        read_some(&mut sock, &mut buf, "flv body").await?;
    }
    Ok(Ending::Done)
}

/// One HLS player: every second the playlist (with the affinity token once it has one)
/// and its first segment through the rewritten URI.
async fn hls(addr: SocketAddr, slot: usize, stay: Duration) -> Outcome {
    let deadline = Instant::now() + stay;
    let mut token: Option<String> = None;
    while Instant::now() < deadline {
        let path = match &token {
            Some(t) => format!("/live/h{slot}.m3u8?spbhid={t}"),
            None => format!("/live/h{slot}.m3u8"),
        };
        let (status, body) = exchange(addr, "GET", &path, "").await?;
        if status != 200 {
            return Err(format!("playlist: status {status}"));
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        let uri = text
            .lines()
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or("playlist without a segment")?;
        let query = uri.split_once('?').map_or("", |(_, q)| q);
        let t = hls_rewrite::extract_token(query, "spbhid").ok_or("segment URI without token")?;
        token = Some(t.to_owned());
        let segment = if uri.starts_with('/') {
            uri.to_owned()
        } else {
            format!("/live/{uri}")
        };
        let (status, body) = exchange(addr, "GET", &segment, "").await?;
        if status != 200 || body.len() != SEGMENT_LEN {
            return Err(format!("segment: status {status}, {} bytes", body.len()));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(Ending::Done)
}

/// One WebRTC client: WHIP offer, signed STUN check, then datagrams every 20 ms for
/// `stay`; the origin echoes them, and at least one must come back.
async fn webrtc(addrs: Addrs, i: usize, round: u64, stay: Duration) -> Outcome {
    let client_ufrag = format!("c{i}r{round}");
    let offer = format!("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:{client_ufrag}\r\na=ice-pwd:{CLIENT_PWD}\r\n");
    let path = format!("/rtc/v1/whip/?app=live&stream=w{}", i / 6);
    let (status, answer) = exchange(addrs.http_api, "POST", &path, &offer).await?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    if status != 201 {
        return Err(format!("offer: status {status}"));
    }
    let server_ufrag = sdp::ice_credentials(&answer)
        .map_err(|e| format!("answer: {e}"))?
        .ufrag
        .to_owned();
    let sock = UdpSocket::bind("127.0.0.1:0").await.map_err(err("bind"))?;
    let mut tid = [7u8; 12];
    tid[..8].copy_from_slice(&(i as u64 * 1_000_000 + round).to_be_bytes());
    let mut check = [0u8; 512];
    let check = BindingRequest {
        transaction_id: TransactionId(tid),
        server_ufrag: &server_ufrag,
        client_ufrag: &client_ufrag,
        priority: 1,
        role: IceRole::Controlling(i as u64),
        use_candidate: true,
        network_info: None,
    }
    .encode(&IntegrityKey::new(PWD.as_bytes()), &mut check)
    .map_err(|e| e.to_string())?;
    sock.send_to(check, addrs.webrtc)
        .await
        .map_err(err("check"))?;
    let mut media = vec![0u8; 1200];
    media[0] = 0x80;
    let mut buf = vec![0u8; 2048];
    let mut echoed = 0u64;
    let mut last_echo = Instant::now();
    let deadline = tokio::time::Instant::now() + stay;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            _ = tick.tick() => {
                sock.send_to(&media, addrs.webrtc).await.map_err(err("send"))?;
            }
            got = sock.recv_from(&mut buf) => {
                let Ok((n, from)) = got else { continue };
                // The proxy's consent requests are answered as the client's ICE agent
                // would (media comes only after that), and are not echoes.
                if buf[0] <= 3 {
                    answer_consent(&sock, &buf[..n], from).await;
                    continue;
                }
                echoed += 1;
                last_echo = Instant::now();
            }
        }
    }
    if echoed == 0 {
        return Err("no datagram came back through the proxy".into());
    }
    echoes_to_the_end(last_echo)?;
    Ok(Ending::Done)
}

/// The soak's WebRTC clients' ICE password: the proxy keys its consent requests with it.
const CLIENT_PWD: &str = "clientpassword0123456789";

/// Answers the proxy's consent request (a STUN binding request keyed with the client's
/// ICE password) as a browser would.
async fn answer_consent(sock: &UdpSocket, datagram: &[u8], from: SocketAddr) {
    let Ok(request) = stun_ufrag::Message::parse(datagram) else {
        return;
    };
    if !request.is_binding_request() {
        return;
    }
    let Ok(local) = sock.local_addr() else { return };
    let mut out = [0u8; 256];
    let key = IntegrityKey::new(CLIENT_PWD.as_bytes());
    if let Ok(answer) = stun_ufrag::stun::binding_success_response(&request, local, &key, &mut out)
    {
        let _ = sock.send_to(answer, from).await;
    }
}

/// Echoes that stopped well before the session's end mean the proxy dropped the session
/// mid-way (a forged DELETE, a hijacked address), which a count of echoes would not show.
fn echoes_to_the_end(last_echo: Instant) -> Result<(), String> {
    let silent = last_echo.elapsed();
    if silent > Duration::from_secs(1) {
        return Err(format!(
            "echoes stopped {:.1} s before the end: session dropped mid-way",
            silent.as_secs_f64()
        ));
    }
    Ok(())
}

/// The number of series `/metrics` exposes: labels minted per session would grow it.
async fn metric_series(api: SocketAddr) -> Option<usize> {
    let (status, body) = exchange(api, "GET", "/metrics", "").await.ok()?;
    (status == 200).then(|| {
        String::from_utf8_lossy(&body)
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count()
    })
}

/// The client sessions `/api/v1/streams` lists, all streams together, and the streams it
/// lists under names that do not exist (`nx-*`, only hostile clients ask for them).
async fn listed_sessions(api: SocketAddr) -> Option<(usize, usize)> {
    let (status, body) = exchange(api, "GET", "/api/v1/streams", "").await.ok()?;
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let streams = v["data"].as_array()?;
    let clients = streams
        .iter()
        .map(|s| s["sessions"]["clients"].as_array().map_or(0, Vec::len))
        .sum();
    let missing = streams
        .iter()
        .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with("nx-")))
        .count();
    Some((clients, missing))
}

/// The `nx-*` entries of `/api/v1/streams`, in short.
async fn missing_streams(api: SocketAddr) -> Vec<String> {
    let Ok((200, body)) = exchange(api, "GET", "/api/v1/streams", "").await else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with("nx-")))
        .map(|s| {
            format!(
                "{} placed={} origin={} sessions={}",
                s["stream"], s["placed"], s["origin"], s["sessions"]
            )
        })
        .collect()
}

/// ffmpeg's conclusion (libsrt 1.5.1): its fields and HSREQ are what every SRT client here
/// sends, with its own socket id, cookie and streamid.
const FFMPEG_CONCLUSION: &[u8] =
    include_bytes!("../../crates/srt-streamid/tests/data/ffmpeg_conclusion.bin");

/// Receives one handshake addressed to `socket_id` within 5 s (other datagrams, such as
/// echoes of an earlier session, are skipped).
async fn srt_handshake(
    sock: &UdpSocket,
    socket_id: u32,
    buf: &mut [u8],
) -> Result<Vec<u8>, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(buf))
            .await
            .map_err(|_| "no handshake answer in 5 s".to_owned())?
            .map_err(err("recv"))?;
        let got = &buf[..n];
        if Handshake::parse(got).is_ok() && dest_socket_id(got) == Some(socket_id) {
            return Ok(got.to_vec());
        }
    }
}

/// One SRT publisher: induction, conclusion with a streamid, data every 20 ms for `stay`
/// (the origin echoes it), then a SHUTDOWN every other round or silence.
async fn srt(proxy: SocketAddr, i: usize, round: u64, stay: Duration) -> Outcome {
    let sock = UdpSocket::bind("127.0.0.1:0").await.map_err(err("bind"))?;
    sock.connect(proxy).await.map_err(err("connect"))?;
    let socket_id = (i as u32 + 1) << 20 | (round as u32 & 0xFFFFF);
    let mut buf = vec![0u8; 2048];
    let induction = Handshake::caller_induction(socket_id, 1000, 1500, 8192, proxy.ip());
    sock.send(&induction.to_vec()).await.map_err(err("send"))?;
    let answer = srt_handshake(&sock, socket_id, &mut buf).await?;
    let answer = Handshake::parse(&answer).map_err(|e| e.to_string())?;
    if answer.kind != HandshakeType::Induction {
        return Err(format!("induction answered with {:?}", answer.kind));
    }

    let captured = Handshake::parse(FFMPEG_CONCLUSION).map_err(|e| e.to_string())?;
    let mut blocks = Vec::new();
    if let Some(hsreq) = captured.extensions.find(ExtensionType::HsReq) {
        push_extension(&mut blocks, ExtensionType::HsReq, hsreq.contents)
            .map_err(|e| e.to_string())?;
    }
    let sid =
        encode_text(&format!("#!::r=live/t{},m=publish", i / 6)).map_err(|e| e.to_string())?;
    push_extension(&mut blocks, ExtensionType::Sid, &sid).map_err(|e| e.to_string())?;
    let conclusion = Handshake {
        header: ControlHeader {
            dest_socket_id: 0,
            ..captured.header
        },
        extension_field: ext_flags::HSREQ | ext_flags::CONFIG,
        socket_id,
        cookie: answer.cookie,
        initial_seq: 1000,
        peer_ip: PeerIp::from_ip(proxy.ip()),
        extensions: Extensions::parse(&blocks).map_err(|e| e.to_string())?,
        ..captured
    };
    sock.send(&conclusion.to_vec()).await.map_err(err("send"))?;
    let answer = srt_handshake(&sock, socket_id, &mut buf).await?;
    let answer = Handshake::parse(&answer).map_err(|e| e.to_string())?;
    let peer_id = match answer.kind {
        HandshakeType::Conclusion => answer.socket_id,
        HandshakeType::Rejection(_) => return Ok(Ending::Refused),
        other => return Err(format!("conclusion answered with {other:?}")),
    };

    let mut packet = vec![0u8; 16 + 1316];
    let mut echoed = 0u64;
    let mut last_echo = Instant::now();
    let mut seq = 1000u32;
    let deadline = tokio::time::Instant::now() + stay;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            _ = tick.tick() => {
                let header = DataHeader {
                    seq_number: seq,
                    position: PacketPosition::Only,
                    in_order: false,
                    key: KeyFlags::Clear,
                    retransmitted: false,
                    msg_number: seq,
                    timestamp: seq.wrapping_mul(20_000),
                    dest_socket_id: peer_id,
                };
                packet[..16].copy_from_slice(&header.encode());
                seq += 1;
                sock.send(&packet).await.map_err(err("send"))?;
            }
            got = sock.recv(&mut buf) => {
                if let Ok(n) = got {
                    let data = Packet::parse(&buf[..n]).is_ok_and(|p| !p.is_control());
                    if data && dest_socket_id(&buf[..n]) == Some(socket_id) {
                        echoed += 1;
                        last_echo = Instant::now();
                    }
                }
            }
        }
    }
    if round.is_multiple_of(2) {
        let shutdown = ControlHeader {
            dest_socket_id: peer_id,
            ..ControlHeader::new(control_type::SHUTDOWN)
        };
        let mut bye = shutdown.encode().to_vec();
        bye.extend_from_slice(&[0; 4]);
        sock.send(&bye).await.map_err(err("send"))?;
    }
    if echoed == 0 {
        return Err("no data packet came back through the proxy".into());
    }
    echoes_to_the_end(last_echo)?;
    Ok(Ending::Done)
}

// ---------------------------------------------------------------- the FAKE origins

/// The FAKE SRT origin: a stateless listener for inductions, a conclusion answer with an
/// HSRSP (the caller's HSREQ contents) and a socket id of its own, and an echo of every
/// data packet, readdressed to its sender. Returns its port.
async fn start_fake_srt_origin() -> u16 {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind srt");
    let port = sock.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let listener = Listener::new(SynCookies::new([5; 32]), 0x0F0F_0001);
        let started = Instant::now();
        // Our socket id for each caller -> (address, caller's socket id).
        let mut peers = std::collections::HashMap::<u32, (SocketAddr, u32)>::new();
        let mut next_id = 0x0F00_0000u32;
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let now = started.elapsed();
            let datagram = &buf[..n];
            if let Ok(hs) = Handshake::parse(datagram) {
                let reply = match hs.kind {
                    HandshakeType::Induction => listener
                        .answer_induction(&hs, from, now)
                        .map(|a| a.to_vec())
                        .ok(),
                    HandshakeType::Conclusion => {
                        let Ok(accepted) = listener.accept_conclusion(hs, from, now) else {
                            continue;
                        };
                        let caller = accepted.handshake;
                        next_id += 1;
                        peers.insert(next_id, (from, caller.socket_id));
                        let mut blocks = Vec::new();
                        if let Some(hsreq) = caller.extensions.find(ExtensionType::HsReq) {
                            let _ =
                                push_extension(&mut blocks, ExtensionType::HsRsp, hsreq.contents);
                        }
                        let Ok(extensions) = Extensions::parse(&blocks) else {
                            continue;
                        };
                        Some(
                            Handshake {
                                header: ControlHeader {
                                    dest_socket_id: caller.socket_id,
                                    ..caller.header
                                },
                                extension_field: ext_flags::HSREQ,
                                socket_id: next_id,
                                peer_ip: PeerIp::from_ip(from.ip()),
                                extensions,
                                ..caller
                            }
                            .to_vec(),
                        )
                    }
                    _ => None,
                };
                if let Some(reply) = reply {
                    let _ = sock.send_to(&reply, from).await;
                }
                continue;
            }
            let Ok(packet) = Packet::parse(datagram) else {
                continue;
            };
            let ours = packet.dest_socket_id();
            if packet.is_control() {
                if packet.control_header().map(|h| h.control_type) == Some(control_type::SHUTDOWN) {
                    peers.remove(&ours);
                }
                continue;
            }
            if let Some(&(addr, peer_id)) = peers.get(&ours) {
                let mut echo = datagram.to_vec();
                if set_dest_socket_id(&mut echo, peer_id).is_ok() {
                    let _ = sock.send_to(&echo, addr).await;
                }
            }
        }
    });
    port
}

/// Starts the FAKE origin's HTTP server (FLV, HLS, WHIP) and its media socket (echoes
/// every datagram). Returns their ports.
async fn start_fake_origin() -> (u16, u16) {
    let media = UdpSocket::bind("127.0.0.1:0").await.expect("bind media");
    let media_port = media.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = media.recv_from(&mut buf).await {
            let _ = media.send_to(&buf[..n], from).await;
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let http_port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, media_port));
        }
    });
    (http_port, media_port)
}

async fn serve(mut stream: TcpStream, media_port: u16) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head = loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(read) => raw.extend_from_slice(&buf[..read]),
        }
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).into_owned();
            let len: usize = head
                .to_ascii_lowercase()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(str::trim)
                        .map(str::to_owned)
                })
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if raw.len() >= end + 4 + len {
                break head;
            }
        }
        if raw.len() > 64 * 1024 {
            return;
        }
    };
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let name = path
        .rsplit('/')
        .next()
        .unwrap_or("")
        .split('.')
        .next()
        .unwrap_or("s");
    let reply = |status: &str, kind: &str, body: &[u8]| {
        let mut r = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    };
    // Streams named nx-* do not exist (hostile clients ask for them).
    let missing = name.starts_with("nx-") || target.contains("stream=nx-");
    let answer = if missing {
        reply("404 Not Found", "text/plain", b"no such stream")
    } else if method == "POST" && path.starts_with("/rtc/v1/whip") {
        let n = WHIP_ANSWERS.fetch_add(1, Ordering::Relaxed) + 1;
        let sdp = format!(
            "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=Fake\r\nt=0 0\r\na=ice-lite\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:fake{n}\r\na=ice-pwd:{PWD}\r\na=candidate:1 1 udp 2130706431 127.0.0.1 {media_port} typ host\r\n"
        );
        let mut r = reply("201 Created", "application/sdp", sdp.as_bytes());
        let location = format!("Location: /rtc/v1/whip/?action=delete&token=fake{n}\r\n");
        let at = r.windows(2).position(|w| w == b"\r\n").unwrap_or(0) + 2;
        r.splice(at..at, location.into_bytes());
        r
    } else if method == "GET" && path.ends_with(".flv") {
        return stream_flv(stream).await;
    } else if method == "GET" && path.ends_with(".m3u8") {
        let seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 2);
        let mut text = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{seq}\n"
        );
        for s in seq..seq + 3 {
            text.push_str(&format!("#EXTINF:2.000,\n{name}-{s}.ts\n"));
        }
        reply("200 OK", "application/vnd.apple.mpegurl", text.as_bytes())
    } else if method == "GET" && path.ends_with(".ts") {
        let mut ts = vec![0xFFu8; SEGMENT_LEN];
        for packet in ts.chunks_mut(188) {
            packet[..4].copy_from_slice(&[0x47, 0x1F, 0xFF, 0x10]);
        }
        reply("200 OK", "video/mp2t", &ts)
    } else {
        reply("404 Not Found", "text/plain", b"not found")
    };
    let _ = stream.write_all(&answer).await;
}

/// An endless FLV stream: header, then a 1 KiB video tag every 40 ms.
async fn stream_flv(mut stream: TcpStream) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nConnection: close\r\n\r\n";
    let mut out = head.as_bytes().to_vec();
    out.extend_from_slice(b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00");
    if stream.write_all(&out).await.is_err() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(40));
    let mut timestamp = 0u32;
    loop {
        tick.tick().await;
        let size = 1024u32;
        let mut tag = vec![9u8];
        tag.extend_from_slice(&size.to_be_bytes()[1..]);
        tag.extend_from_slice(&timestamp.to_be_bytes()[1..]);
        tag.push(timestamp.to_be_bytes()[0]);
        tag.extend_from_slice(&[0, 0, 0]);
        let mut body = vec![0u8; size as usize];
        body[..2].copy_from_slice(&[0x17, 0x01]);
        tag.extend_from_slice(&body);
        tag.extend_from_slice(&(11 + size).to_be_bytes());
        if stream.write_all(&tag).await.is_err() {
            return;
        }
        timestamp += 40;
    }
}
