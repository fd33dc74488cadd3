//! WebRTC UDP relay load: N clients exchange RTP-sized datagrams (1200 bytes) with an
//! origin's media port, straight and then through the proxy, in one run. Reports the
//! packets per second received, the ratio proxied/direct, and the proxy's CPU seconds per
//! million packets, for both directions (client -> origin: publishers; origin -> client:
//! players), paced at a fixed rate and unpaced (as fast as the sender can).
//!
//! The origin is a FAKE, written here: a tiny WHIP API that answers every offer with an
//! SDP answer of known ufrag/pwd, registered through the proxy's System API, and a UDP
//! socket standing for its media port that counts what arrives (and, for the players,
//! sends). Each client opens its session as a browser would: a WHIP offer through the
//! proxy's HTTP API, then a signed STUN binding request to the proxy's UDP port, and an
//! answer to the proxy's consent requests (keyed with the client's ice-pwd), without which
//! the proxy sends the client no media.
//!
//! The load generator runs on the same machine: it reports its own CPU too (the cores it
//! used, direct and proxied), and the ratio the machine's cores allow at best, given what
//! a packet costs the generator when direct and the proxy when proxied:
//! `cores / (generator s per packet + proxy s per packet) / direct pps`. When the direct
//! run keeps every core busy, no proxy that costs anything per packet can reach 1.
//!
//! It also reports the share of sent packets lost, direct and proxied. Unpaced, the sender
//! keeps a core busy whatever is dropped downstream, and the direct runs already lose
//! (the receiving thread is the limit): on a small machine the unpaced ratio also measures
//! how the scheduler shares the cores between the sender, the relay and the receiver.
//!
//! `cargo build --release -p proxy-server -p proxy-benches && target/release/rtc-udp
//!  [--clients 50] [--seconds 4] [--rate 40000]`

#[path = "common.rs"]
mod common;

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stun_ufrag::stun::binding_success_response;
use stun_ufrag::{sdp, BindingRequest, IceRole, IntegrityKey, Message, TransactionId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PACKET: usize = 1200;
const PWD: &str = "fakepwd-for-the-load-generator";
/// Every client's ice-pwd.
const CLIENT_PWD: &str = "clientpassword0123456789";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let clients = common::arg_num(&args, "--clients", 50) as usize;
    let seconds = common::arg_num(&args, "--seconds", 4);
    let rate = common::arg_num(&args, "--rate", 40_000);
    let binary = common::proxy_binary(&args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");

    // The fake origin: its media port, and its WHIP API answering with a new ufrag each time.
    let media = UdpSocket::bind("127.0.0.1:0").expect("bind media");
    let media_addr = media.local_addr().unwrap();
    let api = runtime.block_on(start_fake_whip_api(media_addr.port()));

    let workdir = std::env::temp_dir().join(format!("rtc-udp-{}", std::process::id()));
    std::fs::create_dir_all(&workdir).expect("workdir");
    let proxy = common::ProxyProcess::start(&binary, &["--max-connections", "100000"], &workdir);
    let registration = format!(
        r#"{{"ip":"127.0.0.1","server":"fake","service":"s","pid":"1","rtmp":["1"],"api":["{}"],"rtc":["udp://127.0.0.1:{}"]}}"#,
        api.port(),
        media_addr.port()
    );
    let (status, _) = runtime.block_on(http(
        proxy.addr("system-api"),
        "POST",
        "/api/v1/srs/register",
        &registration,
    ));
    assert_eq!(status, 200, "registering the fake origin");

    // Sessions: a WHIP offer each, then a signed check from the client's socket.
    let webrtc = proxy.addr("webrtc");
    let http_api = proxy.addr("http-api");
    let sink = Sink::start(media.try_clone().unwrap());
    let mut socks = Vec::new();
    for n in 0..clients {
        let offer = format!("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:c{n}\r\na=ice-pwd:{CLIENT_PWD}\r\n");
        let (status, answer) = runtime.block_on(http(
            http_api,
            "POST",
            &format!("/rtc/v1/whip/?app=live&stream=s{n}"),
            &offer,
        ));
        assert_eq!(status, 201, "offer {n}: {answer}");
        let ufrag = sdp::ice_credentials(&answer)
            .expect("answer credentials")
            .ufrag
            .to_owned();
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut buf = [0u8; 512];
        let check = BindingRequest {
            transaction_id: TransactionId(tid(n as u32)),
            server_ufrag: &ufrag,
            client_ufrag: &format!("c{n}"),
            priority: 1,
            role: IceRole::Controlling(n as u64),
            use_candidate: true,
            network_info: None,
        }
        .encode(&IntegrityKey::new(PWD.as_bytes()), &mut buf)
        .expect("check");
        sock.send_to(check, webrtc).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut request = [0u8; 1024];
        let (len, from) = sock
            .recv_from(&mut request)
            .expect("the proxy's consent request");
        assert!(
            answer_consent(&sock, &request[..len], from),
            "session {n}: not a consent request"
        );
        sock.set_read_timeout(None).unwrap();
        socks.push(sock);
    }
    // Each session's origin-side address, from its check arriving at the media port.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sink.sources().len() < clients && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let sources = sink.sources();
    let relays: Vec<SocketAddr> = (0..clients as u32)
        .map(|n| {
            *sources
                .get(&n)
                .unwrap_or_else(|| panic!("session {n} did not reach the origin"))
        })
        .collect();
    let distinct: std::collections::HashSet<&SocketAddr> = relays.iter().collect();
    assert_eq!(
        distinct.len(),
        clients,
        "one origin-side socket per session"
    );
    let client_addrs: Vec<SocketAddr> = socks.iter().map(|s| s.local_addr().unwrap()).collect();
    let counters = Counters::start(&socks);

    println!(
        "WebRTC UDP relay: {clients} sessions, {PACKET}-byte datagrams, {seconds} s per phase"
    );
    println!(
        "{:<34} {:>12} {:>12} {:>8} {:>14} {:>17} {:>7} {:>14}",
        "phase",
        "direct pps",
        "proxied pps",
        "ratio",
        "CPU s / Mpkt",
        "generator cores",
        "bound",
        "% lost d / p"
    );
    let duration = Duration::from_secs(seconds);
    for (label, pace) in [
        (format!("paced at {rate} pps"), rate),
        ("unpaced".to_owned(), 0),
    ] {
        // Up: clients -> origin.
        let generator = Generator::start();
        let up_direct = blast_up(
            &socks,
            &vec![media_addr; clients],
            pace,
            duration,
            &sink.count,
        );
        let direct_cpu = generator.lap();
        let cpu0 = proxy.cpu_seconds();
        let up_proxied = blast_up(&socks, &vec![webrtc; clients], pace, duration, &sink.count);
        let up_cpu = proxy.cpu_seconds() - cpu0;
        report(
            &format!("client -> origin, {label}"),
            Run {
                direct: up_direct,
                proxied: up_proxied,
                proxy_cpu: up_cpu,
                generator_direct: direct_cpu,
                generator_proxied: generator.lap(),
            },
            duration,
        );
        // Down: origin -> clients.
        let down_direct = blast_down(&media, &client_addrs, pace, duration, &counters.total);
        let direct_cpu = generator.lap();
        let cpu0 = proxy.cpu_seconds();
        let down_proxied = blast_down(&media, &relays, pace, duration, &counters.total);
        let down_cpu = proxy.cpu_seconds() - cpu0;
        report(
            &format!("origin -> client, {label}"),
            Run {
                direct: down_direct,
                proxied: down_proxied,
                proxy_cpu: down_cpu,
                generator_direct: direct_cpu,
                generator_proxied: generator.lap(),
            },
            duration,
        );
    }
    println!("proxy RSS with {clients} sessions: {} KiB", proxy.rss_kib());
    sink.stop.store(true, Ordering::Relaxed);
    counters.stop.store(true, Ordering::Relaxed);
    let _ = std::fs::remove_dir_all(&workdir);
    drop(proxy);
}

/// Answers the proxy's consent request as the client's ICE agent would; false if the
/// datagram is not a binding request.
fn answer_consent(sock: &UdpSocket, datagram: &[u8], from: SocketAddr) -> bool {
    let Ok(request) = Message::parse(datagram) else {
        return false;
    };
    if !request.is_binding_request() {
        return false;
    }
    let mut buf = [0u8; 256];
    let key = IntegrityKey::new(CLIENT_PWD.as_bytes());
    let Ok(local) = sock.local_addr() else {
        return false;
    };
    match binding_success_response(&request, local, &key, &mut buf) {
        Ok(answer) => sock.send_to(answer, from).is_ok(),
        Err(_) => false,
    }
}

/// A transaction id carrying the client's index.
fn tid(n: u32) -> [u8; 12] {
    let mut t = [7u8; 12];
    t[..4].copy_from_slice(&n.to_be_bytes());
    t
}

/// This process's CPU seconds, read lap by lap.
struct Generator(std::cell::Cell<f64>);

impl Generator {
    fn start() -> Self {
        Generator(std::cell::Cell::new(
            common::cpu_seconds(std::process::id()),
        ))
    }

    /// CPU seconds since the last lap.
    fn lap(&self) -> f64 {
        let now = common::cpu_seconds(std::process::id());
        now - self.0.replace(now)
    }
}

/// One phase, direct then proxied: packets counted and CPU seconds spent.
struct Run {
    direct: Delivery,
    proxied: Delivery,
    proxy_cpu: f64,
    generator_direct: f64,
    generator_proxied: f64,
}

fn report(phase: &str, run: Run, duration: Duration) {
    let secs = duration.as_secs_f64();
    let (direct, proxied) = (run.direct.received, run.proxied.received);
    let per_m = if proxied > 0 {
        run.proxy_cpu / (proxied as f64 / 1e6)
    } else {
        f64::NAN
    };
    // The best ratio the cores allow: every core busy with the generator's work per packet
    // (as measured direct) plus the proxy's.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let per_packet =
        run.generator_direct / direct.max(1) as f64 + run.proxy_cpu / proxied.max(1) as f64;
    let bound = (cores / per_packet.max(1e-12) / (direct.max(1) as f64 / secs)).min(1.0);
    println!(
        "{:<34} {:>12.0} {:>12.0} {:>8.3} {:>14.2} {:>8.2} / {:<6.2} {:>7.3} {:>6.1} / {:<5.1}",
        phase,
        direct as f64 / secs,
        proxied as f64 / secs,
        proxied as f64 / direct.max(1) as f64,
        per_m,
        run.generator_direct / secs,
        run.generator_proxied / secs,
        bound,
        run.direct.lost_percent(),
        run.proxied.lost_percent(),
    );
}

/// Sends from every client socket to its target for `duration` (paced at `rate` packets a
/// second in total, or as fast as possible if 0) and returns what `received` counted, after
/// a short drain.
fn blast_up(
    socks: &[UdpSocket],
    targets: &[SocketAddr],
    rate: u64,
    duration: Duration,
    received: &AtomicU64,
) -> Delivery {
    let senders: Vec<(UdpSocket, SocketAddr)> = socks
        .iter()
        .zip(targets)
        .map(|(s, t)| (s.try_clone().unwrap(), *t))
        .collect();
    measure(senders, rate, duration, received)
}

/// Sends from the origin's media socket to every target.
fn blast_down(
    media: &UdpSocket,
    targets: &[SocketAddr],
    rate: u64,
    duration: Duration,
    received: &AtomicU64,
) -> Delivery {
    let senders: Vec<(UdpSocket, SocketAddr)> = targets
        .iter()
        .map(|t| (media.try_clone().unwrap(), *t))
        .collect();
    measure(senders, rate, duration, received)
}

fn measure(
    senders: Vec<(UdpSocket, SocketAddr)>,
    rate: u64,
    duration: Duration,
    received: &AtomicU64,
) -> Delivery {
    std::thread::sleep(Duration::from_millis(300));
    let before = received.load(Ordering::Relaxed);
    let mut packet = vec![0x55u8; PACKET];
    packet[0] = 0x80;
    packet[1] = 0x60;
    let start = Instant::now();
    let mut sent: u64 = 0;
    'outer: while start.elapsed() < duration {
        if rate > 0 {
            // Paced: catch up to where the clock says we should be, in 1 ms steps.
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            if sent >= due {
                std::thread::sleep(Duration::from_micros(500));
                continue;
            }
        }
        for (sock, target) in &senders {
            loop {
                match sock.send_to(&packet, target) {
                    Ok(_) => break,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::yield_now(),
                    Err(_) => break,
                }
            }
            sent += 1;
            if start.elapsed() >= duration {
                break 'outer;
            }
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    Delivery {
        sent,
        received: received.load(Ordering::Relaxed) - before,
    }
}

/// What one sending phase sent and what arrived.
#[derive(Clone, Copy)]
struct Delivery {
    sent: u64,
    received: u64,
}

impl Delivery {
    /// The share of what was sent that did not arrive, in percent.
    fn lost_percent(self) -> f64 {
        100.0 * self.sent.saturating_sub(self.received) as f64 / self.sent.max(1) as f64
    }
}

/// The origin's media port: counts datagrams, and remembers which socket of the proxy each
/// session's check came from (by the client index the bench put in its transaction id).
struct Sink {
    count: Arc<AtomicU64>,
    sources: Arc<Mutex<HashMap<u32, SocketAddr>>>,
    stop: Arc<AtomicBool>,
}

impl Sink {
    fn start(socket: UdpSocket) -> Self {
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let (count, sources, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(Mutex::new(HashMap::new())),
            Arc::new(AtomicBool::new(false)),
        );
        let (c, s, halt) = (count.clone(), sources.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !halt.load(Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    c.fetch_add(1, Ordering::Relaxed);
                    if buf[0] <= 3 && n >= 20 {
                        let client = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
                        s.lock().unwrap().insert(client, from);
                    }
                }
            }
        });
        Sink {
            count,
            sources,
            stop,
        }
    }

    /// Client index -> the proxy socket its session's packets come from.
    fn sources(&self) -> HashMap<u32, SocketAddr> {
        self.sources.lock().unwrap().clone()
    }
}

/// Counts datagrams arriving at every client socket.
struct Counters {
    total: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Counters {
    fn start(socks: &[UdpSocket]) -> Self {
        let (total, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let socks: Vec<UdpSocket> = socks.iter().map(|s| s.try_clone().unwrap()).collect();
        let (t, halt) = (total.clone(), stop.clone());
        std::thread::spawn(move || {
            for s in &socks {
                s.set_nonblocking(true).unwrap();
            }
            let mut buf = [0u8; 2048];
            while !halt.load(Ordering::Relaxed) {
                let mut any = false;
                for s in &socks {
                    while let Ok((n, from)) = s.recv_from(&mut buf) {
                        any = true;
                        // The proxy's consent refreshes (every 5 s) are answered, not counted.
                        if buf[0] <= 3 && answer_consent(s, &buf[..n], from) {
                            continue;
                        }
                        t.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if !any {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        });
        Counters { total, stop }
    }
}

/// A tiny HTTP/1.1 exchange (Connection: close).
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The FAKE origin's WHIP API: every POST gets a 201 with an answer of a new ufrag (and the
/// one password), naming the media port.
async fn start_fake_whip_api(media_port: u16) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut n = 0u64;
        while let Ok((mut stream, _)) = listener.accept().await {
            n += 1;
            let ufrag = format!("fake{n}");
            tokio::spawn(async move {
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then Content-Length bytes of body.
                loop {
                    let Ok(read) = stream.read(&mut buf).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    raw.extend_from_slice(&buf[..read]);
                    if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if raw.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let answer = format!(
                    "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=Fake\r\nt=0 0\r\na=ice-lite\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:{ufrag}\r\na=ice-pwd:{PWD}\r\na=candidate:1 1 udp 2130706431 127.0.0.1 {media_port} typ host\r\n"
                );
                let reply = format!(
                    "HTTP/1.1 201 Created\r\nContent-Type: application/sdp\r\nLocation: /rtc/v1/whip/?action=delete&token={ufrag}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    });
    addr
}
