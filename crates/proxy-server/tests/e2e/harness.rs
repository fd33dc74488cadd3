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
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or(None);
    found.unwrap_or_else(|| {
        panic!("this test needs `{program}`, which is not installed: run `apt-get install -y {package}` (or `scripts/test.sh`, which installs it)")
    })
}

/// A free TCP port on 127.0.0.1 (for programs that cannot report the port they bound).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// A free UDP port on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("binding udp 127.0.0.1:0")
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
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Process {
            name: name.to_owned(),
            child,
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
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
        Self::launch(None, flags, env, config_toml)
    }

    /// As [`Proxy::start`], with the open-file limit set to `soft` (and `hard`) by
    /// util-linux's `prlimit` before the proxy starts.
    pub fn start_with_nofile(
        (soft, hard): (u64, u64),
        flags: &[(&str, &str)],
        env: &[(&str, &str)],
        config_toml: Option<&str>,
    ) -> Self {
        Self::launch(Some((soft, hard)), flags, env, config_toml)
    }

    fn launch(
        nofile: Option<(u64, u64)>,
        flags: &[(&str, &str)],
        env: &[(&str, &str)],
        config_toml: Option<&str>,
    ) -> Self {
        let dir = TempDir::new("proxy");
        let binary = env!("CARGO_BIN_EXE_proxy-server");
        let mut cmd = match nofile {
            None => Command::new(binary),
            Some((soft, hard)) => {
                // prlimit sets the limits, then execs the proxy: the pid stays the proxy's.
                let mut cmd = Command::new(require_program("prlimit", "util-linux"));
                cmd.arg(format!("--nofile={soft}:{hard}"))
                    .arg("--")
                    .arg(binary);
                cmd
            }
        };
        cmd.current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd.env(
            "RUST_LOG",
            std::env::var("PROXY_TEST_LOG").unwrap_or_else(|_| "info".into()),
        );
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
        Proxy {
            process,
            addrs,
            log,
            _dir: dir,
        }
    }

    /// The address a listener bound.
    pub fn addr(&self, name: &str) -> SocketAddr {
        *self
            .addrs
            .get(name)
            .unwrap_or_else(|| panic!("the proxy has no {name} listener; it has {:?}", self.addrs))
    }

    /// The proxy's log so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The config file given with `--config` (written by [`Proxy::start`] when it was
    /// given a body; a test may rewrite it and ask for a reload).
    pub fn config_path(&self) -> PathBuf {
        self._dir.path().join("proxy.toml")
    }

    /// The proxy's process id.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// A line of the proxy's `/proc/PID/status` (`VmRSS`, `FDSize`...), as its number.
    pub fn proc_status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("reading the proxy's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    /// Descriptors the proxy holds open now.
    pub fn open_descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .expect("listing the proxy's descriptors")
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
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A one-shot HTTP/1.1 request (Connection: close); enough for APIs and playlists.
pub fn http(
    method: &str,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connecting {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    // A server may answer (and close) before reading a large body; that is not our error.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "malformed HTTP response from {addr}: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
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
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body)?;
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(
            std::str::from_utf8(&data[..line_end])
                .ok()?
                .split(';')
                .next()?
                .trim(),
            16,
        )
        .ok()?;
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

/// nginx with Debian's nginx-rtmp module: an RTMP origin that also writes HLS, served by
/// nginx's HTTP server. Runs in the foreground in its own directory; stopped on drop.
pub struct NginxRtmp {
    pub rtmp_port: u16,
    pub http_port: u16,
    pub dir: TempDir,
    _process: Process,
}

impl NginxRtmp {
    /// Starts nginx-rtmp; `on_publish` is an HTTP URL nginx asks before accepting a
    /// publisher (answering non-2xx refuses it).
    pub fn start(on_publish: Option<&str>) -> Self {
        Self::start_with(on_publish, "")
    }

    /// As [`NginxRtmp::start`], with options after the RTMP `listen` address (e.g.
    /// `proxy_protocol`).
    pub fn start_with(on_publish: Option<&str>, rtmp_listen_options: &str) -> Self {
        Self::start_with_locations(
            on_publish,
            rtmp_listen_options,
            "location /live/ { alias HLS/; add_header Cache-Control no-cache; }",
        )
    }

    /// As [`NginxRtmp::start_with`], with the HTTP server's `locations` (`HLS` in them
    /// stands for the directory nginx-rtmp writes HLS to).
    pub fn start_with_locations(
        on_publish: Option<&str>,
        rtmp_listen_options: &str,
        locations: &str,
    ) -> Self {
        let nginx = require_program("nginx", "nginx libnginx-mod-rtmp");
        let module = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
        assert!(
            std::path::Path::new(module).exists(),
            "this test needs nginx's RTMP module: run `apt-get install -y libnginx-mod-rtmp`"
        );
        let dir = TempDir::new("nginx");
        let (rtmp_port, http_port) = (free_port(), free_port());
        let d = dir.path().display();
        std::fs::create_dir_all(dir.path().join("hls")).unwrap();
        let on_publish = on_publish
            .map(|url| format!("on_publish {url};"))
            .unwrap_or_default();
        let locations = locations.replace("HLS", &format!("{d}/hls"));
        let conf = format!(
            r#"load_module {module};
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
rtmp {{
    server {{
        listen 127.0.0.1:{rtmp_port} {rtmp_listen_options};
        chunk_size 4096;
        application live {{
            live on;
            {on_publish}
            hls on;
            hls_path {d}/hls;
            hls_fragment 1s;
            hls_playlist_length 6s;
        }}
    }}
}}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
    server {{
        listen 127.0.0.1:{http_port};
        {locations}
    }}
}}
"#
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let mut cmd = Command::new(nginx);
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let process = Process::spawn("nginx", &mut cmd);
        let up = wait_for(Duration::from_secs(10), || {
            (TcpStream::connect(("127.0.0.1", rtmp_port)).is_ok()
                && TcpStream::connect(("127.0.0.1", http_port)).is_ok())
            .then_some(())
        });
        if up.is_none() {
            let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
            panic!("nginx-rtmp did not start; error.log:\n{log}");
        }
        NginxRtmp {
            rtmp_port,
            http_port,
            dir,
            _process: process,
        }
    }

    /// nginx's access log (the requests the proxy forwarded).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// nginx's error log.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// The `[[origins]]` entry listing this nginx as a static origin.
    pub fn origin_toml(&self, name: &str) -> String {
        format!(
            "[[origins]]\nname = \"{name}\"\nrtmp = {}\nhttp = {}\n",
            self.rtmp_port, self.http_port
        )
    }
}

/// ffmpeg publishing a generated H.264/AAC clip (lavfi test sources) to `url` for
/// `seconds`, in real time unless `realtime` is false. The output format follows the URL
/// scheme unless `format` is given.
pub fn ffmpeg_publish(url: &str, seconds: u32, realtime: bool, format: &str) -> Process {
    let ffmpeg = require_program("ffmpeg", "ffmpeg");
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin"]);
    if realtime {
        cmd.arg("-re");
    }
    cmd.args([
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc=size=320x240:rate=25:duration={seconds}"),
    ]);
    cmd.args([
        "-f",
        "lavfi",
        "-i",
        &format!("sine=frequency=440:sample_rate=44100:duration={seconds}"),
    ]);
    cmd.args([
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-g",
        "25",
        "-pix_fmt",
        "yuv420p",
    ]);
    cmd.args(["-c:a", "aac", "-b:a", "64k", "-f"]);
    // `format` may carry output options after the format name ("flv -listen 1").
    cmd.args(format.split_whitespace());
    cmd.arg(url);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    Process::spawn("ffmpeg publisher", &mut cmd)
}

/// Plays `url` with ffmpeg for up to `seconds` of media and returns the number of video
/// frames decoded (0 if it could not play), with ffmpeg's stderr for diagnostics.
pub fn ffmpeg_count_frames(url: &str, seconds: u32) -> (u64, String) {
    let ffmpeg = require_program("ffmpeg", "ffmpeg");
    let output = Command::new(ffmpeg)
        .args([
            "-hide_banner",
            "-nostdin",
            "-rw_timeout",
            "10000000",
            "-i",
            url,
            "-t",
            &seconds.to_string(),
            "-map",
            "0:v:0",
            "-f",
            "null",
            "-",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("running ffmpeg");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let frames = stderr
        .rsplit("frame=")
        .next()
        .filter(|_| stderr.contains("frame="))
        .and_then(|tail| tail.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (frames, stderr)
}

/// Waits until something listens on 127.0.0.1:`port` without connecting to it (some
/// servers, like ffmpeg's `-listen 1`, serve only their first client).
pub fn wait_listening(port: u16, timeout: Duration) -> bool {
    let needle = format!(":{port:04X} ");
    wait_for(timeout, || {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        // Field 4 is the state; 0A is LISTEN.
        table
            .lines()
            .any(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                fields.len() > 3
                    && format!("{} ", fields[1]).ends_with(&needle)
                    && fields[3] == "0A"
            })
            .then_some(())
    })
    .is_some()
}

/// A real redis-server on a free loopback port, without persistence; stopped on drop.
pub struct RedisServer {
    pub port: u16,
    process: Option<Process>,
    dir: TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        let dir = TempDir::new("redis");
        let mut redis = RedisServer {
            port: free_port(),
            process: None,
            dir,
        };
        redis.restart();
        redis
    }

    /// Stops the server (SIGKILL: as abrupt as a crash).
    pub fn kill(&mut self) {
        self.process = None;
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        let binary = require_program("redis-server", "redis-server");
        let mut cmd = Command::new(binary);
        cmd.args([
            "--bind",
            "127.0.0.1",
            "--port",
            &self.port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ]);
        cmd.current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.process = Some(Process::spawn("redis-server", &mut cmd));
        let up = wait_for(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", self.port)).ok()
        });
        assert!(
            up.is_some(),
            "redis-server did not start on port {}",
            self.port
        );
    }

    /// The keys matching `pattern` (redis-cli's SCAN).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let cli = require_program("redis-cli", "redis-tools");
        let out = Command::new(cli)
            .args(["-p", &self.port.to_string(), "--scan", "--pattern", pattern])
            .output()
            .expect("running redis-cli");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The proxy flags that use this server.
    pub fn proxy_flags(&self) -> Vec<(&'static str, String)> {
        vec![
            ("load-balancer-type", "redis".into()),
            ("redis-host", "127.0.0.1".into()),
            ("redis-port", self.port.to_string()),
        ]
    }
}

/// Starts a proxy on a shared Redis with extra flags.
pub fn fleet_proxy(
    redis: &RedisServer,
    extra: &[(&str, &str)],
    config_toml: Option<&str>,
) -> Proxy {
    let owned = redis.proxy_flags();
    let mut flags: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    flags.extend_from_slice(extra);
    Proxy::start(&flags, &[], config_toml)
}

impl NginxRtmp {
    /// Kills nginx (SIGKILL: as abrupt as a crash): its listening ports close and its
    /// connections are reset at once.
    pub fn kill(&mut self) {
        let _ = self._process.child.kill();
        let _ = self._process.child.wait();
    }

    /// Stops nginx (SIGSTOP), as a hung process: the kernel still accepts TCP connections
    /// on its ports, but nothing answers. [`NginxRtmp::resume`] undoes it.
    pub fn pause(&mut self) {
        self.signal("-STOP");
    }

    /// Lets a paused nginx run again (SIGCONT).
    pub fn resume(&mut self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(signal)
            .arg(self._process.child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill {signal} nginx failed");
    }

    /// Starts nginx again after [`NginxRtmp::kill`], with the same configuration and ports.
    pub fn restart(&mut self) {
        let nginx = require_program("nginx", "nginx libnginx-mod-rtmp");
        let dir = self.dir.path();
        let mut cmd = Command::new(nginx);
        cmd.arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self._process = Process::spawn("nginx", &mut cmd);
        let (rtmp_port, http_port) = (self.rtmp_port, self.http_port);
        let up = wait_for(Duration::from_secs(10), || {
            (TcpStream::connect(("127.0.0.1", rtmp_port)).is_ok()
                && TcpStream::connect(("127.0.0.1", http_port)).is_ok())
            .then_some(())
        });
        if up.is_none() {
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            panic!("nginx-rtmp did not start again; error.log:\n{log}");
        }
    }
}

/// ffmpeg playing `url` into nothing until stopped: a viewer that stays.
pub fn ffmpeg_play(url: &str) -> Process {
    let ffmpeg = require_program("ffmpeg", "ffmpeg");
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i", url])
        .args(["-map", "0:v:0", "-c", "copy", "-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Process::spawn("ffmpeg player", &mut cmd)
}

/// nginx as an HTTP origin that requires the PROXY protocol (`listen ... proxy_protocol`)
/// and answers every request with what the header told it:
/// `<client ip> <client port> <server ip> <server port> xff=<X-Forwarded-For>`.
/// Stopped on drop.
pub struct NginxProxyProtocol {
    pub http_port: u16,
    pub dir: TempDir,
    _process: Process,
}

impl NginxProxyProtocol {
    pub fn start() -> Self {
        let nginx = require_program("nginx", "nginx");
        let dir = TempDir::new("nginx-pp");
        let http_port = free_port();
        let d = dir.path().display();
        let conf = format!(
            r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{http_port} proxy_protocol;
        location / {{
            default_type text/plain;
            return 200 "$proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr $proxy_protocol_server_port xff=$http_x_forwarded_for";
        }}
    }}
}}
"#
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let mut cmd = Command::new(nginx);
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let process = Process::spawn("nginx", &mut cmd);
        // Not by connecting: a connection without a header would only log an error.
        if !wait_listening(http_port, Duration::from_secs(10)) {
            let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
            panic!("nginx did not start; error.log:\n{log}");
        }
        NginxProxyProtocol {
            http_port,
            dir,
            _process: process,
        }
    }

    /// nginx's error log (where a bad or missing PROXY header is reported).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}
