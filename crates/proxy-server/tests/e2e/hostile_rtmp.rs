//! RTMP clients that try to make the proxy hoard memory: many connections, each set up as a
//! publisher and then holding several large messages open while trickling bytes into
//! them. The proxy must stay within its per-connection limits and its buffer budget
//! (`PROXY_RTMP_BUFFER_BUDGET`) while real publishers and players go on working. Also: a
//! real 1080p publisher whose keyframes exceed a connection's free share passes intact.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rtmp_peek::{ClientConfig, ClientEvent, ClientSession, OriginRequest, StreamKind};

use crate::harness::{
    ffmpeg_count_frames, ffmpeg_publish, http, require_program, wait_for, NginxRtmp, Process,
    Proxy, TempDir,
};

/// Hostile connections.
const HOSTILES: usize = 200;
/// Large messages each hostile connection holds open at once, one per chunk stream.
const OPEN_MESSAGES: u8 = 6;
/// Length each of those messages declares: within the message size limits before (4 MiB)
/// and after (2 MiB) the fix, so that only the holding is tested.
const DECLARED: usize = 1536 * 1024;
/// What a hostile connection sends of each message, in the end: 6 x 1.31 MiB = 7.9 MiB per
/// connection, just under the 8 MiB of partial messages the proxy used to allow, so that
/// the old proxy kept every one of them open.
const HOARD_PER_MESSAGE: usize = 21 * PIECE;
/// Sent of each message per round, every `ROUND_PAUSE`.
const PIECE: usize = 64 * 1024;
const ROUND_PAUSE: Duration = Duration::from_millis(100);
/// The budget the proxy runs with here (MiB): small, so that the flood meets it.
const BUDGET_MIB: usize = 64;
/// Bound on the proxy's peak resident memory (VmHWM) during the flood. What the fix lets
/// the proxy hold: the budget (64 MiB), plus each connection's uncharged free share
/// (200 x 256 KiB = 50 MiB), plus the read buffers (about 200 x 64 KiB = 12.5 MiB), plus
/// the process at rest (about 20 MiB); about 150 MiB, with room above for the allocator's
/// fragmentation (freed buffers are not always returned to the kernel). Before the fix
/// every hostile connection held its 7.9 MiB: over 1.5 GiB.
const RSS_BOUND_MIB: u64 = 320;

/// `VmRSS` and `VmHWM` (peak) of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The value of a Prometheus sample whose labels include all of `labels` (0 if absent).
fn metric(proxy: &Proxy, name: &str, labels: &[(&str, &str)]) -> f64 {
    let r = http("GET", proxy.addr("system-api"), "/metrics", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, labels_text) = series.split_once('{').unwrap_or((series, "}"));
            let labels_text = labels_text.strip_suffix('}')?;
            let wanted = labels.iter().all(|(k, v)| {
                labels_text
                    .split(',')
                    .any(|kv| kv == format!("{k}=\"{v}\""))
            });
            (metric == name && wanted).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// The `/api/v1/streams` entry of `stream` (`vhost/app/name`), if listed.
fn stream_entry(proxy: &Proxy, stream: &str) -> Option<serde_json::Value> {
    http("GET", proxy.addr("system-api"), "/api/v1/streams", &[], b"").json()["data"]
        .as_array()?
        .iter()
        .find(|s| s["stream"] == stream)
        .cloned()
}

/// Waits until `stream` has a publisher through the proxy that has sent media.
fn wait_publishing(proxy: &Proxy, stream: &str) {
    let publishing = wait_for(Duration::from_secs(15), || {
        stream_entry(proxy, stream).filter(|s| {
            s["sessions"]["publishers"] == 1
                && s["sessions"]["bytes_to_origin"].as_u64() > Some(10_000)
        })
    });
    assert!(
        publishing.is_some(),
        "{stream} is not being published through the proxy; proxy log:\n{}",
        proxy.log_text()
    );
}

/// A hand-written hostile client (no real program holds messages open on purpose): the
/// RTMP setup of a publisher, done by rtmp-peek's client session (handshake, `connect`,
/// `createStream`, `publish`, waiting for the origin's `Publish.Start` relayed by the
/// proxy), then raw chunks.
struct Hostile {
    stream: TcpStream,
    /// Bytes of each open message sent so far.
    sent: usize,
    closed: bool,
}

impl Hostile {
    fn publish(proxy: SocketAddr, name: &str) -> Self {
        let mut stream = TcpStream::connect_timeout(&proxy, Duration::from_secs(5))
            .expect("connecting to the proxy");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let tc_url = format!("rtmp://{proxy}/live");
        let request = OriginRequest::new(StreamKind::Publish, "live", &tc_url, name).unwrap();
        // Chunk size 4096 announced by the session: the raw chunks below use it too.
        let mut session = ClientSession::new(request, ClientConfig::default()).unwrap();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if session.has_output() {
                stream.write_all(&session.take_output()).unwrap();
            }
            while let Some(event) = session.poll_event() {
                match event {
                    ClientEvent::Accepted { .. } => {
                        return Hostile {
                            stream,
                            sent: 0,
                            closed: false,
                        }
                    }
                    ClientEvent::Rejected { reply, .. } => {
                        panic!("hostile publisher {name} refused during setup: {reply:?}")
                    }
                    _ => {}
                }
            }
            let n = stream
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("hostile {name}: setup read: {e}"));
            assert!(n > 0, "hostile {name}: the proxy closed during setup");
            session.feed(&buf[..n]).unwrap();
        }
    }

    /// The next `PIECE` bytes of every open message: on chunk streams 10.., 4096-byte
    /// chunks, the first one of each message with a full header declaring `DECLARED`, of
    /// a type the proxy reassembles.
    fn round(&self) -> Vec<u8> {
        let mut wire = Vec::with_capacity(usize::from(OPEN_MESSAGES) * (PIECE + 64));
        for m in 0..OPEN_MESSAGES {
            let csid = 10 + m;
            for offset in (self.sent..self.sent + PIECE).step_by(4096) {
                if offset == 0 {
                    let len = (DECLARED as u32).to_be_bytes();
                    // fmt 0, timestamp 0, length, AMF3 command, message stream 1. Not
                    // media: the proxy relays media as it arrives and holds none of it;
                    // the other messages it reassembles, and those are what a hoarder
                    // can make it hold.
                    wire.extend([csid, 0, 0, 0, len[1], len[2], len[3], 17, 1, 0, 0, 0]);
                } else {
                    wire.push(0xC0 | csid);
                }
                wire.resize(wire.len() + 4096, 0x17);
            }
        }
        wire
    }

    fn trickle(&mut self) {
        if self.closed || self.sent >= HOARD_PER_MESSAGE {
            return;
        }
        let wire = self.round();
        match self.stream.write_all(&wire) {
            Ok(()) => self.sent += PIECE,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "the proxy stopped reading a hostile client that sent {} bytes per message",
                    self.sent
                )
            }
            Err(_) => self.closed = true,
        }
    }

    /// Whether the proxy has closed the connection (reads what it sent meanwhile).
    fn check_closed(&mut self) -> bool {
        if self.closed {
            return true;
        }
        self.stream
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return false
                }
                Err(_) => break,
            }
        }
        self.closed = true;
        true
    }
}

#[test]
fn hoarding_clients_are_held_to_the_limits_and_real_streams_go_on() {
    let nginx = NginxRtmp::start(None);
    let budget = BUDGET_MIB.to_string();
    let proxy = Proxy::start(
        &[],
        &[("PROXY_RTMP_BUFFER_BUDGET", budget.as_str())],
        Some(&nginx.origin_toml("nginx")),
    );
    let pid = proxy.process.child.id();
    let rtmp = proxy.addr("rtmp");

    // A real publisher, before the flood and through it.
    let mut publisher = ffmpeg_publish(&format!("rtmp://{rtmp}/live/real"), 60, true, "flv");
    wait_publishing(&proxy, "__defaultVhost__/live/real");
    let (rss_before, _) = memory_kib(pid);

    let mut hostiles: Vec<Hostile> = (0..HOSTILES)
        .map(|i| Hostile::publish(rtmp, &format!("hoard{i}")))
        .collect();

    // Trickle, and play the real stream meanwhile.
    let play_url = format!("rtmp://{rtmp}/live/real");
    let mut player = None;
    let mut peak_rss = 0;
    let rounds = HOARD_PER_MESSAGE.div_ceil(PIECE);
    for round in 0..rounds {
        for h in &mut hostiles {
            h.trickle();
        }
        peak_rss = peak_rss.max(memory_kib(pid).0);
        if round == 4 {
            let url = play_url.clone();
            player = Some(std::thread::spawn(move || ffmpeg_count_frames(&url, 3)));
        }
        std::thread::sleep(ROUND_PAUSE);
    }
    let (frames, player_log) = player.expect("the player ran").join().unwrap();

    // Every hostile connection wanted more than one connection may hold: each must be
    // closed, by its own limit or by the budget.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut open = HOSTILES;
    while Instant::now() < deadline {
        open = hostiles
            .iter_mut()
            .map(Hostile::check_closed)
            .filter(|closed| !closed)
            .count();
        if open == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (rss_after, hwm) = memory_kib(pid);
    let most_sent = hostiles.iter().map(|h| h.sent).max().unwrap_or(0);
    eprintln!(
        "proxy memory: {} MiB before the flood, {} MiB peak sampled, {} MiB VmHWM, {} MiB after; \
         {open} of {HOSTILES} hoarding connections still open; at most {} KiB sent per message",
        rss_before / 1024,
        peak_rss / 1024,
        hwm / 1024,
        rss_after / 1024,
        most_sent / 1024,
    );

    assert!(
        hwm < RSS_BOUND_MIB * 1024,
        "the proxy's resident memory peaked at {} MiB (bound {RSS_BOUND_MIB} MiB)",
        hwm / 1024
    );
    assert_eq!(
        open,
        0,
        "{open} connections hold more than a connection may; proxy log:\n{}",
        proxy.log_text()
    );
    let log = proxy.log_text();
    // Both bounds acted: the budget (logged once a second at most, counted each time) and
    // a connection's own limit on partial messages.
    assert!(log.contains("RTMP buffer budget is spent"), "{log}");
    let refused = metric(
        &proxy,
        "proxy_refusals_total",
        &[("protocol", "rtmp"), ("reason", "buffer_budget")],
    );
    assert!(refused >= 1.0, "no buffer_budget refusals counted");
    let budget_lines = log.matches("RTMP buffer budget is spent").count();
    assert!(
        (budget_lines as f64) <= refused,
        "{budget_lines} budget lines for {refused} refusals"
    );
    assert!(
        log.contains("bytes of partially received messages"),
        "no connection met its own limit:\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");

    // The real streams were not touched.
    assert!(
        frames >= 50,
        "the player decoded {frames} frames during the flood; ffmpeg said:\n{player_log}"
    );
    assert!(
        publisher.child.try_wait().unwrap().is_none(),
        "the real publisher stopped during the flood; proxy log:\n{log}"
    );
    let entry = stream_entry(&proxy, "__defaultVhost__/live/real").expect("the real stream");
    assert_eq!(entry["sessions"]["publishers"], 1, "{entry}");
    assert!(
        !log.lines()
            .any(|l| l.contains("/live/real") && l.contains("publish ended")),
        "{log}"
    );
    // And a new publisher gets in once the flood is over.
    let mut late = ffmpeg_publish(&format!("rtmp://{rtmp}/live/late"), 1, false, "flv");
    let status = wait_for(Duration::from_secs(20), || {
        late.child.try_wait().ok().flatten()
    })
    .expect("the late publisher finished");
    assert!(status.success(), "{}", proxy.log_text());
    publisher.child.kill().unwrap();
}

/// ffmpeg encoding `seconds` of 1080p video whose frames do not compress well (a fixed
/// noise pattern), so that every keyframe is several hundred KiB (about 300-550 KiB with
/// this ffmpeg), into an FLV file.
fn encode_1080p(path: &std::path::Path, seconds: u32) {
    let ffmpeg = require_program("ffmpeg", "ffmpeg");
    let status = Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size=1920x1080:rate=25:duration={seconds},noise=alls=10"
        ))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=44100:duration={seconds}"
        ))
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-crf", "30"])
        .args([
            "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("running ffmpeg");
    assert!(status.success(), "encoding the 1080p clip failed");
}

/// Sizes of the video keyframes of a media file (ffprobe).
fn keyframe_sizes(path: &std::path::Path) -> Vec<usize> {
    let ffprobe = require_program("ffprobe", "ffmpeg");
    let out = Command::new(ffprobe)
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "packet=size,flags", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("running ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (size, flags) = l.split_once(',')?;
            flags.contains('K').then(|| size.parse().ok())?
        })
        .collect()
}

#[test]
fn a_1080p_publisher_with_large_keyframes_passes_the_limits() {
    let dir = TempDir::new("hostile-1080p");
    let clip = dir.path().join("clip.flv");
    encode_1080p(&clip, 12);
    let sent = keyframe_sizes(&clip);
    // Every keyframe above a connection's free share of the budget (256 KiB), below
    // nginx-rtmp's own limit (max_message 1 MiB).
    assert!(
        !sent.is_empty() && sent.iter().all(|s| (256 * 1024..1024 * 1024).contains(s)),
        "the clip's keyframes: {sent:?}"
    );

    let nginx = NginxRtmp::start(None);
    let proxy = Proxy::start(&[], &[], Some(&nginx.origin_toml("nginx")));
    let rtmp = proxy.addr("rtmp");
    let ffmpeg = require_program("ffmpeg", "ffmpeg");
    let mut cmd = Command::new(&ffmpeg);
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-re",
        "-i",
    ])
    .arg(&clip)
    .args(["-c", "copy", "-f", "flv"])
    .arg(format!("rtmp://{rtmp}/live/hd"))
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut publisher = Process::spawn("ffmpeg 1080p publisher", &mut cmd);
    wait_publishing(&proxy, "__defaultVhost__/live/hd");

    // Record what a player gets through the proxy, without re-encoding.
    let got = dir.path().join("played.flv");
    let played = Command::new(&ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-rw_timeout", "10000000", "-i"])
        .arg(format!("rtmp://{rtmp}/live/hd"))
        .args(["-t", "5", "-map", "0:v:0", "-c", "copy", "-f", "flv", "-y"])
        .arg(&got)
        .stdin(Stdio::null())
        .output()
        .expect("running ffmpeg");
    assert!(
        played.status.success(),
        "playing through the proxy failed: {}\nproxy log:\n{}",
        String::from_utf8_lossy(&played.stderr),
        proxy.log_text()
    );
    let received = keyframe_sizes(&got);
    assert!(
        received.len() >= 3,
        "the player got {} keyframes; proxy log:\n{}",
        received.len(),
        proxy.log_text()
    );
    // Keyframes arrive whole: each is one of the clip's.
    for size in &received {
        assert!(
            sent.contains(size),
            "a keyframe of {size} bytes is not one sent: {sent:?}"
        );
    }

    let status = wait_for(Duration::from_secs(30), || {
        publisher.child.try_wait().ok().flatten()
    })
    .expect("the publisher finished its clip");
    let mut stderr = String::new();
    if let Some(mut e) = publisher.child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(
        status.success(),
        "the 1080p publish failed: {stderr}\nproxy log:\n{}",
        proxy.log_text()
    );
    let log = proxy.log_text();
    assert!(!log.contains("partially received"), "{log}");
    assert!(!log.contains("RTMP buffer budget is spent"), "{log}");
    assert!(!log.contains("exceeds the limit"), "{log}");
}
