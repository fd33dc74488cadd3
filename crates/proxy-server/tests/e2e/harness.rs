//! Starting and stopping the proxy and the programs around it, and a small HTTP client.

#![allow(dead_code)] // each test module uses its own part

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Fails the test, naming the program and how to install it, when it is missing.
pub fn require_program(program: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|d| d.join(program)).find(|p| p.is_file()))
        .unwrap_or(None);
    found.unwrap_or_else(|| {
        panic!("this test needs `{program}`, which is not installed: run `apt-get install -y {package}` (or `scripts/test.sh`, which installs it)")
    })
}

/// A free TCP port on 127.0.0.1 (for programs that cannot report the port they bound).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("binding 127.0.0.1:0")
}

/// A free UDP port on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).expect("binding udp 127.0.0.1:0")
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("proxy-e2e-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (and reaped) on drop.
pub struct Process {
    pub name: String,
    pub child: Child,
}

impl Process {
    pub fn spawn(name: &str, command: &mut Command) -> Self {
        let child = command.spawn().unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Process { name: name.to_owned(), child }
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running proxy-server, with every listener on an ephemeral loopback port.
pub struct Proxy {
    pub process: Process,
    pub addrs: HashMap<String, SocketAddr>,
    pub log: Arc<Mutex<Vec<String>>>,
    _dir: TempDir,
}

/// Every listener, so that a test that does not name a port still gets a free one.
pub const LISTENERS: &[(&str, &str)] = &[
    ("rtmp-server", "rtmp"),
    ("http-server", "http"),
    ("http-api", "http-api"),
    ("webrtc-server", "webrtc"),
    ("srt-server", "srt"),
    ("system-api", "system-api"),
];

impl Proxy {
    /// Starts the proxy with extra `--flag value` pairs, environment variables and
    /// optionally a config file body; waits until it says it is ready.
    pub fn start(flags: &[(&str, &str)], env: &[(&str, &str)], config_toml: Option<&str>) -> Self {
        let dir = TempDir::new("proxy");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_proxy-server"));
        cmd.current_dir(dir.path()).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        cmd.env("RUST_LOG", std::env::var("PROXY_TEST_LOG").unwrap_or_else(|_| "info".into()));
        for (flag, _) in LISTENERS {
            if !flags.iter().any(|(f, _)| f == flag) {
                cmd.arg(format!("--{flag}")).arg("127.0.0.1:0");
            }
        }
        for (flag, value) in flags {
            cmd.arg(format!("--{flag}")).arg(value);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(toml) = config_toml {
            let path = dir.path().join("proxy.toml");
            std::fs::write(&path, toml).expect("writing proxy.toml");
            cmd.arg("--config").arg(path);
        }
        let mut process = Process::spawn("proxy-server", &mut cmd);
        let stderr = process.child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("PROXY_TEST_ECHO").is_some() {
                    eprintln!("[proxy] {line}");
                }
                let is_ready = line.contains(" ready");
                sink.lock().unwrap().push(line);
                if is_ready {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        if ready_rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let lines = log.lock().unwrap().join("\n");
            panic!("proxy-server did not become ready within 30 s; its log:\n{lines}");
        }
        let addrs = log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| {
                let rest = &l[l.find("listening name=")? + "listening name=".len()..];
                let (name, addr) = rest.split_once(" addr=")?;
                Some((name.to_owned(), addr.trim().parse().ok()?))
            })
            .collect();
        Proxy { process, addrs, log, _dir: dir }
    }

    /// The address a listener bound.
    pub fn addr(&self, name: &str) -> SocketAddr {
        *self.addrs.get(name).unwrap_or_else(|| panic!("the proxy has no {name} listener; it has {:?}", self.addrs))
    }

    /// The proxy's log so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

/// An HTTP/1.1 response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A one-shot HTTP/1.1 request (Connection: close); enough for APIs and playlists.
pub fn http(method: &str, addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap_or_else(|e| panic!("connecting {addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    // A server may answer (and close) before reading a large body; that is not our error.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw).unwrap_or_else(|| panic!("malformed HTTP response from {addr}: {:?}", String::from_utf8_lossy(&raw)))
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Some(Response { status, headers, body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).ok()?.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Polls `check` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
