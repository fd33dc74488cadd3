//! End-to-end tests of the rtmp front-end: ffmpeg publishing and playing through the proxy,
//! nginx-rtmp as origin (one or two), an origin's refusal, no origin, hostile clients
//! written byte by byte, and timeouts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{
    ffmpeg_count_frames, ffmpeg_publish, free_port, http, wait_for, NginxRtmp, Process, Proxy,
};

fn streams(proxy: &Proxy) -> serde_json::Value {
    http("GET", proxy.addr("system-api"), "/api/v1/streams", &[], b"").json()
}

/// The `/api/v1/streams` entry of `stream` (`vhost/app/name`), if listed.
fn stream_entry(proxy: &Proxy, stream: &str) -> Option<serde_json::Value> {
    streams(proxy)["data"]
        .as_array()?
        .iter()
        .find(|s| s["stream"] == stream)
        .cloned()
}

/// Waits until `stream` has a publisher through this proxy that has sent media.
fn wait_publishing(proxy: &Proxy, stream: &str) -> serde_json::Value {
    wait_for(Duration::from_secs(15), || {
        stream_entry(proxy, stream).filter(|s| {
            s["sessions"]["publishers"] == 1
                && s["sessions"]["bytes_to_origin"].as_u64() > Some(10_000)
        })
    })
    .unwrap_or_else(|| {
        panic!(
            "{stream} is not being published through the proxy: {}\nproxy log:\n{}",
            streams(proxy),
            proxy.log_text()
        )
    })
}

/// Waits for a process to exit; returns its status and what it wrote to stderr.
fn wait_exit(process: &mut Process, timeout: Duration) -> (ExitStatus, String) {
    let status = wait_for(timeout, || process.child.try_wait().ok().flatten())
        .unwrap_or_else(|| panic!("{} still running after {timeout:?}", process.name));
    let mut stderr = String::new();
    if let Some(mut pipe) = process.child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    (status, stderr)
}

/// A hand-written fake of an origin's HTTP auth hook (nginx-rtmp's `on_publish`): answers
/// every request with `status_line` and records the requests' bodies.
struct FakeAuthHook {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeAuthHook {
    fn start(status_line: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the fake hook");
        let url = format!("http://{}/on_publish", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        // The thread ends with the test process; it only ever blocks in accept.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let request = read_http_request(&mut stream);
                seen.lock().unwrap().push(request);
                let reply = format!(
                    "HTTP/1.1 {status_line}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        FakeAuthHook { url, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// Head and body (by Content-Length) of one HTTP request.
fn read_http_request(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut buf) {
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&data).into_owned()
}

// ---------------------------------------------------------------- raw clients

/// A raw TCP client of the proxy's RTMP port.
fn raw_client(addr: SocketAddr) -> TcpStream {
    let stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connecting to the proxy");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    stream
}

/// Does the simple handshake (C0 C1, S0 S1 S2, C2).
fn handshake(stream: &mut TcpStream) {
    let mut c0c1 = vec![3u8];
    c0c1.extend((0..1536u32).map(|i| (i * 7) as u8));
    c0c1[5..9].fill(0); // C1's zero field: the simple form
    stream.write_all(&c0c1).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    stream
        .read_exact(&mut s0s1s2)
        .expect("S0 S1 S2 from the proxy");
    assert_eq!(s0s1s2[0], 3, "S0 names RTMP version 3");
    stream.write_all(&s0s1s2[1..1537]).unwrap(); // C2 echoes S1
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
}

/// Reads (and discards) until the proxy closes the connection; how long that took, or None
/// if it was still open after `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 8192];
    while start.elapsed() < within {
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(start.elapsed()), // reset: closed as well
        }
    }
    None
}

/// One RTMP message as a fmt 0 chunk followed by fmt 3 chunks of 128 bytes.
fn chunked(csid: u8, type_id: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![csid, 0, 0, 0];
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(type_id);
    out.extend_from_slice(&0u32.to_le_bytes());
    for (i, piece) in payload.chunks(128).enumerate() {
        if i > 0 {
            out.push(0xC0 | csid);
        }
        out.extend_from_slice(piece);
    }
    out
}

/// A `connect` command whose object nests `depth` objects.
fn nested_connect(depth: usize) -> Vec<u8> {
    let mut p = vec![0x02, 0, 7];
    p.extend_from_slice(b"connect");
    p.push(0x00);
    p.extend_from_slice(&1f64.to_be_bytes());
    p.push(0x03);
    for _ in 0..depth {
        p.extend_from_slice(&[0, 1, b'a', 0x03]);
    }
    for _ in 0..=depth {
        p.extend_from_slice(&[0, 0, 9]);
    }
    p
}

// ---------------------------------------------------------------- tests

#[test]
fn publish_and_play_through_the_proxy() {
    // An auth hook that says yes and records what nginx asked: the stream name's query
    // (auth data) must reach the origin intact.
    let hook = FakeAuthHook::start("200 OK");
    let nginx = NginxRtmp::start(Some(&hook.url));
    let proxy = Proxy::start(&[], &[], Some(&nginx.origin_toml("nginx")));
    let rtmp = proxy.addr("rtmp");
    let mut publisher = ffmpeg_publish(
        &format!("rtmp://{rtmp}/live/cam?token=abc"),
        20,
        true,
        "flv",
    );

    let entry = wait_publishing(&proxy, "__defaultVhost__/live/cam");
    assert_eq!(entry["origin"], "nginx");
    assert_eq!(entry["sessions"]["clients"][0]["protocol"], "rtmp");
    assert_eq!(entry["sessions"]["clients"][0]["publishing"], true);
    let asked = hook.requests().join("\n");
    assert!(
        asked.contains("name=cam") && asked.contains("token") && asked.contains("abc"),
        "nginx's on_publish request: {asked}"
    );

    let (frames, log) = ffmpeg_count_frames(&format!("rtmp://{rtmp}/live/cam?viewer=1"), 2);
    assert!(
        frames >= 25,
        "decoded {frames} frames through the proxy; ffmpeg said:\n{log}\nproxy log:\n{}",
        proxy.log_text()
    );

    // The player's session was listed and logged with its bytes; the publisher still runs.
    let ended = wait_for(Duration::from_secs(5), || {
        proxy
            .log_text()
            .lines()
            .find(|l| l.contains("play ended"))
            .map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("no end line for the player:\n{}", proxy.log_text()));
    let to_client: u64 = ended
        .split("bytes_to_client=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(to_client > 10_000, "{ended}");
    assert!(
        proxy.log_text().contains("publish started"),
        "{}",
        proxy.log_text()
    );
    assert!(
        publisher.child.try_wait().unwrap().is_none(),
        "the publisher stopped"
    );

    // The publisher leaves: its session ends and is no longer listed.
    publisher.child.kill().unwrap();
    let gone = wait_for(Duration::from_secs(5), || {
        stream_entry(&proxy, "__defaultVhost__/live/cam")
            .filter(|s| s["sessions"]["publishers"] == 0)
    });
    assert!(gone.is_some(), "{}", streams(&proxy));
    assert!(wait_for(Duration::from_secs(5), || proxy
        .log_text()
        .contains("publish ended")
        .then_some(()))
    .is_some());
}

#[test]
fn streams_spread_over_two_origins_play_from_the_origin_that_holds_them() {
    let (a, b) = (NginxRtmp::start(None), NginxRtmp::start(None));
    let config = format!("{}{}", a.origin_toml("a"), b.origin_toml("b"));
    let proxy = Proxy::start(&[("lb-strategy", "round-robin")], &[], Some(&config));
    let rtmp = proxy.addr("rtmp");
    let names = ["s0", "s1", "s2", "s3"];
    let _publishers: Vec<Process> = names
        .iter()
        .map(|n| ffmpeg_publish(&format!("rtmp://{rtmp}/live/{n}"), 20, true, "flv"))
        .collect();

    let mut placed = Vec::new();
    for name in names {
        let entry = wait_publishing(&proxy, &format!("__defaultVhost__/live/{name}"));
        placed.push(entry["origin"].as_str().unwrap().to_owned());
    }
    assert!(
        placed.iter().any(|o| o == "a") && placed.iter().any(|o| o == "b"),
        "placements: {placed:?}"
    );

    // Every stream plays through the proxy; each exists only on the origin it was placed
    // on, so frames prove the player was routed there.
    let players: Vec<_> = names
        .iter()
        .map(|n| {
            let url = format!("rtmp://{rtmp}/live/{n}");
            std::thread::spawn(move || ffmpeg_count_frames(&url, 2))
        })
        .collect();
    for ((name, origin), player) in names.iter().zip(&placed).zip(players) {
        let (frames, log) = player.join().unwrap();
        assert!(
            frames >= 25,
            "{name} on {origin}: {frames} frames; ffmpeg said:\n{log}\nproxy log:\n{}",
            proxy.log_text()
        );
    }
    let log = proxy.log_text();
    for (name, origin) in names.iter().zip(&placed) {
        let line = log
            .lines()
            .find(|l| l.contains("play started") && l.contains(&format!("/live/{name} ")))
            .unwrap_or_else(|| panic!("no play line for {name}:\n{log}"));
        assert!(
            line.contains(&format!("origin={origin} ")),
            "{name} is on {origin}: {line}"
        );
    }
}

#[test]
fn an_origin_rejection_reaches_the_publisher_as_its_error_status() {
    let hook = FakeAuthHook::start("403 Forbidden");
    let nginx = NginxRtmp::start(Some(&hook.url));
    let proxy = Proxy::start(&[], &[], Some(&nginx.origin_toml("nginx")));
    let mut publisher = ffmpeg_publish(
        &format!("rtmp://{}/live/cam?token=wrong", proxy.addr("rtmp")),
        5,
        true,
        "flv",
    );
    let (status, stderr) = wait_exit(&mut publisher, Duration::from_secs(15));
    assert!(
        !status.success(),
        "ffmpeg's publish succeeded despite the refusal; stderr:\n{stderr}"
    );
    assert!(
        hook.requests().iter().any(|r| r.contains("token")),
        "the origin asked its hook: {:?}",
        hook.requests()
    );
    // nginx-rtmp (1.2.2) refuses by closing the connection without a status; the proxy
    // turns that into an error status, which ffmpeg prints, rather than a bare disconnect.
    assert!(
        stderr.contains("Server error"),
        "ffmpeg saw no error status, only:\n{stderr}\nproxy log:\n{}",
        proxy.log_text()
    );
    let log = proxy.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("refused publish") && l.contains("origin=nginx")),
        "{log}"
    );
    assert!(!log.contains("publish started"), "{log}");
    let entry = stream_entry(&proxy, "__defaultVhost__/live/cam");
    assert!(
        entry
            .as_ref()
            .is_none_or(|e| e["sessions"]["publishers"] == 0),
        "{entry:?}"
    );
}

/// A hand-written fake RTMP origin (rtmp-peek's server session) that refuses every stream
/// with its own status; serves one connection.
fn start_refusing_origin(description: &'static str) -> u16 {
    use rtmp_peek::{ServerConfig, ServerEvent, ServerSession};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut sock, _)) = listener.accept() else {
            return;
        };
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut origin = ServerSession::new(ServerConfig::default());
        let mut buf = [0u8; 8192];
        loop {
            let Ok(n) = sock.read(&mut buf) else { return };
            if n == 0 || origin.feed(&buf[..n]).is_err() {
                return;
            }
            if std::iter::from_fn(|| origin.poll_event())
                .any(|e| matches!(e, ServerEvent::Identified(_)))
            {
                origin
                    .reject("NetStream.Publish.BadName", description)
                    .unwrap();
            }
            if sock.write_all(&origin.take_output()).is_err() {
                return;
            }
        }
    });
    port
}

#[test]
fn an_origins_own_error_status_reaches_the_publisher() {
    let port = start_refusing_origin("fake origin says no to this token");
    let proxy = Proxy::start(
        // The origin serves one client: no health probe may take its place.
        &[("health-check-interval", "off")],
        &[],
        Some(&format!("[[origins]]\nname = \"fake\"\nrtmp = {port}\n")),
    );
    let mut publisher = ffmpeg_publish(
        &format!("rtmp://{}/live/cam?token=wrong", proxy.addr("rtmp")),
        5,
        true,
        "flv",
    );
    let (status, stderr) = wait_exit(&mut publisher, Duration::from_secs(15));
    assert!(!status.success());
    assert!(
        stderr.contains("fake origin says no to this token"),
        "ffmpeg did not get the origin's status:\n{stderr}\nproxy log:\n{}",
        proxy.log_text()
    );
    let log = proxy.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("refused publish by the origin")
                && l.contains("NetStream.Publish.BadName")),
        "{log}"
    );
    assert!(!log.contains("publish started"), "{log}");
}

#[test]
fn no_origin_or_an_unreachable_origin_is_an_rtmp_error_status() {
    let proxy = Proxy::start(&[], &[], None);
    let mut publisher = ffmpeg_publish(
        &format!("rtmp://{}/live/cam", proxy.addr("rtmp")),
        5,
        true,
        "flv",
    );
    let (status, stderr) = wait_exit(&mut publisher, Duration::from_secs(15));
    assert!(!status.success());
    assert!(
        stderr.contains("no origin available"),
        "ffmpeg said:\n{stderr}"
    );
    let log = proxy.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("refused publish") && l.contains("no origin available")),
        "{log}"
    );

    let closed = free_port();
    let proxy = Proxy::start(
        &[("origin-connect-timeout", "2s")],
        &[],
        Some(&format!("[[origins]]\nname = \"gone\"\nrtmp = {closed}\n")),
    );
    let (frames, stderr) =
        ffmpeg_count_frames(&format!("rtmp://{}/live/cam", proxy.addr("rtmp")), 1);
    assert_eq!(frames, 0);
    assert!(
        stderr.contains("origin unreachable"),
        "ffmpeg said:\n{stderr}"
    );
    let log = proxy.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("refused play") && l.contains("gone")),
        "{log}"
    );
}

#[test]
fn hostile_clients_are_closed_and_the_proxy_keeps_serving() {
    let nginx = NginxRtmp::start(None);
    let proxy = Proxy::start(
        &[("handshake-timeout", "2s")],
        &[],
        Some(&nginx.origin_toml("nginx")),
    );
    let addr = proxy.addr("rtmp");
    let prompt = Duration::from_secs(1);

    // Not RTMP at all.
    let mut s = raw_client(addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(
        closed_within(&mut s, prompt).is_some(),
        "garbage was not closed"
    );

    // A handshake cut short, the client then waiting: closed at the handshake timeout.
    let mut s = raw_client(addr);
    s.write_all(&[3u8; 700]).unwrap();
    let took = closed_within(&mut s, Duration::from_secs(5))
        .expect("a truncated handshake was not closed");
    assert!(
        took >= Duration::from_millis(1500),
        "closed after {took:?}, before the handshake timeout"
    );

    // A handshake cut short by the client's own close.
    let mut s = raw_client(addr);
    s.write_all(&[3u8; 100]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed_within(&mut s, prompt).is_some());

    // The largest Set Chunk Size, then a message longer than the proxy accepts.
    let mut s = raw_client(addr);
    handshake(&mut s);
    s.write_all(&chunked(2, 1, &0x7FFF_FFFFu32.to_be_bytes()))
        .unwrap();
    let mut huge = vec![3u8, 0, 0, 0, 0xFF, 0xFF, 0xFF, 20, 0, 0, 0, 0];
    huge.extend_from_slice(&[0u8; 1000]);
    s.write_all(&huge).unwrap();
    assert!(
        closed_within(&mut s, prompt).is_some(),
        "a 16 MiB message was not refused"
    );

    // A Set Chunk Size with the top bit set.
    let mut s = raw_client(addr);
    handshake(&mut s);
    s.write_all(&chunked(2, 1, &0xFFFF_FFFFu32.to_be_bytes()))
        .unwrap();
    assert!(
        closed_within(&mut s, prompt).is_some(),
        "an invalid chunk size was not refused"
    );

    // A connect whose object nests 500 deep.
    let mut s = raw_client(addr);
    handshake(&mut s);
    s.write_all(&chunked(3, 20, &nested_connect(500))).unwrap();
    assert!(
        closed_within(&mut s, prompt).is_some(),
        "deep AMF0 nesting was not refused"
    );

    assert!(
        proxy.log_text().contains("closed before publish or play"),
        "{}",
        proxy.log_text()
    );
    assert!(
        !proxy.log_text().contains("panicked"),
        "{}",
        proxy.log_text()
    );

    // The proxy still serves a real publisher.
    let mut publisher = ffmpeg_publish(&format!("rtmp://{addr}/live/after"), 2, false, "flv");
    let (status, stderr) = wait_exit(&mut publisher, Duration::from_secs(15));
    assert!(
        status.success(),
        "publish after the hostile clients failed: {stderr}\nproxy log:\n{}",
        proxy.log_text()
    );
    assert!(
        proxy.log_text().contains("publish started"),
        "{}",
        proxy.log_text()
    );
}

#[test]
fn a_silent_or_dripping_client_is_closed_after_the_handshake_timeout() {
    let proxy = Proxy::start(&[("handshake-timeout", "1s")], &[], None);
    let addr = proxy.addr("rtmp");

    let mut silent = raw_client(addr);
    let took =
        closed_within(&mut silent, Duration::from_secs(5)).expect("a silent client was not closed");
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(3),
        "closed after {took:?}"
    );

    // One byte every 100 ms keeps the connection busy but never gets anywhere.
    let mut drip = raw_client(addr);
    drip.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let start = Instant::now();
    let mut closed = false;
    let mut buf = [0u8; 4096];
    while start.elapsed() < Duration::from_secs(5) {
        if drip.write_all(&[3]).is_err() {
            closed = true;
            break;
        }
        match drip.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Err(e)
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    assert!(closed, "a dripping client was still connected after 5 s");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "closed after {:?}",
        start.elapsed()
    );
    // The log is read by another thread: wait for both lines rather than race it.
    let logged = wait_for(Duration::from_secs(5), || {
        (proxy
            .log_text()
            .matches("within the handshake timeout")
            .count()
            >= 2)
            .then_some(())
    });
    assert!(logged.is_some(), "{}", proxy.log_text());
}

#[test]
fn a_dead_origin_ends_the_publishers_session() {
    let nginx = NginxRtmp::start(None);
    let proxy = Proxy::start(&[], &[], Some(&nginx.origin_toml("nginx")));
    let mut publisher = ffmpeg_publish(
        &format!("rtmp://{}/live/cam", proxy.addr("rtmp")),
        30,
        true,
        "flv",
    );
    wait_publishing(&proxy, "__defaultVhost__/live/cam");

    drop(nginx); // killed
    let line = wait_for(Duration::from_secs(5), || {
        proxy
            .log_text()
            .lines()
            .find(|l| l.contains("publish ended"))
            .map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("the session outlived its origin:\n{}", proxy.log_text()));
    assert!(
        line.contains("ended: origin"),
        "the origin's end is the reason: {line}"
    );
    // The relay runs outside the connection's span (it is entered only where the session
    // logs), yet its start and end lines carry the span's fields and the byte counts.
    assert!(
        line.contains("conn{protocol=\"rtmp\" peer=127.0.0.1:"),
        "the end line is in the connection's span: {line}"
    );
    assert!(
        line.contains("bytes_to_origin=") && !line.contains("bytes_to_origin=0 "),
        "the end line counts what was relayed: {line}"
    );
    let log = proxy.log_text();
    let started = log
        .lines()
        .find(|l| l.contains("publish started"))
        .unwrap_or_else(|| panic!("no start line:\n{log}"));
    assert!(
        started.contains("conn{protocol=\"rtmp\" peer=127.0.0.1:"),
        "the start line is in the connection's span: {started}"
    );
    let (status, _) = wait_exit(&mut publisher, Duration::from_secs(10));
    assert!(
        !status.success(),
        "ffmpeg went on publishing into a closed connection"
    );
    let entry = stream_entry(&proxy, "__defaultVhost__/live/cam");
    assert!(
        entry
            .as_ref()
            .is_none_or(|e| e["sessions"]["publishers"] == 0),
        "{entry:?}"
    );
}
