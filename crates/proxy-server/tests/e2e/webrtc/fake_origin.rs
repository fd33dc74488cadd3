//! A FAKE WHIP origin written here, for exact checks of the signalling and of the UDP
//! routing: an HTTP API that records every request and answers an offer with a canned SDP
//! (known ufrag/pwd, a UDP and a TCP candidate naming a documentation address), and a UDP
//! socket standing for the origin's media port. A DELETE carrying `X-Fake-Status` is
//! refused with 500, others succeed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const UFRAG: &str = "fakeufrag";
pub const PWD: &str = "fakepwd0123456789abcdefgh";
pub const ETAG: &str = "\"etag-1\"";
/// The ice-pwd of [`offer`]: what the proxy's consent requests are keyed with.
pub const CLIENT_PWD: &str = "clientpwd0123456789abcd";

/// The answer the fake sends, candidates included.
pub fn answer(media_port: u16) -> String {
    format!(
        "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=FakeSession\r\nt=0 0\r\na=ice-lite\r\na=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
         a=ice-ufrag:{UFRAG}\r\na=ice-pwd:{PWD}\r\na=fingerprint:sha-256 00:11\r\na=setup:passive\r\n\
         a=candidate:1 1 udp 2130706431 192.0.2.10 {media_port} typ host generation 0\r\n\
         a=candidate:2 1 tcp 1671430143 192.0.2.10 {media_port} typ host tcptype passive\r\na=end-of-candidates\r\n"
    )
}

/// A client offer with the given ufrag.
pub fn offer(ufrag: &str) -> String {
    format!(
        "v=0\r\no=- 7 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
         a=ice-ufrag:{ufrag}\r\na=ice-pwd:{CLIENT_PWD}\r\na=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\na=sendonly\r\n"
    )
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct FakeOrigin {
    pub api: SocketAddr,
    pub media: UdpSocket,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl FakeOrigin {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake api");
        let api = listener.local_addr().unwrap();
        let media = UdpSocket::bind("127.0.0.1:0").expect("bind fake media");
        media
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let media_port = media.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopped) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                let (status, headers, body): (&str, Vec<(&str, String)>, String) =
                    match request.method.as_str() {
                        "POST" => {
                            let (_, query) = request.target.split_once('?').unwrap_or(("", ""));
                            let location = format!(
                            "/rtc/v1/whip/?action=delete&token=tok1&{query}&session={UFRAG}:cli"
                        );
                            (
                                "201 Created",
                                vec![
                                    ("Content-Type", "application/sdp".into()),
                                    ("Location", location),
                                    ("ETag", ETAG.into()),
                                ],
                                answer(media_port),
                            )
                        }
                        "PATCH" if request.header("if-match") == Some(ETAG) => {
                            ("204 No Content", vec![("ETag", ETAG.into())], String::new())
                        }
                        "PATCH" => ("412 Precondition Failed", vec![], String::new()),
                        // A test asks for a refusal with this header (the proxy forwards
                        // the client's headers).
                        "DELETE" if request.header("x-fake-status").is_some() => {
                            ("500 Internal Server Error", vec![], String::new())
                        }
                        "DELETE" => (
                            "200 OK",
                            vec![("Content-Type", "application/json".into())],
                            "{\"code\":0}".into(),
                        ),
                        _ => ("404 Not Found", vec![], String::new()),
                    };
                log.lock().unwrap().push(request);
                let mut reply = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    reply.push_str(&format!("{k}: {v}\r\n"));
                }
                reply.push_str("\r\n");
                reply.push_str(&body);
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        FakeOrigin {
            api,
            media,
            seen,
            stop,
        }
    }

    pub fn media_port(&self) -> u16 {
        self.media.local_addr().unwrap().port()
    }

    /// The `[[origins]]` entry listing the fake statically.
    pub fn origin_toml(&self, name: &str) -> String {
        format!(
            "[[origins]]\nname = \"{name}\"\napi = {}\nrtc = \"udp://127.0.0.1:{}\"\n",
            self.api.port(),
            self.media_port()
        )
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Datagrams arriving at the media port within `wait`, with their senders.
    pub fn received(&self, wait: Duration) -> Vec<(Vec<u8>, SocketAddr)> {
        let deadline = std::time::Instant::now() + wait;
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while std::time::Instant::now() < deadline {
            if let Ok((n, from)) = self.media.recv_from(&mut buf) {
                out.push((buf[..n].to_vec(), from));
            }
        }
        out
    }

    /// The first datagram within `wait`.
    pub fn next(&self, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let deadline = std::time::Instant::now() + wait;
        let mut buf = [0u8; 2048];
        while std::time::Instant::now() < deadline {
            if let Ok((n, from)) = self.media.recv_from(&mut buf) {
                return Some((buf[..n].to_vec(), from));
            }
        }
        None
    }
}

impl Drop for FakeOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::net::TcpStream::connect(self.api);
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<Seen> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0u8; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        body.resize(len, 0);
        reader.read_exact(&mut body).ok()?;
    }
    Some(Seen {
        method,
        target,
        headers,
        body,
    })
}
