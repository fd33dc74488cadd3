//! End-to-end tests of the srt front-end: libsrt on both sides of the proxy. ffmpeg is the
//! client (publisher or player), srt-live-transmit the origin; hostile and hand-made
//! handshakes come from a plain UDP socket, built with `srt_streamid`.

use std::io::Read;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use srt_streamid::extension::{encode_text, push_extension};
use srt_streamid::handshake::ext_flags;
use srt_streamid::packet::control_type;
use srt_streamid::{
    classify, dest_socket_id, ControlHeader, DataHeader, ExtensionType, Extensions, Handshake,
    HandshakeType, KeyFlags, PacketKind, PacketPosition, PeerIp, RejectReason,
};

use crate::harness::{
    ffmpeg_count_frames, ffmpeg_publish, free_udp_port, http, require_program, wait_for, Process,
    Proxy, TempDir,
};

const PASSPHRASE: &str = "0123456789abcdef";

// ------------------------------------------------------------------------------ helpers

/// A UDP socket collecting what an origin forwards (srt-live-transmit's `udp://` output),
/// so the test sees the bytes as they arrive.
pub(crate) struct UdpSink {
    port: u16,
    data: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpSink {
    pub(crate) fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binding the sink");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let port = socket.local_addr().unwrap().port();
        let (data, stop) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(AtomicBool::new(false)),
        );
        let (into, stopped) = (data.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while !stopped.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    into.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }
        });
        UdpSink {
            port,
            data,
            stop,
            thread: Some(thread),
        }
    }

    fn len(&self) -> usize {
        self.data.lock().unwrap().len()
    }

    /// Waits until at least `bytes` have arrived.
    pub(crate) fn wait_for(&self, bytes: usize, timeout: Duration) -> bool {
        wait_for(timeout, || (self.len() >= bytes).then_some(())).is_some()
    }

    /// Video frames ffprobe decodes from what arrived (MPEG-TS).
    fn frames(&self) -> u64 {
        let dir = TempDir::new("srt-sink");
        let path = dir.path().join("received.ts");
        std::fs::write(&path, &*self.data.lock().unwrap()).unwrap();
        count_frames(&path)
    }
}

impl Drop for UdpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn count_frames(path: &std::path::Path) -> u64 {
    let ffprobe = require_program("ffprobe", "ffmpeg");
    let out = Command::new(ffprobe)
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("running ffprobe");
    // The stream is listed under its program too: the same number, twice.
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether something has bound UDP `port` (srt-live-transmit cannot say when it is up).
fn udp_bound(port: u16) -> bool {
    let needle = format!(":{port:04X}");
    ["/proc/net/udp", "/proc/net/udp6"].iter().any(|table| {
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|local| local.ends_with(&needle))
            })
    })
}

fn wait_udp_bound(port: u16) {
    let up = wait_for(Duration::from_secs(10), || udp_bound(port).then_some(()));
    assert!(up.is_some(), "nothing bound udp port {port} within 10 s");
}

/// srt-live-transmit: `source` to `target`, quiet; stopped on drop.
fn srt_live_transmit(source: &str, target: &str) -> Process {
    let program = require_program("srt-live-transmit", "srt-tools");
    let mut cmd = Command::new(program);
    cmd.args(["-q", source, target])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Process::spawn("srt-live-transmit", &mut cmd)
}

/// An SRT origin: a libsrt listener on 127.0.0.1:`port` that forwards what a caller
/// publishes to `sink`.
pub(crate) fn sink_origin(port: u16, options: &str, sink: &UdpSink) -> Process {
    let origin = srt_live_transmit(
        &format!("srt://127.0.0.1:{port}?mode=listener{options}"),
        &format!("udp://127.0.0.1:{}", sink.port),
    );
    wait_udp_bound(port);
    origin
}

fn origin_toml(name: &str, srt_port: u16) -> String {
    format!("[[origins]]\nname = \"{name}\"\nsrt = {srt_port}\n")
}

pub(crate) fn srt_url(proxy: SocketAddr, streamid: &str, extra: &str) -> String {
    format!("srt://{proxy}?streamid={streamid}{extra}")
}

/// Waits for the process to exit, up to `timeout`.
fn wait_exit(process: &mut Process, timeout: Duration) -> Option<ExitStatus> {
    wait_for(timeout, || process.child.try_wait().ok().flatten())
}

/// What the process wrote to its (piped) stderr, once it has exited.
fn stderr_of(process: &mut Process) -> String {
    let mut text = String::new();
    if let Some(mut e) = process.child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    text
}

/// ffmpeg publishing a generated clip to an SRT URL, with libsrt's messages on stderr.
pub(crate) fn ffmpeg_srt_publish(url: &str, seconds: u32) -> Process {
    let ffmpeg = require_program("ffmpeg", "ffmpeg");
    let mut cmd = Command::new(ffmpeg);
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "warning",
        "-nostdin",
        "-re",
        "-f",
        "lavfi",
    ]);
    cmd.args([
        "-i",
        &format!("testsrc=size=320x240:rate=25:duration={seconds}"),
    ]);
    cmd.args([
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "25",
        "-f",
        "mpegts",
        url,
    ]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    Process::spawn("ffmpeg srt publisher", &mut cmd)
}

fn streams(proxy: &Proxy) -> serde_json::Value {
    http("GET", proxy.addr("system-api"), "/api/v1/streams", &[], b"").json()
}

/// The stream's entry in /api/v1/streams.
fn stream_entry(proxy: &Proxy, name: &str) -> Option<serde_json::Value> {
    let all = streams(proxy);
    all["data"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
}

pub(crate) fn wait_log(proxy: &Proxy, needle: &str, timeout: Duration) -> bool {
    wait_for(timeout, || proxy.log_text().contains(needle).then_some(())).is_some()
}

/// A hand-made SRT caller on a plain UDP socket.
struct Caller {
    socket: UdpSocket,
    proxy: SocketAddr,
    id: u32,
}

impl Caller {
    fn new(proxy: SocketAddr) -> Self {
        let local: SocketAddr = if proxy.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        }
        .parse()
        .unwrap();
        let socket = UdpSocket::bind(local).unwrap();
        socket.connect(proxy).unwrap();
        Caller {
            socket,
            proxy,
            id: fastrand::u32(1..1 << 30),
        }
    }

    fn send(&self, packet: &[u8]) {
        self.socket.send(packet).unwrap();
    }

    /// The next datagram within `timeout`.
    fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 2048];
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())?;
            self.socket.set_read_timeout(Some(left)).unwrap();
            if let Ok(n) = self.socket.recv(&mut buf) {
                return Some(buf[..n].to_vec());
            }
        }
    }

    /// The next handshake addressed to this caller within `timeout`, skipping other packets.
    fn handshake(&self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let packet = self.recv(left)?;
            if classify(&packet) == Some(PacketKind::Handshake)
                && dest_socket_id(&packet) == Some(self.id)
            {
                return Some(packet);
            }
        }
    }

    fn induction(&self) -> Vec<u8> {
        Handshake::caller_induction(self.id, 0x1234, 1500, 8192, self.proxy.ip()).to_vec()
    }

    /// Sends an induction and returns the cookie of the proxy's answer.
    fn cookie(&self) -> u32 {
        self.send(&self.induction());
        let answer = self
            .handshake(Duration::from_secs(3))
            .expect("the proxy answers an induction");
        let hs = Handshake::parse(&answer).unwrap();
        assert_eq!((hs.kind, hs.version), (HandshakeType::Induction, 5));
        assert_ne!(hs.cookie, 0);
        hs.cookie
    }

    /// A conclusion with this cookie and these extension blocks.
    fn conclusion(&self, cookie: u32, extensions: &[u8]) -> Vec<u8> {
        Handshake {
            header: ControlHeader::new(control_type::HANDSHAKE),
            version: 5,
            encryption: 0,
            extension_field: ext_flags::HSREQ | ext_flags::CONFIG,
            initial_seq: 0x1234,
            mtu: 1500,
            flow_window: 8192,
            kind: HandshakeType::Conclusion,
            socket_id: self.id,
            cookie,
            peer_ip: PeerIp::from_ip(self.proxy.ip()),
            extensions: Extensions::parse(extensions).expect("well-formed blocks"),
        }
        .to_vec()
    }

    /// Induction, then a conclusion with these blocks; the handshake that answers it.
    fn connect(&self, extensions: &[u8], timeout: Duration) -> Option<Handshake<'static>> {
        let cookie = self.cookie();
        self.send(&self.conclusion(cookie, extensions));
        let answer = self.handshake(timeout)?;
        Some(Handshake::parse(Box::leak(answer.into_boxed_slice())).unwrap())
    }
}

/// The HSREQ ffmpeg (libsrt 1.5) sends, then a SID block: what a real origin needs.
fn hsreq_and_sid(streamid: &str) -> Vec<u8> {
    let captured = include_bytes!("../../../srt-streamid/tests/data/ffmpeg_conclusion.bin");
    let hs = Handshake::parse(captured).unwrap();
    let hsreq = hs
        .extensions
        .find(ExtensionType::HsReq)
        .expect("ffmpeg sends HSREQ");
    let mut ext = Vec::new();
    push_extension(&mut ext, ExtensionType::HsReq, hsreq.contents).unwrap();
    if !streamid.is_empty() {
        push_extension(
            &mut ext,
            ExtensionType::Sid,
            &encode_text(streamid).unwrap(),
        )
        .unwrap();
    }
    ext
}

fn rejection(hs: &Handshake<'_>) -> Option<RejectReason> {
    match hs.kind {
        HandshakeType::Rejection(r) => Some(r),
        _ => None,
    }
}

// -------------------------------------------------------------------------------- tests

#[test]
fn ffmpeg_publishes_through_the_proxy_to_an_srt_origin() {
    let sink = UdpSink::start();
    let origin_port = free_udp_port();
    let _origin = sink_origin(origin_port, "", &sink);
    let proxy = Proxy::start(&[], &[], Some(&origin_toml("slt", origin_port)));

    let url = srt_url(proxy.addr("srt"), "#!::r=live/cam,m=publish", "");
    let mut publisher = ffmpeg_publish(&url, 4, true, "mpegts");
    let listed = wait_for(Duration::from_secs(10), || {
        stream_entry(&proxy, "cam").filter(|s| s["sessions"]["publishers"] == 1)
    })
    .unwrap_or_else(|| {
        panic!(
            "no SRT publisher in /api/v1/streams; proxy log:\n{}",
            proxy.log_text()
        )
    });
    assert_eq!(listed["origin"], "slt");
    assert_eq!(listed["sessions"]["clients"][0]["protocol"], "srt");

    let status = wait_exit(&mut publisher, Duration::from_secs(20)).expect("ffmpeg finished");
    assert!(
        status.success(),
        "ffmpeg: {}\nproxy log:\n{}",
        stderr_of(&mut publisher),
        proxy.log_text()
    );
    assert!(
        sink.wait_for(50_000, Duration::from_secs(5)),
        "the origin forwarded {} bytes",
        sink.len()
    );
    let frames = sink.frames();
    assert!(
        frames >= 60,
        "the origin received {frames} decodable frames of 100"
    );

    assert!(
        wait_log(&proxy, "SRT session ended", Duration::from_secs(5)),
        "{}",
        proxy.log_text()
    );
    let log = proxy.log_text();
    let started = log
        .lines()
        .find(|l| l.contains("SRT session started"))
        .unwrap();
    for field in [
        "stream=__defaultVhost__/live/cam",
        "origin=slt",
        "mode=Publish",
    ] {
        assert!(started.contains(field), "{started}");
    }
    let ended = log
        .lines()
        .find(|l| l.contains("SRT session ended"))
        .unwrap();
    assert!(ended.contains("reason=\"client shutdown\""), "{ended}");
    let up: u64 = ended
        .split("bytes_to_origin=")
        .nth(1)
        .and_then(|v| v.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        up as usize >= sink.len(),
        "{ended}: counted bytes cover what the origin received"
    );
    let gone = wait_for(Duration::from_secs(2), || {
        stream_entry(&proxy, "cam").filter(|s| s["sessions"]["publishers"] == 0)
    });
    assert!(gone.is_some(), "the session is unregistered");
}

#[test]
fn ffmpeg_plays_through_the_proxy_from_an_srt_origin() {
    // The origin serves SRT callers what arrives on a UDP port, where ffmpeg feeds it.
    let (feed_port, origin_port) = (free_udp_port(), free_udp_port());
    let _origin = srt_live_transmit(
        &format!("udp://127.0.0.1:{feed_port}"),
        &format!("srt://127.0.0.1:{origin_port}?mode=listener"),
    );
    wait_udp_bound(feed_port);
    let _feed = ffmpeg_publish(
        &format!("udp://127.0.0.1:{feed_port}?pkt_size=1316"),
        30,
        true,
        "mpegts",
    );
    wait_udp_bound(origin_port);
    let proxy = Proxy::start(&[], &[], Some(&origin_toml("slt", origin_port)));

    let url = srt_url(proxy.addr("srt"), "#!::r=live/cam,m=request", "");
    let (frames, log) = ffmpeg_count_frames(&url, 2);
    assert!(
        frames >= 25,
        "decoded {frames} frames through the proxy; ffmpeg said:\n{log}\nproxy log:\n{}",
        proxy.log_text()
    );
    assert!(wait_log(
        &proxy,
        "SRT session ended",
        Duration::from_secs(5)
    ));
    let log = proxy.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("SRT session started") && l.contains("mode=Request")),
        "{log}"
    );
    let ended = log
        .lines()
        .find(|l| l.contains("SRT session ended"))
        .unwrap();
    let down: u64 = ended
        .split("bytes_to_client=")
        .nth(1)
        .and_then(|v| v.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(down > 20_000, "{ended}");
}

#[test]
fn encryption_passes_through_and_an_origins_rejection_reaches_the_client() {
    let sink = UdpSink::start();
    let origin_port = free_udp_port();
    let _origin = sink_origin(origin_port, &format!("&passphrase={PASSPHRASE}"), &sink);
    // The proxy is given no passphrase: KMREQ/KMRSP and the encrypted payload pass through.
    let proxy = Proxy::start(&[], &[], Some(&origin_toml("secret", origin_port)));
    let srt = proxy.addr("srt");

    // Without the passphrase the origin refuses, and that refusal is what ffmpeg hears.
    let started = Instant::now();
    let mut clear = ffmpeg_srt_publish(&srt_url(srt, "#!::r=live/cam,m=publish", ""), 2);
    let status = wait_exit(&mut clear, Duration::from_secs(10)).expect("ffmpeg gave up");
    let err = stderr_of(&mut clear);
    assert!(!status.success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused in {:?}",
        started.elapsed()
    );
    assert!(
        err.contains("Password required or unexpected"),
        "ffmpeg's log: {err}"
    );
    assert!(
        wait_log(&proxy, "rejected it (Unsecure, 11)", Duration::from_secs(2)),
        "{}",
        proxy.log_text()
    );

    let url = srt_url(
        srt,
        "#!::r=live/cam,m=publish",
        &format!("&passphrase={PASSPHRASE}"),
    );
    let mut publisher = ffmpeg_srt_publish(&url, 3);
    let status = wait_exit(&mut publisher, Duration::from_secs(20)).expect("ffmpeg finished");
    assert!(
        status.success(),
        "ffmpeg: {}\nproxy log:\n{}",
        stderr_of(&mut publisher),
        proxy.log_text()
    );
    assert!(
        sink.wait_for(20_000, Duration::from_secs(5)),
        "the origin decrypted {} bytes",
        sink.len()
    );
    let frames = sink.frames();
    assert!(
        frames >= 40,
        "the origin decrypted {frames} decodable frames of 75"
    );
}

#[test]
fn two_streams_reach_two_origins_through_one_port() {
    let (sink_a, sink_b) = (UdpSink::start(), UdpSink::start());
    let (port_a, port_b) = (free_udp_port(), free_udp_port());
    let _a = sink_origin(port_a, "", &sink_a);
    let _b = sink_origin(port_b, "", &sink_b);
    let config = format!("{}{}", origin_toml("a", port_a), origin_toml("b", port_b));
    let proxy = Proxy::start(&[("lb-strategy", "round-robin")], &[], Some(&config));
    let srt = proxy.addr("srt");

    let mut one = ffmpeg_srt_publish(&srt_url(srt, "#!::r=live/one,m=publish", ""), 4);
    let mut two = ffmpeg_srt_publish(
        &srt_url(srt, "#!::h=example.com,r=live/two,m=publish", ""),
        4,
    );
    for p in [&mut one, &mut two] {
        let status = wait_exit(p, Duration::from_secs(20)).expect("ffmpeg finished");
        assert!(
            status.success(),
            "ffmpeg: {}\nproxy log:\n{}",
            stderr_of(p),
            proxy.log_text()
        );
    }
    let origin_of =
        |name: &str| stream_entry(&proxy, name).map(|s| s["origin"].as_str().unwrap().to_owned());
    let (o1, o2) = (origin_of("one").unwrap(), origin_of("two").unwrap());
    assert_ne!(
        o1, o2,
        "round-robin puts the two streams on the two origins"
    );
    assert!(streams(&proxy)["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["stream"] == "example.com/live/two"));
    for (name, sink) in [("a", &sink_a), ("b", &sink_b)] {
        assert!(
            sink.wait_for(30_000, Duration::from_secs(5)),
            "origin {name} got {} bytes",
            sink.len()
        );
        let frames = sink.frames();
        assert!(
            frames >= 60,
            "origin {name} got {frames} decodable frames of 100"
        );
    }
}

#[test]
fn without_an_origin_the_client_is_refused_at_once() {
    let proxy = Proxy::start(&[], &[], None);
    let srt = proxy.addr("srt");

    let caller = Caller::new(srt);
    let started = Instant::now();
    let answer = caller
        .connect(
            &hsreq_and_sid("#!::r=live/cam,m=publish"),
            Duration::from_secs(3),
        )
        .expect("an answer");
    assert_eq!(rejection(&answer), Some(RejectReason::Unavailable));
    assert_eq!(
        answer.kind.to_wire(),
        2503,
        "SRT_REJX_DOWN (1503) travels as 1000 + 1503"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // A retransmitted conclusion gets the same answer, from the stored state.
    let cookie = caller.cookie();
    caller.send(&caller.conclusion(cookie, &hsreq_and_sid("#!::r=live/cam,m=publish")));
    let again = caller
        .handshake(Duration::from_secs(2))
        .expect("the stored answer");
    assert_eq!(
        rejection(&Handshake::parse(&again).unwrap()),
        Some(RejectReason::Unavailable)
    );

    let started = Instant::now();
    let mut publisher = ffmpeg_srt_publish(&srt_url(srt, "#!::r=live/cam,m=publish", ""), 2);
    let status = wait_exit(&mut publisher, Duration::from_secs(10)).expect("ffmpeg gave up");
    let err = stderr_of(&mut publisher);
    assert!(!status.success(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "refused in {:?}, not timed out",
        started.elapsed()
    );
    // libsrt prints this for every reason of 1000 and up (on the wire: 2000 and up).
    assert!(
        err.contains("Application-defined rejection reason"),
        "ffmpeg's log: {err}"
    );
    assert!(
        wait_log(&proxy, "reject=1503", Duration::from_secs(2)),
        "{}",
        proxy.log_text()
    );
}

#[test]
fn an_unreachable_or_silent_origin_is_a_bad_gateway() {
    // Nothing listens on this port: the kernel says so at once.
    let closed = free_udp_port();
    let proxy = Proxy::start(&[], &[], Some(&origin_toml("gone", closed)));
    let started = Instant::now();
    let answer = Caller::new(proxy.addr("srt"))
        .connect(
            &hsreq_and_sid("#!::r=live/cam,m=publish"),
            Duration::from_secs(3),
        )
        .expect("an answer");
    assert_eq!(
        rejection(&answer),
        Some(RejectReason::BadGateway),
        "{}",
        proxy.log_text()
    );
    assert_eq!(answer.kind.to_wire(), 2502);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        wait_log(&proxy, "origin gone unreachable", Duration::from_secs(2)),
        "{}",
        proxy.log_text()
    );

    // This one takes the packets and never answers: the origin-connect timeout decides.
    let mute = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mute_port = mute.local_addr().unwrap().port();
    let proxy = Proxy::start(
        &[("origin-connect-timeout", "1s")],
        &[],
        Some(&origin_toml("mute", mute_port)),
    );
    let started = Instant::now();
    let answer = Caller::new(proxy.addr("srt"))
        .connect(&hsreq_and_sid("live/cam"), Duration::from_secs(4))
        .expect("an answer");
    let waited = started.elapsed();
    assert_eq!(rejection(&answer), Some(RejectReason::BadGateway));
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    // The proxy repeated its induction while waiting, as libsrt does.
    let mut buf = [0u8; 2048];
    mute.set_nonblocking(true).unwrap();
    let mut inductions = 0;
    while let Ok(n) = mute.recv(&mut buf) {
        let hs = Handshake::parse(&buf[..n]).unwrap();
        assert_eq!((hs.kind, hs.version), (HandshakeType::Induction, 4));
        inductions += 1;
    }
    assert!(
        (3..=6).contains(&inductions),
        "{inductions} inductions in 1 s"
    );

    let mut publisher = ffmpeg_srt_publish(
        &srt_url(proxy.addr("srt"), "#!::r=live/cam,m=publish", ""),
        2,
    );
    let status = wait_exit(&mut publisher, Duration::from_secs(10)).expect("ffmpeg gave up");
    assert!(!status.success());
    assert!(stderr_of(&mut publisher).contains("Application-defined rejection reason"));
}

#[test]
fn hostile_packets_are_dropped_and_live_sessions_carry_on() {
    let sink = UdpSink::start();
    let origin_port = free_udp_port();
    let _origin = sink_origin(origin_port, "", &sink);
    let proxy = Proxy::start(&[], &[], Some(&origin_toml("slt", origin_port)));
    let srt = proxy.addr("srt");
    let mut publisher = ffmpeg_srt_publish(&srt_url(srt, "#!::r=live/cam,m=publish", ""), 7);
    assert!(
        sink.wait_for(10_000, Duration::from_secs(10)),
        "the session is live"
    );
    let before = sink.len();

    let attacker = Caller::new(srt);
    // Garbage of every size, truncated and oversized handshakes.
    let induction = attacker.induction();
    let mut oversized = induction.clone();
    oversized.resize(1600, 0);
    let mut overrun = attacker.conclusion(0, &hsreq_and_sid("#!::r=live/x"));
    overrun[66..68].copy_from_slice(&200u16.to_be_bytes()); // HSREQ claims 200 words
    for packet in [
        b"hello".to_vec(),
        vec![0; 3],
        vec![0xFF; 15],
        vec![0x80; 16],
        induction[..20].to_vec(),
        induction[..63].to_vec(),
        oversized,
        overrun,
        (0..1316).map(|_| fastrand::u8(..)).collect(),
    ] {
        attacker.send(&packet);
    }
    for _ in 0..200 {
        let garbage: Vec<u8> = (0..fastrand::usize(16..1500))
            .map(|_| fastrand::u8(..))
            .collect();
        attacker.send(&garbage);
    }
    // Data and SHUTDOWN packets to socket ids that are not this attacker's.
    for _ in 0..50 {
        let data = DataHeader {
            seq_number: 1,
            position: PacketPosition::Only,
            in_order: false,
            key: KeyFlags::Clear,
            retransmitted: false,
            msg_number: 1,
            timestamp: 0,
            dest_socket_id: fastrand::u32(1..1 << 30),
        };
        let mut packet = data.encode().to_vec();
        packet.extend_from_slice(&[0x47; 188]);
        attacker.send(&packet);
        let shutdown = ControlHeader {
            dest_socket_id: fastrand::u32(1..1 << 30),
            ..ControlHeader::new(control_type::SHUTDOWN)
        };
        attacker.send(&shutdown.encode());
    }
    // An old-version induction and a conclusion with a made-up cookie: no answer at all
    // (answering unchecked sources would make the proxy a reflector).
    let mut v3 = induction.clone();
    v3[16..20].copy_from_slice(&3u32.to_be_bytes());
    attacker.send(&v3);
    attacker.send(&attacker.conclusion(0xDEAD_BEEF, &hsreq_and_sid("#!::r=live/cam,m=publish")));
    assert_eq!(
        attacker.recv(Duration::from_millis(800)),
        None,
        "nothing answers garbage"
    );

    // With a real cookie, a bad streamid is refused with 1400 (wire 2400).
    let mut long_sid = Vec::new();
    push_extension(&mut long_sid, ExtensionType::Sid, &[b'a'; 600]).unwrap();
    for (what, ext) in [
        ("a 600-byte streamid", long_sid),
        ("no streamid", hsreq_and_sid("")),
        ("a malformed streamid", hsreq_and_sid("#!::r")),
        (
            "a streamid without app/stream",
            hsreq_and_sid("#!::r=cam,m=publish"),
        ),
    ] {
        let answer = Caller::new(srt)
            .connect(&ext, Duration::from_secs(2))
            .unwrap_or_else(|| panic!("no answer to {what}"));
        assert_eq!(rejection(&answer), Some(RejectReason::BadRequest), "{what}");
        assert_eq!(answer.kind.to_wire(), 2400, "{what}");
    }

    let status = wait_exit(&mut publisher, Duration::from_secs(20)).expect("ffmpeg finished");
    assert!(
        status.success(),
        "ffmpeg: {}\nproxy log:\n{}",
        stderr_of(&mut publisher),
        proxy.log_text()
    );
    assert!(
        sink.wait_for(before + 40_000, Duration::from_secs(5)),
        "{} bytes before the attack, {} after",
        before,
        sink.len()
    );
    let frames = sink.frames();
    assert!(
        frames >= 120,
        "the origin received {frames} decodable frames of 175"
    );
    let log = proxy.log_text();
    assert_eq!(log.matches("SRT session started").count(), 1, "{log}");
    assert!(log.contains("reason=\"client shutdown\""), "{log}");
    // And the proxy still serves handshakes.
    let _ = Caller::new(srt).cookie();
}

#[test]
fn a_repeated_conclusion_is_answered_again_and_a_silent_client_is_dropped() {
    let sink = UdpSink::start();
    let origin_port = free_udp_port();
    let _origin = sink_origin(origin_port, "", &sink);
    let proxy = Proxy::start(
        &[("idle-timeout", "2s")],
        &[],
        Some(&origin_toml("slt", origin_port)),
    );
    let caller = Caller::new(proxy.addr("srt"));
    let cookie = caller.cookie();
    let conclusion = caller.conclusion(cookie, &hsreq_and_sid("#!::r=live/quiet,m=publish"));
    caller.send(&conclusion);
    let answer = caller
        .handshake(Duration::from_secs(3))
        .expect("the origin's answer");
    let hs = Handshake::parse(&answer).unwrap();
    assert_eq!(hs.kind, HandshakeType::Conclusion, "{}", proxy.log_text());
    assert_eq!(hs.cookie, cookie, "the cookie the client holds");
    assert!(
        hs.extensions.find(ExtensionType::HsRsp).is_some(),
        "the origin's HSRSP"
    );
    let proxy_id = hs.socket_id;

    caller.send(&conclusion);
    let again = caller
        .handshake(Duration::from_secs(2))
        .expect("the same answer again");
    assert_eq!(
        again, answer,
        "a retransmitted conclusion is answered from stored state"
    );
    let listed = stream_entry(&proxy, "quiet").expect("listed");
    assert_eq!(listed["sessions"]["publishers"], 1);

    // The client says nothing more: after the idle timeout the proxy shuts the session.
    let started = Instant::now();
    let shutdown = wait_for(Duration::from_secs(8), || {
        caller
            .recv(Duration::from_millis(200))
            .filter(|p| classify(p) == Some(PacketKind::Shutdown))
    })
    .unwrap_or_else(|| panic!("no SHUTDOWN; proxy log:\n{}", proxy.log_text()));
    assert_eq!(dest_socket_id(&shutdown), Some(caller.id));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        wait_log(
            &proxy,
            "reason=\"idle: nothing from the client\"",
            Duration::from_secs(2)
        ),
        "{}",
        proxy.log_text()
    );
    let gone = wait_for(Duration::from_secs(2), || {
        stream_entry(&proxy, "quiet").filter(|s| s["sessions"]["publishers"] == 0)
    });
    assert!(gone.is_some(), "the session is unregistered");
    // Packets to the closed session go nowhere.
    let data = DataHeader {
        seq_number: 0x1234,
        position: PacketPosition::Only,
        in_order: false,
        key: KeyFlags::Clear,
        retransmitted: false,
        msg_number: 1,
        timestamp: 0,
        dest_socket_id: proxy_id,
    };
    caller.send(&data.encode());
    assert_eq!(caller.recv(Duration::from_millis(300)), None);
}

#[test]
fn an_ipv6_listener_serves_ipv6_clients() {
    let sink = UdpSink::start();
    let origin_port = free_udp_port();
    let _origin = sink_origin(origin_port, "", &sink);
    let proxy = Proxy::start(
        &[("srt-server", "[::1]:0")],
        &[],
        Some(&origin_toml("slt", origin_port)),
    );
    let srt = proxy.addr("srt");
    assert_eq!(srt.ip(), "::1".parse::<IpAddr>().unwrap());
    let mut publisher = ffmpeg_srt_publish(&srt_url(srt, "#!::r=live/cam,m=publish", ""), 3);
    let status = wait_exit(&mut publisher, Duration::from_secs(20)).expect("ffmpeg finished");
    assert!(
        status.success(),
        "ffmpeg: {}\nproxy log:\n{}",
        stderr_of(&mut publisher),
        proxy.log_text()
    );
    assert!(
        sink.wait_for(20_000, Duration::from_secs(5)),
        "the origin got {} bytes",
        sink.len()
    );
    assert!(
        proxy.log_text().contains("peer=[::1]:"),
        "{}",
        proxy.log_text()
    );
}

#[test]
fn a_silent_origin_does_not_stall_other_sessions() {
    // Round-robin: the first stream goes to "a" (real), the second to "b" (takes packets,
    // never answers).
    let sink = UdpSink::start();
    let port_a = free_udp_port();
    let _a = sink_origin(port_a, "", &sink);
    let mute = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port_b = mute.local_addr().unwrap().port();
    let config = format!("{}{}", origin_toml("a", port_a), origin_toml("b", port_b));
    let flags = [
        ("lb-strategy", "round-robin"),
        ("origin-connect-timeout", "3s"),
    ];
    let proxy = Proxy::start(&flags, &[], Some(&config));
    let srt = proxy.addr("srt");
    let mut publisher = ffmpeg_srt_publish(&srt_url(srt, "#!::r=live/cam,m=publish", ""), 7);
    assert!(
        sink.wait_for(10_000, Duration::from_secs(10)),
        "the session is live"
    );

    // Twenty clients wait on the silent origin at once, each in its own thread. They
    // publish: a publisher's placement is listed (a player's is tentative, and is not).
    let waiting: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let caller = Caller::new(srt);
                let started = Instant::now();
                let answer = caller.connect(
                    &hsreq_and_sid("#!::r=live/stuck,m=publish"),
                    Duration::from_secs(6),
                );
                (answer.and_then(|a| rejection(&a)), started.elapsed())
            })
        })
        .collect();
    // Meanwhile the live session keeps flowing and new handshakes are answered at once.
    std::thread::sleep(Duration::from_millis(500));
    let before = sink.len();
    let started = Instant::now();
    let _ = Caller::new(srt).cookie();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        sink.len() > before + 10_000,
        "{} bytes before, {} two seconds later",
        before,
        sink.len()
    );
    for t in waiting {
        let (reason, waited) = t.join().unwrap();
        assert_eq!(
            reason,
            Some(RejectReason::BadGateway),
            "{}",
            proxy.log_text()
        );
        assert!(
            waited >= Duration::from_millis(2900) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
    }
    let status = wait_exit(&mut publisher, Duration::from_secs(20)).expect("ffmpeg finished");
    assert!(status.success(), "ffmpeg: {}", stderr_of(&mut publisher));
    assert_eq!(stream_entry(&proxy, "stuck").unwrap()["origin"], "b");
}

#[test]
fn on_sigterm_new_clients_are_refused_and_live_sessions_end_after_the_grace() {
    let sink = UdpSink::start();
    let origin_port = free_udp_port();
    let _origin = sink_origin(origin_port, "", &sink);
    let flags = [("grace-quit-timeout", "1s"), ("force-quit-timeout", "3s")];
    let mut proxy = Proxy::start(&flags, &[], Some(&origin_toml("slt", origin_port)));
    let srt = proxy.addr("srt");
    let live = Caller::new(srt);
    let answer = live.connect(
        &hsreq_and_sid("#!::r=live/cam,m=publish"),
        Duration::from_secs(3),
    );
    assert_eq!(
        answer.map(|a| a.kind),
        Some(HandshakeType::Conclusion),
        "{}",
        proxy.log_text()
    );

    let pid = proxy.process.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(wait_log(&proxy, "shutting down", Duration::from_secs(2)));
    std::thread::sleep(Duration::from_millis(200));
    let late = Caller::new(srt).connect(
        &hsreq_and_sid("#!::r=live/late,m=publish"),
        Duration::from_secs(2),
    );
    assert_eq!(
        late.and_then(|a| rejection(&a)),
        Some(RejectReason::Unavailable)
    );

    // The live session is ended at the grace timeout, and both peers are told.
    let shutdown = wait_for(Duration::from_secs(4), || {
        live.recv(Duration::from_millis(200))
            .filter(|p| classify(p) == Some(PacketKind::Shutdown))
    });
    assert!(
        shutdown.is_some(),
        "no SHUTDOWN; proxy log:\n{}",
        proxy.log_text()
    );
    let status = proxy.process.terminate(Duration::from_secs(5));
    assert!(status.is_some(), "the proxy exited");
    assert!(
        wait_log(&proxy, "reason=\"proxy shutdown\"", Duration::from_secs(2)),
        "{}",
        proxy.log_text()
    );
}
