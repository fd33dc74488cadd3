//! Live HTTP-FLV / HTTP-TS viewers on HTTP/1.1 take the raw path (the origin's bytes
//! relayed as they come, unparsed): what a viewer gets (status, CORS, the origin's own
//! stream), that it is counted, and how the relay ends: the viewer leaves, the origin
//! dies. Everything else on the media listener is still hyper's, the bytes read to
//! classify the request replayed to it. The origin is ffmpeg's own HTTP server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{
    ffmpeg_publish, free_port, http, require_program, wait_for, wait_listening, Process, Proxy,
};
use crate::limits::metric;

/// ffmpeg serving one live FLV stream over HTTP to one client (`-listen 1`), in real time.
fn flv_origin(seconds: u32) -> (Process, u16) {
    let port = free_port();
    let origin = ffmpeg_publish(
        &format!("http://127.0.0.1:{port}/live/cam.flv"),
        seconds,
        true,
        "flv -listen 1",
    );
    assert!(
        wait_listening(port, Duration::from_secs(10)),
        "ffmpeg did not start listening"
    );
    (origin, port)
}

fn proxy_for(origin_port: u16) -> Proxy {
    Proxy::start(
        // The origin serves one client: no health probe may take its place.
        &[("health-check-interval", "off")],
        &[],
        Some(&format!(
            "[[origins]]\nname = \"ffmpeg\"\nhttp = {origin_port}\n"
        )),
    )
}

fn players(proxy: &Proxy) -> u64 {
    let listed = http("GET", proxy.addr("system-api"), "/api/v1/streams", &[], b"").json();
    listed["data"]
        .as_array()
        .map(|streams| {
            streams
                .iter()
                .filter_map(|s| s["sessions"]["players"].as_u64())
                .sum()
        })
        .unwrap_or(0)
}

/// A viewer's connection: its response head (lower-case names) and the body bytes so far.
struct Viewer {
    stream: TcpStream,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Viewer {
    /// Asks for `path` and reads until the head and at least `body` bytes have come.
    fn open(proxy: &Proxy, path: &str, body: usize) -> Viewer {
        let mut stream = TcpStream::connect(proxy.addr("http")).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nOrigin: https://player.example\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap();
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let split = loop {
            if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                if raw.len() >= at + 4 + body {
                    break at;
                }
            }
            let n = stream.read(&mut buf).expect("reading the response");
            assert!(
                n > 0,
                "closed after {} bytes: {:?}",
                raw.len(),
                String::from_utf8_lossy(&raw)
            );
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Viewer {
            stream,
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body's first bytes of payload: past the first chunk-size line if chunked.
    fn payload(&self) -> &[u8] {
        if self.header("transfer-encoding") == Some("chunked") {
            let line = self.body.windows(2).position(|w| w == b"\r\n").unwrap_or(0);
            &self.body[line + 2..]
        } else {
            &self.body
        }
    }

    /// Reads until the proxy closes; how long that took, or `None` if it did not within
    /// `limit`.
    fn wait_closed(&mut self, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        let mut buf = [0u8; 16 * 1024];
        self.stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        while start.elapsed() < limit {
            match self.stream.read(&mut buf) {
                Ok(0) => return Some(start.elapsed()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                // Reset: closed as well.
                Err(_) => return Some(start.elapsed()),
            }
        }
        None
    }
}

#[test]
fn a_raw_flv_viewer_gets_the_origins_stream_with_cors_and_is_counted_until_it_leaves() {
    let (mut origin, port) = flv_origin(120);
    let proxy = proxy_for(port);
    let viewer = Viewer::open(&proxy, "/live/cam.flv?token=abc", 64 * 1024);
    assert_eq!(viewer.status, 200, "{:?}", viewer.headers);
    assert_eq!(viewer.header("connection"), Some("close"));
    assert_eq!(viewer.header("access-control-allow-origin"), Some("*"));
    assert!(
        viewer.header("access-control-expose-headers").is_some(),
        "{:?}",
        viewer.headers
    );
    assert!(
        viewer.payload().starts_with(b"FLV\x01"),
        "the origin's FLV stream, as it sent it: {:?}",
        &viewer.body[..16.min(viewer.body.len())]
    );
    assert_eq!(
        wait_for(Duration::from_secs(5), || (players(&proxy) == 1)
            .then_some(())),
        Some(()),
        "the viewer is listed in /api/v1/streams"
    );
    let counted = wait_for(Duration::from_secs(5), || {
        let n = metric(
            &proxy,
            "proxy_bytes_total",
            &[("protocol", "http-flv"), ("direction", "to_client")],
        );
        (n >= viewer.body.len() as f64).then_some(n)
    });
    assert!(
        counted.is_some(),
        "proxy_bytes_total counts at least the {} bytes the viewer got",
        viewer.body.len()
    );
    assert!(
        proxy
            .log_text()
            .contains("stream=__defaultVhost__/live/cam origin=ffmpeg status=200"),
        "{}",
        proxy.log_text()
    );
    // The viewer leaves mid-stream: the origin connection goes at once (ffmpeg, serving
    // one client, exits), and so does the session.
    drop(viewer);
    let exited = wait_for(Duration::from_secs(10), || {
        origin.child.try_wait().ok().flatten()
    });
    assert!(
        exited.is_some(),
        "the origin connection was still open 10 s after the viewer left"
    );
    assert_eq!(
        wait_for(Duration::from_secs(5), || (players(&proxy) == 0)
            .then_some(())),
        Some(()),
        "the session is gone once the viewer left"
    );
}

#[test]
fn when_the_origin_dies_mid_stream_the_raw_viewer_is_closed_and_its_session_ends() {
    let (mut origin, port) = flv_origin(120);
    let proxy = proxy_for(port);
    let mut viewer = Viewer::open(&proxy, "/live/cam.flv", 16 * 1024);
    assert_eq!(viewer.status, 200, "{:?}", viewer.headers);
    origin.child.kill().expect("killing the origin");
    let _ = origin.child.wait();
    assert!(
        viewer.wait_closed(Duration::from_secs(10)).is_some(),
        "the viewer's connection was still open 10 s after its origin died:\n{}",
        proxy.log_text()
    );
    assert_eq!(
        wait_for(Duration::from_secs(5), || (players(&proxy) == 0)
            .then_some(())),
        Some(()),
        "the session is gone once the origin died"
    );
}

#[test]
fn ffprobe_reads_the_tracks_of_a_raw_flv_stream() {
    let ffprobe = require_program("ffprobe", "ffmpeg");
    let (_origin, port) = flv_origin(60);
    let proxy = proxy_for(port);
    let out = std::process::Command::new(ffprobe)
        .args(["-v", "error", "-rw_timeout", "15000000", "-show_entries"])
        .args(["stream=codec_name", "-of", "csv=p=0"])
        .arg(format!("http://{}/live/cam.flv", proxy.addr("http")))
        .output()
        .expect("running ffprobe");
    let codecs = String::from_utf8_lossy(&out.stdout);
    assert!(
        codecs.contains("h264") && codecs.contains("aac"),
        "ffprobe found {codecs:?}; it said {}\nproxy log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        proxy.log_text()
    );
}

#[test]
fn a_raw_viewer_with_no_origin_gets_the_json_refusal_with_cors() {
    let proxy = Proxy::start(&[], &[], None);
    let mut stream = TcpStream::connect(proxy.addr("http")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .write_all(b"GET /live/cam.flv HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("the refusal, then EOF");
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    let lower = text.to_ascii_lowercase();
    assert!(lower.contains("access-control-allow-origin: *"), "{text}");
    let body = &text[text.find("\r\n\r\n").map_or(0, |at| at + 4)..];
    let json: serde_json::Value = serde_json::from_str(body).expect(body);
    assert_eq!(json["code"], 503, "{body}");
}

#[test]
fn other_requests_on_the_media_listener_are_replayed_to_hyper_and_keep_alive() {
    let proxy = Proxy::start(&[], &[], None);
    let mut stream = TcpStream::connect(proxy.addr("http")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // Two requests on one connection, the first read (and classified) before hyper saw it.
    stream
        .write_all(b"GET /api/v1/versions HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&raw).contains("\"major\"") {
        let n = stream.read(&mut buf).expect("the first answer");
        assert!(n > 0, "closed after the first request");
        raw.extend_from_slice(&buf[..n]);
    }
    assert!(
        String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    // An HTTP/1.0 stream request is hyper's too (it cannot take a chunked body): with no
    // origin, hyper's refusal.
    stream
        .write_all(b"GET /live/cam.flv HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.starts_with("HTTP/1.0 503"), "{rest}");
}
