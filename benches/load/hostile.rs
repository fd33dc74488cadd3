//! Hostile virtual clients for the soak (`--hostile N`): each in a loop picks a random
//! [`Attack`], runs it against one of the proxy's loopback listeners, records what the
//! proxy did with it, pauses up to half a second and starts again, until the bench ends.
//!
//! Bounds, so the hostiles stress the proxy and not the machine:
//! - rate: every operation (a connection opened, a request on an open connection, a
//!   datagram, a burst of 16 flood datagrams) takes a slot from one shared pace, by
//!   default 200 a second for all hostiles together;
//! - time: nothing is held longer than [`GIVE_UP`] (75 s for the keep-alive attack, to
//!   outlast the System API's 60 s connection age) nor past the bench's end;
//! - place: only the proxy's listeners on loopback, from sources 127.0.0.10 to
//!   127.0.0.17 (eight "hosts"), so per-IP limits meet the hostiles and not the bench's own
//!   System API reads from 127.0.0.1.
//!
//! Randomness comes from one seed (printed, `--seed` replays the same choices; timing
//! still differs from run to run).
//!
//! Stream names: `nx-*` streams do not exist (the FAKE origin answers 404 for them), and
//! `slow-*` streams exist (it streams them). Real clients use other names, so whatever the
//! proxy lists under these names is the hostiles' doing.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use fastrand::Rng;
use rtmp_peek::{ChunkWriter, Command};
use srt_streamid::extension::{encode_text, push_extension};
use srt_streamid::handshake::ext_flags;
use srt_streamid::{ControlHeader, ExtensionType, Extensions, Handshake, HandshakeType, PeerIp};
use stun_ufrag::{BindingRequest, IceRole, IntegrityKey, TransactionId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::time::Instant;

/// Longest a hostile connection is held open (the proxy's own limits are shorter).
pub const GIVE_UP: Duration = Duration::from_secs(30);
/// The keep-alive attack holds its connections past the System API's 60 s age limit.
const KEEP_ALIVE_GIVE_UP: Duration = Duration::from_secs(75);
/// Hostile source addresses: 127.0.0.10 .. 127.0.0.(10 + HOSTS - 1).
const HOSTS: u8 = 8;
/// Connections one keep-alive attack opens from one source (the API allows 16 per IP).
const KEEP_ALIVE_CONNECTIONS: usize = 20;
/// The proxy's origin id in the soak's config (forged `proxy_origin` values use it).
const ORIGIN_ID: &str = "soak";

/// The proxy's listeners.
#[derive(Clone, Copy)]
pub struct Targets {
    pub rtmp: SocketAddr,
    pub http: SocketAddr,
    pub http_api: SocketAddr,
    pub system_api: SocketAddr,
    pub webrtc: SocketAddr,
    pub srt: SocketAddr,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Port {
    Rtmp,
    Http,
    HttpApi,
    SystemApi,
    WebRtc,
    Srt,
}

const TCP: [Port; 4] = [Port::Rtmp, Port::Http, Port::HttpApi, Port::SystemApi];
const HTTP: [Port; 3] = [Port::Http, Port::HttpApi, Port::SystemApi];
const UDP: [Port; 2] = [Port::WebRtc, Port::Srt];

impl Port {
    fn name(self) -> &'static str {
        match self {
            Port::Rtmp => "rtmp",
            Port::Http => "http",
            Port::HttpApi => "http-api",
            Port::SystemApi => "system-api",
            Port::WebRtc => "webrtc",
            Port::Srt => "srt",
        }
    }
}

impl Targets {
    fn addr(&self, port: Port) -> SocketAddr {
        match port {
            Port::Rtmp => self.rtmp,
            Port::Http => self.http,
            Port::HttpApi => self.http_api,
            Port::SystemApi => self.system_api,
            Port::WebRtc => self.webrtc,
            Port::Srt => self.srt,
        }
    }
}

/// The attacks, one function each (below, in this order).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Attack {
    /// TCP, every port: connect and say nothing.
    Silent,
    /// TCP, every port: up to 8 KiB of random bytes.
    RandomBytes,
    /// RTMP: a valid C0 C1, then junk for C2 and chunks.
    RtmpJunk,
    /// RTMP: handshake and `connect`, then a chunk declaring a 1-16 MiB message whose
    /// bytes trickle in.
    RtmpHugeMessage,
    /// HTTP ports: a request head that never ends (slow: a short header line every
    /// 300 ms; fast: 1 KiB lines as fast as taken).
    HttpEndlessHead,
    /// HTTP ports: a request with 1000 headers.
    HttpManyHeaders,
    /// HTTP ports: a POST declaring a huge Content-Length, a few bytes of it, then a stall.
    HttpHugeBody,
    /// System API: 20 keep-alive connections from one source (with spoofed
    /// X-Forwarded-For), a request on each every 5 s until the proxy closes them.
    ApiKeepAlive,
    /// HTTP media: `.flv`, `.m3u8`, `.ts` and segments of streams that do not exist.
    MissingStream,
    /// WHIP API: DELETE / PATCH on arbitrary paths with forged `proxy_origin` /
    /// `proxy_ufrag`.
    WhipForged,
    /// WHIP API: DELETE naming a live session's ufrag with a wrong token (as if the
    /// ufrag had leaked; the FAKE origin's ufrags `fake<n>` are sequential, so guessable,
    /// and it answers 404 to every DELETE).
    WhipGuessed,
    /// HTTP media: an FLV viewer (4 KiB receive buffer) that reads the response head,
    /// then nothing, keeping the socket open.
    FlvNoRead,
    /// HTTP ports: requests with spoofed X-Forwarded-For / X-Real-IP / Forwarded.
    XffSpoof,
    /// UDP ports: random datagrams, some shaped like STUN, RTP, DTLS, SRT control/data.
    UdpRandom,
    /// WebRTC port: STUN binding requests with random usernames or a live session's
    /// ufrag, and bad MESSAGE-INTEGRITY.
    StunBadIntegrity,
    /// WebRTC port: well-formed, signed STUN binding requests with random ufrags.
    StunRandomUfrag,
    /// SRT port: inductions with random cookies, socket ids, versions and fields.
    SrtInduction,
    /// SRT port: an induction, then a conclusion with a wrong cookie, garbage extensions,
    /// an oversized streamid, a lying block length, or a jumbo datagram.
    SrtConclusion,
    /// UDP ports: bursts of small datagrams for about a second.
    UdpFlood,
}

impl Attack {
    pub const ALL: [Attack; 19] = [
        Attack::Silent,
        Attack::RandomBytes,
        Attack::RtmpJunk,
        Attack::RtmpHugeMessage,
        Attack::HttpEndlessHead,
        Attack::HttpManyHeaders,
        Attack::HttpHugeBody,
        Attack::ApiKeepAlive,
        Attack::MissingStream,
        Attack::WhipForged,
        Attack::WhipGuessed,
        Attack::FlvNoRead,
        Attack::XffSpoof,
        Attack::UdpRandom,
        Attack::StunBadIntegrity,
        Attack::StunRandomUfrag,
        Attack::SrtInduction,
        Attack::SrtConclusion,
        Attack::UdpFlood,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attack::Silent => "silent",
            Attack::RandomBytes => "random-bytes",
            Attack::RtmpJunk => "rtmp-junk",
            Attack::RtmpHugeMessage => "rtmp-huge-message",
            Attack::HttpEndlessHead => "http-endless-head",
            Attack::HttpManyHeaders => "http-many-headers",
            Attack::HttpHugeBody => "http-huge-body",
            Attack::ApiKeepAlive => "api-keep-alive",
            Attack::MissingStream => "missing-stream",
            Attack::WhipForged => "whip-forged",
            Attack::WhipGuessed => "whip-guessed",
            Attack::FlvNoRead => "flv-no-read",
            Attack::XffSpoof => "xff-spoof",
            Attack::UdpRandom => "udp-random",
            Attack::StunBadIntegrity => "stun-bad-integrity",
            Attack::StunRandomUfrag => "stun-random-ufrag",
            Attack::SrtInduction => "srt-induction",
            Attack::SrtConclusion => "srt-conclusion",
            Attack::UdpFlood => "udp-flood",
        }
    }

    /// `all`, or names separated by commas; a leading `-` on a name leaves it out of all.
    pub fn parse_list(list: &str) -> Result<Vec<Attack>, String> {
        let named = |name: &str| {
            Attack::ALL
                .into_iter()
                .find(|a| a.name() == name)
                .ok_or_else(|| {
                    let names: Vec<_> = Attack::ALL.iter().map(|a| a.name()).collect();
                    format!("unknown attack {name:?}; known: {}", names.join(", "))
                })
        };
        let words: Vec<&str> = list.split(',').map(str::trim).collect();
        if list == "all" || words.iter().all(|w| w.starts_with('-')) {
            let left_out = words
                .iter()
                .filter_map(|w| w.strip_prefix('-'))
                .map(named)
                .collect::<Result<Vec<_>, _>>()?;
            let chosen: Vec<Attack> = Attack::ALL
                .into_iter()
                .filter(|a| !left_out.contains(a))
                .collect();
            if chosen.is_empty() {
                return Err("no attack left".into());
            }
            return Ok(chosen);
        }
        let chosen = words
            .into_iter()
            .map(named)
            .collect::<Result<Vec<_>, _>>()?;
        if chosen.is_empty() {
            return Err("no attack left".into());
        }
        Ok(chosen)
    }

    fn give_up(self) -> Duration {
        match self {
            Attack::ApiKeepAlive => KEEP_ALIVE_GIVE_UP,
            _ => GIVE_UP,
        }
    }

    async fn run(self, h: &Hostiles, rng: &mut Rng, deadline: Instant) -> Verdict {
        let outcome = match self {
            Attack::Silent => silent(h, rng, deadline).await,
            Attack::RandomBytes => random_bytes(h, rng, deadline).await,
            Attack::RtmpJunk => rtmp_junk(h, rng, deadline).await,
            Attack::RtmpHugeMessage => rtmp_huge_message(h, rng, deadline).await,
            Attack::HttpEndlessHead => http_endless_head(h, rng, deadline).await,
            Attack::HttpManyHeaders => http_many_headers(h, rng, deadline).await,
            Attack::HttpHugeBody => http_huge_body(h, rng, deadline).await,
            Attack::ApiKeepAlive => api_keep_alive(h, rng, deadline).await,
            Attack::MissingStream => missing_stream(h, rng, deadline).await,
            Attack::WhipForged => whip_forged(h, rng, deadline).await,
            Attack::WhipGuessed => whip_guessed(h, rng, deadline).await,
            Attack::FlvNoRead => flv_no_read(h, rng, deadline).await,
            Attack::XffSpoof => xff_spoof(h, rng, deadline).await,
            Attack::UdpRandom => udp_random(h, rng).await,
            Attack::StunBadIntegrity => stun_bad_integrity(h, rng).await,
            Attack::StunRandomUfrag => stun_random_ufrag(h, rng).await,
            Attack::SrtInduction => srt_induction(h, rng).await,
            Attack::SrtConclusion => srt_conclusion(h, rng).await,
            Attack::UdpFlood => udp_flood(h, rng).await,
        };
        outcome.unwrap_or_else(|ended_early| ended_early)
    }
}

/// What the proxy did with one attack: a label (`rtmp: answered, closed`,
/// `http-api: HTTP 404, closed`, `webrtc: silent`...) and, for a connection, how long it
/// stayed open.
pub struct Verdict {
    label: String,
    open: Option<Duration>,
}

impl Verdict {
    fn new(label: String) -> Self {
        Verdict { label, open: None }
    }
}

/// `Err` is an attack that ended early (the proxy closed, or a step failed): still a
/// verdict.
type Outcome = Result<Verdict, Verdict>;

/// Shared by all hostile clients.
pub struct Hostiles {
    targets: Targets,
    attacks: Vec<Attack>,
    pace: Pace,
    /// The FAKE origin's WHIP answer counter: its live ufrags are `fake<n>` for n at
    /// most this.
    live_ufrags: &'static AtomicU64,
    /// (attack, what the proxy did) -> how often, how long connections stayed open.
    tally: Mutex<BTreeMap<(Attack, String), Count>>,
}

/// How often one attack ended one way, and how long its connections stayed open.
#[derive(Default)]
struct Count {
    n: u64,
    total_open: Duration,
    max_open: Duration,
}

impl Hostiles {
    pub fn new(
        targets: Targets,
        attacks: Vec<Attack>,
        ops_per_second: u64,
        live_ufrags: &'static AtomicU64,
    ) -> Arc<Self> {
        Arc::new(Hostiles {
            targets,
            attacks,
            pace: Pace::new(ops_per_second),
            live_ufrags,
            tally: Mutex::new(BTreeMap::new()),
        })
    }

    /// Operations performed so far (connections, requests, datagrams, flood bursts).
    pub fn ops(&self) -> u64 {
        self.pace.ops.load(Ordering::Relaxed)
    }

    /// One hostile client: attacks until `end`.
    pub async fn client(self: Arc<Self>, i: usize, seed: u64, end: std::time::Instant) {
        let end = Instant::from_std(end);
        let mut rng = Rng::with_seed(seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        tokio::time::sleep(Duration::from_millis(rng.u64(0..3000))).await;
        while Instant::now() < end {
            let attack = self.attacks[rng.usize(..self.attacks.len())];
            let deadline = (Instant::now() + attack.give_up()).min(end);
            // Every step of an attack is bounded by `deadline`; this is a safety net.
            let mut verdict = tokio::time::timeout_at(
                deadline + Duration::from_secs(10),
                attack.run(&self, &mut rng, deadline),
            )
            .await
            .unwrap_or_else(|_| Verdict::new("did not stop (bench bug)".into()));
            if verdict.label.ends_with("held") {
                verdict.label.push_str(if deadline == end {
                    " to the bench's end"
                } else {
                    " until we gave up"
                });
            }
            self.record(attack, verdict);
            tokio::time::sleep(Duration::from_millis(rng.u64(0..500))).await;
        }
    }

    fn record(&self, attack: Attack, verdict: Verdict) {
        let mut tally = self.tally.lock().unwrap();
        let count = tally.entry((attack, verdict.label)).or_default();
        count.n += 1;
        if let Some(open) = verdict.open {
            count.total_open += open;
            count.max_open = count.max_open.max(open);
        }
    }

    /// One line per attack and outcome: how often, and how long connections stayed open.
    pub fn print_report(&self) {
        let tally = self.tally.lock().unwrap();
        let mut runs = BTreeMap::<Attack, u64>::new();
        for ((attack, _), count) in tally.iter() {
            *runs.entry(*attack).or_default() += count.n;
        }
        println!(
            "{:<19} {:>5}  {:<52} {:>6} {:>9} {:>8}",
            "attack", "runs", "what the proxy did", "count", "mean open", "max open"
        );
        let mut last = None;
        for ((attack, label), count) in tally.iter() {
            let Count {
                n,
                total_open,
                max_open,
            } = count;
            let (name, all) = if last == Some(*attack) {
                ("", String::new())
            } else {
                (attack.name(), runs[attack].to_string())
            };
            last = Some(*attack);
            let (mean, max) = if max_open.is_zero() {
                ("-".to_owned(), "-".to_owned())
            } else {
                (
                    format!("{:.1} s", total_open.as_secs_f64() / *n as f64),
                    format!("{:.1} s", max_open.as_secs_f64()),
                )
            };
            println!("{name:<19} {all:>5}  {label:<52} {n:>6} {mean:>9} {max:>8}");
        }
        for attack in &self.attacks {
            if !runs.contains_key(attack) {
                println!("{:<19} {:>5}  (not drawn)", attack.name(), 0);
            }
        }
    }

    fn source(&self, rng: &mut Rng) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, 0, 10 + rng.u8(0..HOSTS))
    }

    /// A connection from a random hostile source.
    async fn connect(&self, rng: &mut Rng, port: Port, deadline: Instant) -> Result<Conn, Verdict> {
        let source = self.source(rng);
        self.connect_from(source, port, None, deadline).await
    }

    async fn connect_from(
        &self,
        source: Ipv4Addr,
        port: Port,
        receive_buffer: Option<u32>,
        deadline: Instant,
    ) -> Result<Conn, Verdict> {
        self.pace.go().await;
        let failed = |what: &str| Verdict::new(format!("{}: {what}", port.name()));
        let socket = TcpSocket::new_v4().map_err(|e| failed(&format!("socket: {:?}", e.kind())))?;
        socket
            .bind(SocketAddr::from((source, 0)))
            .map_err(|e| failed(&format!("bind: {:?}", e.kind())))?;
        if let Some(size) = receive_buffer {
            socket
                .set_recv_buffer_size(size)
                .map_err(|e| failed(&format!("SO_RCVBUF: {:?}", e.kind())))?;
        }
        let sock = tokio::time::timeout_at(deadline, socket.connect(self.targets.addr(port)))
            .await
            .map_err(|_| failed("connect timed out"))?
            .map_err(|e| failed(&format!("connect: {:?}", e.kind())))?;
        Ok(Conn {
            sock,
            port,
            variant: "",
            opened: Instant::now(),
            received: Vec::new(),
        })
    }

    async fn udp(&self, rng: &mut Rng, port: Port) -> Result<UdpSocket, Verdict> {
        let sock = UdpSocket::bind(SocketAddr::from((self.source(rng), 0)))
            .await
            .map_err(|e| Verdict::new(format!("{}: bind: {:?}", port.name(), e.kind())))?;
        sock.connect(self.targets.addr(port))
            .await
            .map_err(|e| Verdict::new(format!("{}: connect: {:?}", port.name(), e.kind())))?;
        Ok(sock)
    }

    async fn send_datagram(
        &self,
        sock: &UdpSocket,
        port: Port,
        datagram: &[u8],
    ) -> Result<(), Verdict> {
        self.pace.go().await;
        match sock.send(datagram).await {
            Ok(_) => Ok(()),
            // A full socket buffer or an ICMP error from an earlier datagram: not the
            // proxy's answer, just go on.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::ConnectionRefused
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(Verdict::new(format!(
                "{}: send: {:?}",
                port.name(),
                e.kind()
            ))),
        }
    }

    /// A ufrag the FAKE origin handed out recently (a live session's, often).
    fn guess_live_ufrag(&self, rng: &mut Rng) -> String {
        let newest = self.live_ufrags.load(Ordering::Relaxed).max(1);
        format!("fake{}", newest.saturating_sub(rng.u64(0..40)).max(1))
    }
}

/// One shared pace for all hostile operations: slots `1 / rate` apart, taken in turn.
struct Pace {
    every: Duration,
    next: Mutex<Instant>,
    ops: AtomicU64,
}

impl Pace {
    fn new(per_second: u64) -> Self {
        Pace {
            every: Duration::from_secs(1) / per_second.max(1) as u32,
            next: Mutex::new(Instant::now()),
            ops: AtomicU64::new(0),
        }
    }

    async fn go(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap();
            let slot = (*next).max(Instant::now());
            *next = slot + self.every;
            slot
        };
        tokio::time::sleep_until(slot).await;
        self.ops.fetch_add(1, Ordering::Relaxed);
    }
}

/// A hostile TCP connection and what the proxy said on it.
struct Conn {
    sock: TcpStream,
    port: Port,
    variant: &'static str,
    opened: Instant,
    /// The first 64 KiB the proxy sent.
    received: Vec<u8>,
}

impl Conn {
    /// The label of this connection's ending: port, variant, the proxy's answer, `how`.
    fn ended(&self, how: &str) -> Verdict {
        let said = if let Some(status) = http_status(&self.received) {
            format!("HTTP {status}, ")
        } else if self.received.is_empty() {
            String::new()
        } else {
            "answered, ".to_owned()
        };
        let variant = if self.variant.is_empty() {
            String::new()
        } else {
            format!(" {}", self.variant)
        };
        Verdict {
            label: format!("{}{variant}: {said}{how}", self.port.name()),
            open: Some(self.opened.elapsed()),
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), Verdict> {
        self.sock
            .write_all(bytes)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => self.ended("closed"),
                kind => self.ended(&format!("write: {kind:?}")),
            })
    }

    /// Reads for `d` (or until `deadline`); `Err` when the proxy closed the connection.
    async fn watch(&mut self, d: Duration, deadline: Instant) -> Result<(), Verdict> {
        let until = (Instant::now() + d).min(deadline);
        let mut buf = [0u8; 8192];
        loop {
            match tokio::time::timeout_at(until, self.sock.read(&mut buf)).await {
                Err(_) => return Ok(()),
                Ok(Ok(0)) => return Err(self.ended("closed")),
                Ok(Ok(n)) => self.keep(&buf[..n]),
                Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset => {
                    return Err(self.ended("reset"))
                }
                Ok(Err(e)) => return Err(self.ended(&format!("read: {:?}", e.kind()))),
            }
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = (64 * 1024usize).saturating_sub(self.received.len());
        self.received
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Reads until the proxy closes the connection or `deadline`.
    async fn hold(mut self, deadline: Instant) -> Verdict {
        match self
            .watch(deadline.saturating_duration_since(Instant::now()), deadline)
            .await
        {
            Ok(()) => self.ended("held"),
            Err(closed) => closed,
        }
    }

    /// Reads until `n` bytes came, within `deadline`.
    async fn read_at_least(&mut self, n: usize, deadline: Instant) -> Result<(), Verdict> {
        while self.received.len() < n {
            if Instant::now() >= deadline {
                return Err(self.ended("too slow to answer"));
            }
            self.watch(Duration::from_millis(100), deadline).await?;
        }
        Ok(())
    }
}

/// The status of an HTTP response head at the start of `bytes`.
fn http_status(bytes: &[u8]) -> Option<u16> {
    let rest = bytes.strip_prefix(b"HTTP/1.")?;
    std::str::from_utf8(rest.get(2..5)?).ok()?.parse().ok()
}

fn pick<T: Copy>(rng: &mut Rng, from: &[T]) -> T {
    from[rng.usize(..from.len())]
}

/// Random bytes, as many as `len` draws.
fn junk(rng: &mut Rng, len: impl std::ops::RangeBounds<usize>) -> Vec<u8> {
    let mut v = vec![0u8; rng.usize(len)];
    rng.fill(&mut v);
    v
}

/// Letters and digits.
fn token(rng: &mut Rng, len: std::ops::Range<usize>) -> String {
    let n = rng.usize(len);
    std::iter::repeat_with(|| rng.alphanumeric())
        .take(n)
        .collect()
}

/// A plausible request target on an HTTP port, for a stream that does not exist.
fn plausible_path(rng: &mut Rng, port: Port) -> String {
    let name = format!("nx-{}", token(rng, 4..10));
    match port {
        Port::Http => format!("/live/{name}.flv"),
        Port::HttpApi => format!("/rtc/v1/whip/?app=live&stream={name}"),
        _ => "/api/v1/streams".to_owned(),
    }
}

fn http_head(method: &str, path: &str, host: SocketAddr, extra: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}")
}

/// An SDP offer the proxy would pass on (the FAKE origin refuses `nx-*` streams).
fn offer(rng: &mut Rng) -> String {
    format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\n",
        token(rng, 4..12),
        token(rng, 22..24)
    )
}

// ---------------------------------------------------------------- TCP attacks

async fn silent(h: &Hostiles, rng: &mut Rng, deadline: Instant) -> Outcome {
    let port = pick(rng, &TCP);
    let conn = h.connect(rng, port, deadline).await?;
    Ok(conn.hold(deadline).await)
}

async fn random_bytes(h: &Hostiles, rng: &mut Rng, deadline: Instant) -> Outcome {
    let port = pick(rng, &TCP);
    let mut conn = h.connect(rng, port, deadline).await?;
    let bytes = junk(rng, 1..=8192);
    conn.send(&bytes).await?;
    Ok(conn.hold(deadline).await)
}

async fn rtmp_junk(h: &Hostiles, rng: &mut Rng, deadline: Instant) -> Outcome {
    let mut conn = h.connect(rng, Port::Rtmp, deadline).await?;
    let mut c0c1 = junk(rng, 1537..=1537);
    c0c1[0] = 3;
    conn.send(&c0c1).await?;
    conn.watch(Duration::from_millis(200), deadline).await?;
    for _ in 0..rng.usize(1..=4) {
        let bytes = junk(rng, 64..=4096);
        conn.send(&bytes).await?;
    }
    Ok(conn.hold(deadline).await)
}

async fn rtmp_huge_message(h: &Hostiles, rng: &mut Rng, deadline: Instant) -> Outcome {
    let mut conn = h.connect(rng, Port::Rtmp, deadline).await?;
    let mut c0c1 = junk(rng, 1537..=1537);
    c0c1[0] = 3;
    c0c1[1..9].fill(0);
    conn.send(&c0c1).await?;
    conn.read_at_least(1 + 2 * 1536, deadline).await?;
    let c2 = conn.received[1..1 + 1536].to_vec();
    conn.send(&c2).await?;
    let tc_url = format!("rtmp://{}/live", h.targets.rtmp);
    let mut out = BytesMut::new();
    Command::connect("live", &tc_url)
        .to_message(0)
        .and_then(|msg| ChunkWriter::new().write(&msg, &mut out))
        .map_err(|e| Verdict::new(format!("rtmp: encoding connect: {e}")))?;
    conn.send(&out).await?;
    // A type 0 chunk header on a fresh chunk stream: 1-16 MiB of audio, video, data or
    // command, whose bytes then come 128 at a time every half second.
    let len = rng.u32(1 << 20..1 << 24).to_be_bytes();
    let kind = pick(rng, &[8u8, 9, 18, 20]);
    let header = [
        rng.u8(4..64),
        0,
        0,
        0,
        len[1],
        len[2],
        len[3],
        kind,
        0,
        0,
        0,
        0,
    ];
    conn.send(&header).await?;
    while Instant::now() < deadline {
        let piece = junk(rng, 128..=128);
        conn.send(&piece).await?;
        conn.watch(Duration::from_millis(500), deadline).await?;
    }
    Ok(conn.ended("held"))
}

async fn http_endless_head(h: &Hostiles, rng: &mut Rng, deadline: Instant) -> Outcome {
    let port = pick(rng, &HTTP);
    let mut conn = h.connect(rng, port, deadline).await?;
    let slow = rng.bool();
    conn.variant = if slow { "slow" } else { "fast" };
    let path = plausible_path(rng, port);
    conn.send(http_head("GET", &path, h.targets.addr(port), "").as_bytes())
        .await?;
    let (pad, every) = if slow {
        (8, Duration::from_millis(300))
    } else {
        (1000, Duration::from_millis(2))
    };
    let mut n = 0;
    while Instant::now() < deadline {
        let line = format!("X-Pad-{n}: {}\r\n", "a".repeat(pad));
        conn.send(line.as_bytes()).await?;
        conn.watch(every, deadline).await?;
        n += 1;
    }
    Ok(conn.ended("held"))
}

async fn http_many_headers(h: &Hostiles, rng: &mut Rng, deadline: Instant) -> Outcome {
    let port = pick(rng, &HTTP);
    let mut conn = h.connect(rng, port, deadline).await?;
    let path = plausible_path(rng, port);
    let mut head = http_head("GET", &path, h.targets.addr(port), "");
    for i in 0..1000 {
        head.push_str(&format!("X-Many-{i}: {i}\r\n"));
    }
    head.push_str("\r\n");
    conn.send(head.as_bytes()).await?;
    Ok(conn.hold(deadline).await)
}

async fn http_huge_body(h: &Hostiles, rng: &mut Rng, deadline: Instant) -> Outcome {
    let port = pick(rng, &HTTP);
    let mut conn = h.connect(rng, port, deadline).await?;
    let path = match port {
        Port::Http => format!("/live/nx-{}.flv", token(rng, 4..10)),
        Port::HttpApi => format!("/rtc/v1/whip/?app=live&stream=nx-{}", token(rng, 4..10)),
        _ => "/api/v1/srs/register".to_owned(),
    };
    let length = pick(
        rng,
        &[
            "1000000000",
            "1099511627776",
            "18446744073709551615",
            "99999999999999999999999",
        ],
    );
    let extra = format!("Content-Type: application/sdp\r\nContent-Length: {length}\r\n\r\n");
    conn.send(http_head("POST", &path, h.targets.addr(port), &extra).as_bytes())
        .await?;
    let some = junk(rng, 0..2048);
    conn.send(&some).await?;
    Ok(conn.hold(deadline).await)
}

/// Sends `GET /healthz` on a kept-alive connection and reads the whole answer; `None` if
/// the connection ended or the answer was not a complete `Content-Length` response.
async fn keep_alive_request(conn: &mut Conn, xff: &str, deadline: Instant) -> Option<u16> {
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Forwarded-For: {xff}\r\n\r\n",
        conn.sock.peer_addr().ok()?
    );
    conn.sock.write_all(head.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let until = (Instant::now() + Duration::from_secs(5)).min(deadline);
    loop {
        let n = tokio::time::timeout_at(until, conn.sock.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())?;
        if raw.len() >= end + 4 + length {
            return http_status(&raw);
        }
    }
}

async fn api_keep_alive(h: &Hostiles, rng: &mut Rng, deadline: Instant) -> Outcome {
    let source = h.source(rng);
    let mut open = Vec::new();
    for _ in 0..KEEP_ALIVE_CONNECTIONS {
        if let Ok(conn) = h
            .connect_from(source, Port::SystemApi, None, deadline)
            .await
        {
            open.push(conn);
        }
    }
    let started = Instant::now();
    let mut served = 0;
    let mut longest = Duration::ZERO;
    // Every 5 s, a request on each connection still open; the proxy ends them (per-IP
    // limit at once, connection age at 60 s) or we give up.
    let mut first_round = true;
    while !open.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for mut conn in open {
            h.pace.go().await;
            let xff = format!("10.{}.{}.{}", rng.u8(..), rng.u8(..), rng.u8(..));
            match keep_alive_request(&mut conn, &xff, deadline).await {
                Some(200) => {
                    served += usize::from(first_round);
                    still.push(conn);
                }
                _ => longest = longest.max(conn.opened.elapsed()),
            }
        }
        open = still;
        first_round = false;
        let pause = (Instant::now() + Duration::from_secs(5)).min(deadline);
        tokio::time::sleep_until(pause).await;
    }
    let how = if open.is_empty() {
        "all closed by the proxy"
    } else {
        "some held"
    };
    Ok(Verdict {
        label: format!("system-api: {served} of {KEEP_ALIVE_CONNECTIONS} served, {how}"),
        open: Some(if open.is_empty() {
            longest
        } else {
            started.elapsed()
        }),
    })
}

async fn missing_stream(h: &Hostiles, rng: &mut Rng, deadline: Instant) -> Outcome {
    let mut conn = h.connect(rng, Port::Http, deadline).await?;
    let name = format!("nx-{}", token(rng, 4..12));
    let (variant, path) = match rng.u8(0..6) {
        0 => ("flv", format!("/live/{name}.flv")),
        1 => ("m3u8", format!("/live/{name}.m3u8")),
        2 => ("ts", format!("/live/{name}.ts")),
        3 => (
            "segment",
            format!("/live/{name}-7.ts?spbhid={}", token(rng, 8..24)),
        ),
        4 => ("other app", format!("/nx-app/{name}.flv")),
        _ => (
            "vhost",
            format!("/live/{name}.flv?vhost=nx-{}", token(rng, 4..10)),
        ),
    };
    conn.variant = variant;
    let head = http_head("GET", &path, h.targets.http, "Connection: close\r\n\r\n");
    conn.send(head.as_bytes()).await?;
    Ok(conn.hold(deadline).await)
}

async fn whip_forged(h: &Hostiles, rng: &mut Rng, deadline: Instant) -> Outcome {
    let mut conn = h.connect(rng, Port::HttpApi, deadline).await?;
    let method = if rng.bool() { "DELETE" } else { "PATCH" };
    conn.variant = if method == "DELETE" {
        "DELETE"
    } else {
        "PATCH"
    };
    let tok = token(rng, 4..16);
    let path = match rng.u8(0..5) {
        0 => "/rtc/v1/whip/".to_owned(),
        1 => "/rtc/v1/whep/".to_owned(),
        2 => format!("/rtc/v1/whip/{tok}"),
        3 => format!("/{tok}"),
        _ => "/".to_owned(),
    };
    let ufrag = match rng.u8(0..4) {
        0 => token(rng, 4..12),
        1 => "u".repeat(3000),
        2 => String::new(),
        _ => "%00%2F..%2F".to_owned(),
    };
    let origin = match rng.u8(0..5) {
        0 => ORIGIN_ID.to_owned(),
        1 => token(rng, 1..12),
        2 => "o".repeat(3000),
        3 => "..%2F..%2Fetc".to_owned(),
        _ => "127.0.0.1:22".to_owned(),
    };
    let mut query = vec![
        format!("proxy_ufrag={ufrag}"),
        format!("proxy_origin={origin}"),
    ];
    if rng.bool() {
        query.push(format!("action=delete&token={}", token(rng, 4..16)));
    }
    rng.shuffle(&mut query);
    let target = format!("{path}?{}", query.join("&"));
    let body = if method == "PATCH" {
        format!(
            "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n",
            token(rng, 4..8),
            token(rng, 22..24)
        )
    } else {
        String::new()
    };
    let extra = format!(
        "Content-Type: application/trickle-ice-sdpfrag\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.send(http_head(method, &target, h.targets.http_api, &extra).as_bytes())
        .await?;
    Ok(conn.hold(deadline).await)
}

async fn whip_guessed(h: &Hostiles, rng: &mut Rng, deadline: Instant) -> Outcome {
    let mut conn = h.connect(rng, Port::HttpApi, deadline).await?;
    let target = format!(
        "/rtc/v1/whip/?action=delete&token=forged{}&proxy_ufrag={}&proxy_origin={ORIGIN_ID}",
        rng.u32(..),
        h.guess_live_ufrag(rng)
    );
    let extra = "Content-Length: 0\r\nConnection: close\r\n\r\n";
    conn.send(http_head("DELETE", &target, h.targets.http_api, extra).as_bytes())
        .await?;
    Ok(conn.hold(deadline).await)
}

async fn flv_no_read(h: &Hostiles, rng: &mut Rng, deadline: Instant) -> Outcome {
    let source = h.source(rng);
    // A small receive buffer, so that the proxy's writes stall within seconds instead of
    // filling megabytes of loopback buffers first.
    let mut conn = h
        .connect_from(source, Port::Http, Some(4096), deadline)
        .await?;
    let path = format!("/live/slow-{}.flv", token(rng, 4..10));
    let head = http_head("GET", &path, h.targets.http, "\r\n");
    conn.send(head.as_bytes()).await?;
    let head_by = (Instant::now() + Duration::from_secs(10)).min(deadline);
    while http_status(&conn.received).is_none() && Instant::now() < head_by {
        conn.watch(Duration::from_millis(50), head_by).await?;
    }
    if http_status(&conn.received) != Some(200) {
        return Ok(conn.hold(deadline).await);
    }
    tokio::time::sleep_until(deadline).await;
    // Now drain: a proxy that gave up on us has closed the connection behind the data
    // it had queued; one that still streams keeps the bytes coming.
    let unread = conn.opened.elapsed();
    let mut buf = vec![0u8; 64 * 1024];
    let drain_until = Instant::now() + Duration::from_secs(3);
    let mut drained = 0usize;
    let how = loop {
        match tokio::time::timeout_at(drain_until, conn.sock.read(&mut buf)).await {
            Err(_) if drained > 64 * 1024 => break "still streaming when read again",
            Err(_) => break "open but silent when read again",
            Ok(Ok(0)) => break "closed while unread",
            Ok(Ok(n)) => drained += n,
            Ok(Err(_)) => break "reset while unread",
        }
    };
    Ok(Verdict {
        label: format!("http: HTTP 200, {how}"),
        open: Some(unread),
    })
}

async fn xff_spoof(h: &Hostiles, rng: &mut Rng, deadline: Instant) -> Outcome {
    let port = pick(rng, &HTTP);
    let mut conn = h.connect(rng, port, deadline).await?;
    let random_ip = |rng: &mut Rng| {
        format!(
            "{}.{}.{}.{}",
            rng.u8(1..224),
            rng.u8(..),
            rng.u8(..),
            rng.u8(..)
        )
    };
    let xff = match rng.u8(0..5) {
        0 => random_ip(rng),
        1 => "127.0.0.1".to_owned(),
        2 => (0..50)
            .map(|_| random_ip(rng))
            .collect::<Vec<_>>()
            .join(", "),
        3 => "x".repeat(4096),
        _ => "unknown, <script>, ::1".to_owned(),
    };
    let mut extra = format!("X-Forwarded-For: {xff}\r\n");
    if rng.bool() {
        extra.push_str(&format!(
            "X-Real-IP: {}\r\nForwarded: for={};proto=https\r\n",
            random_ip(rng),
            random_ip(rng)
        ));
    }
    let (method, path, body) = match port {
        Port::Http => (
            "GET",
            format!("/live/nx-{}.flv", token(rng, 4..10)),
            String::new(),
        ),
        Port::HttpApi => (
            "POST",
            format!("/rtc/v1/whip/?app=live&stream=nx-{}", token(rng, 4..10)),
            offer(rng),
        ),
        _ => ("GET", "/api/v1/streams".to_owned(), String::new()),
    };
    extra.push_str(&format!(
        "Content-Type: application/sdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    conn.send(http_head(method, &path, h.targets.addr(port), &extra).as_bytes())
        .await?;
    Ok(conn.hold(deadline).await)
}

// ---------------------------------------------------------------- UDP attacks

/// Waits `d` for any datagram back.
async fn answered(sock: &UdpSocket, d: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 2048];
    match tokio::time::timeout(d, sock.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

fn udp_verdict(port: Port, variant: &str, answer: Option<Vec<u8>>) -> Verdict {
    let said = if answer.is_some() {
        "answered"
    } else {
        "silent"
    };
    let variant = if variant.is_empty() {
        String::new()
    } else {
        format!(" {variant}")
    };
    Verdict::new(format!("{}{variant}: {said}", port.name()))
}

async fn udp_random(h: &Hostiles, rng: &mut Rng) -> Outcome {
    let port = pick(rng, &UDP);
    let sock = h.udp(rng, port).await?;
    for _ in 0..rng.usize(1..=10) {
        let mut d = junk(rng, 1..=1500);
        match rng.u8(0..6) {
            // STUN-looking: binding request type, magic cookie.
            0 if d.len() >= 20 => {
                d[..2].copy_from_slice(&[0, 1]);
                d[4..8].copy_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
            }
            1 => d[0] = 0x80,                                                 // RTP
            2 if d.len() >= 3 => d[..3].copy_from_slice(&[0x16, 0xFE, 0xFD]), // DTLS
            3 => d[0] |= 0x80, // SRT control, random type and id
            4 => d[0] &= 0x7F, // SRT data, random id
            _ => {}
        }
        h.send_datagram(&sock, port, &d).await?;
    }
    Ok(udp_verdict(
        port,
        "",
        answered(&sock, Duration::from_millis(300)).await,
    ))
}

/// A binding request built by hand: any username bytes, a MESSAGE-INTEGRITY of random
/// bytes, sometimes no FINGERPRINT.
fn raw_stun(rng: &mut Rng, username: &[u8]) -> Vec<u8> {
    let mut attrs = Vec::new();
    let mut attr = |t: u16, v: &[u8]| {
        attrs.extend_from_slice(&t.to_be_bytes());
        attrs.extend_from_slice(&(v.len() as u16).to_be_bytes());
        attrs.extend_from_slice(v);
        attrs.resize(attrs.len().next_multiple_of(4), 0);
    };
    attr(0x0006, username);
    attr(0x0008, &junk(rng, 20..=20));
    if rng.bool() {
        attr(0x8028, &junk(rng, 4..=4));
    }
    let mut msg = vec![0x00, 0x01];
    msg.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    msg.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    msg.extend_from_slice(&junk(rng, 12..=12));
    msg.extend_from_slice(&attrs);
    msg
}

fn binding_request(
    rng: &mut Rng,
    server: &str,
    client: &str,
    key: &[u8],
) -> Result<Vec<u8>, Verdict> {
    let mut tid = [0u8; 12];
    rng.fill(&mut tid);
    let mut buf = [0u8; 1024];
    BindingRequest {
        transaction_id: TransactionId(tid),
        server_ufrag: server,
        client_ufrag: client,
        priority: rng.u32(..),
        role: if rng.bool() {
            IceRole::Controlling(rng.u64(..))
        } else {
            IceRole::Controlled(rng.u64(..))
        },
        use_candidate: rng.bool(),
        network_info: None,
    }
    .encode(&IntegrityKey::new(key), &mut buf)
    .map(<[u8]>::to_vec)
    .map_err(|e| Verdict::new(format!("webrtc: encoding STUN: {e}")))
}

async fn stun_bad_integrity(h: &Hostiles, rng: &mut Rng) -> Outcome {
    let sock = h.udp(rng, Port::WebRtc).await?;
    let (variant, msg) = if rng.bool() {
        let username = junk(rng, 0..600);
        ("random username", raw_stun(rng, &username))
    } else {
        let server = h.guess_live_ufrag(rng);
        let client = token(rng, 4..12);
        let key = junk(rng, 22..=22);
        ("live ufrag", binding_request(rng, &server, &client, &key)?)
    };
    h.send_datagram(&sock, Port::WebRtc, &msg).await?;
    let answer = answered(&sock, Duration::from_millis(300)).await;
    Ok(udp_verdict(Port::WebRtc, variant, answer))
}

async fn stun_random_ufrag(h: &Hostiles, rng: &mut Rng) -> Outcome {
    let sock = h.udp(rng, Port::WebRtc).await?;
    let (server, client) = (token(rng, 4..32), token(rng, 4..32));
    let key = junk(rng, 22..=22);
    let msg = binding_request(rng, &server, &client, &key)?;
    h.send_datagram(&sock, Port::WebRtc, &msg).await?;
    let answer = answered(&sock, Duration::from_millis(300)).await;
    Ok(udp_verdict(Port::WebRtc, "", answer))
}

async fn srt_induction(h: &Hostiles, rng: &mut Rng) -> Outcome {
    let sock = h.udp(rng, Port::Srt).await?;
    let mut hs = Handshake::caller_induction(
        rng.u32(..),
        rng.u32(..) & 0x7FFF_FFFF,
        pick(rng, &[0, 76, 1500, u32::MAX]),
        pick(rng, &[0, 8192, u32::MAX]),
        h.targets.srt.ip(),
    );
    hs.cookie = rng.u32(..);
    if rng.bool() {
        let any = rng.u32(..);
        hs.version = pick(rng, &[0, 4, 5, any]);
    }
    if rng.bool() {
        hs.extension_field = rng.u16(..);
    }
    if rng.u8(0..4) == 0 {
        hs.header.dest_socket_id = rng.u32(..);
    }
    h.send_datagram(&sock, Port::Srt, &hs.to_vec()).await?;
    let answer = answered(&sock, Duration::from_millis(300)).await;
    Ok(udp_verdict(Port::Srt, "", answer))
}

/// An extension block as SRT frames it: type, length in 32-bit words, contents.
fn srt_block(kind: u16, words: u16, contents: &[u8]) -> Vec<u8> {
    let mut b = kind.to_be_bytes().to_vec();
    b.extend_from_slice(&words.to_be_bytes());
    b.extend_from_slice(contents);
    b
}

async fn srt_conclusion(h: &Hostiles, rng: &mut Rng) -> Outcome {
    let port = Port::Srt;
    let sock = h.udp(rng, port).await?;
    let socket_id = rng.u32(1..);
    let ip = h.targets.srt.ip();
    let induction = Handshake::caller_induction(socket_id, 1000, 1500, 8192, ip);
    h.send_datagram(&sock, port, &induction.to_vec()).await?;
    let Some(answer) = answered(&sock, Duration::from_secs(1)).await else {
        return Ok(Verdict::new("srt: induction not answered".into()));
    };
    let cookie = Handshake::parse(&answer)
        .map(|a| a.cookie)
        .map_err(|_| Verdict::new("srt: induction answer unreadable".into()))?;
    let captured = Handshake::parse(crate::FFMPEG_CONCLUSION)
        .map_err(|e| Verdict::new(format!("srt: captured conclusion: {e}")))?;
    let hsreq = captured
        .extensions
        .find(ExtensionType::HsReq)
        .map(|b| b.contents.to_vec())
        .unwrap_or_default();
    let conclusion = |cookie: u32| Handshake {
        header: ControlHeader {
            dest_socket_id: 0,
            ..captured.header
        },
        extension_field: ext_flags::HSREQ | ext_flags::CONFIG,
        socket_id,
        cookie,
        initial_seq: 1000,
        peer_ip: PeerIp::from_ip(ip),
        extensions: Extensions::EMPTY,
        ..captured
    };
    let hsreq_block = srt_block(1, (hsreq.len() / 4) as u16, &hsreq);
    let (variant, datagram) = match rng.u8(0..5) {
        0 => {
            let mut blocks = Vec::new();
            let sid = encode_text(&format!("#!::r=live/nx-{},m=publish", token(rng, 4..10)))
                .unwrap_or_default();
            let _ = push_extension(&mut blocks, ExtensionType::HsReq, &hsreq);
            let _ = push_extension(&mut blocks, ExtensionType::Sid, &sid);
            let mut d = conclusion(rng.u32(..)).encode_base().to_vec();
            d.extend_from_slice(&blocks);
            ("wrong cookie", d)
        }
        1 => {
            let mut d = conclusion(cookie).encode_base().to_vec();
            let garbage = junk(rng, 1..400);
            d.extend_from_slice(&garbage);
            ("garbage extensions", d)
        }
        2 => {
            let mut d = conclusion(cookie).encode_base().to_vec();
            d.extend_from_slice(&hsreq_block);
            let words = rng.usize(150..350);
            let sid: Vec<u8> = std::iter::repeat_with(|| rng.alphanumeric() as u8)
                .take(words * 4)
                .collect();
            d.extend_from_slice(&srt_block(5, (sid.len() / 4) as u16, &sid));
            ("oversized streamid", d)
        }
        3 => {
            let mut d = conclusion(cookie).encode_base().to_vec();
            d.extend_from_slice(&hsreq_block);
            d.extend_from_slice(&srt_block(5, 1000, b"#!::r=live/nx-lie"));
            ("lying block length", d)
        }
        _ => {
            let mut d = conclusion(cookie).encode_base().to_vec();
            d.extend_from_slice(&hsreq_block);
            let jumbo = junk(rng, 2000..9000);
            d.extend_from_slice(&jumbo);
            ("jumbo datagram", d)
        }
    };
    h.send_datagram(&sock, port, &datagram).await?;
    let answer = answered(&sock, Duration::from_millis(500)).await;
    let said = match answer.as_deref().map(Handshake::parse) {
        None => "silent",
        Some(Ok(a)) if matches!(a.kind, HandshakeType::Rejection(_)) => "rejected",
        Some(Ok(a)) if a.kind == HandshakeType::Conclusion => "ACCEPTED",
        Some(_) => "answered",
    };
    Ok(Verdict::new(format!("srt {variant}: {said}")))
}

async fn udp_flood(h: &Hostiles, rng: &mut Rng) -> Outcome {
    let port = pick(rng, &UDP);
    let sock = h.udp(rng, port).await?;
    for _ in 0..rng.usize(10..=60) {
        // One pace slot per burst of 16.
        h.pace.go().await;
        for _ in 0..16 {
            let d = junk(rng, 1..=64);
            if let Err(e) = sock.send(&d).await {
                if !matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::ConnectionRefused
                ) {
                    return Err(Verdict::new(format!(
                        "{}: send: {:?}",
                        port.name(),
                        e.kind()
                    )));
                }
            }
        }
    }
    let answer = answered(&sock, Duration::from_millis(100)).await;
    Ok(udp_verdict(port, "flood", answer))
}
