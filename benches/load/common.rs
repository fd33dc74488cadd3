#![allow(dead_code)] // each load generator uses its own part
//! What the load generators share: starting the proxy binary, reading its CPU time and
//! memory from /proc, and a free loopback port.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The proxy under test, killed on drop.
pub struct ProxyProcess {
    pub child: Child,
    pub addrs: Vec<(String, SocketAddr)>,
}

impl ProxyProcess {
    /// Starts `binary` with every listener on 127.0.0.1:0 plus `args`, and waits for "ready".
    pub fn start(binary: &Path, args: &[&str], workdir: &Path) -> Self {
        let mut cmd = Command::new(binary);
        for flag in [
            "rtmp-server",
            "http-server",
            "http-api",
            "webrtc-server",
            "srt-server",
            "system-api",
        ] {
            cmd.arg(format!("--{flag}")).arg("127.0.0.1:0");
        }
        cmd.args(args)
            .current_dir(workdir)
            .env("RUST_LOG", "warn,proxy_server=info");
        // For comparing allocators and runtime sizes on the proxy alone (not on ffmpeg,
        // nginx or HAProxy): BENCH_PROXY_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2,
        // BENCH_PROXY_WORKERS=1.
        if let Ok(lib) = std::env::var("BENCH_PROXY_PRELOAD") {
            cmd.env("LD_PRELOAD", lib);
        }
        if let Ok(workers) = std::env::var("BENCH_PROXY_WORKERS") {
            cmd.env("TOKIO_WORKER_THREADS", workers);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let stderr = child.stderr.take().expect("piped");
        let mut addrs = Vec::new();
        let mut lines = BufReader::new(stderr).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(rest) = line.split("listening name=").nth(1) {
                if let Some((name, addr)) = rest.split_once(" addr=") {
                    addrs.push((name.to_owned(), addr.trim().parse().expect("address")));
                }
            }
            if line.contains(" ready") {
                break;
            }
        }
        // Keep draining stderr so the proxy never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        ProxyProcess { child, addrs }
    }

    pub fn addr(&self, name: &str) -> SocketAddr {
        self.addrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no {name} listener"))
    }

    /// CPU seconds (user + system) the process has used.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.child.id())
    }

    /// Resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds of a process: the nanosecond run time of its live threads
/// (/proc/PID/task/*/schedstat), since /proc/PID/stat counts in ticks of 10 ms, too coarse
/// for a relay that spends tens of milliseconds on a run. Falls back to the ticks.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return cpu_ticks_seconds(pid);
    };
    let mut ns = 0u64;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        ns += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    if ns == 0 {
        return cpu_ticks_seconds(pid);
    }
    ns as f64 / 1e9
}

/// CPU seconds (user + system) of a process, from /proc/PID/stat.
pub fn cpu_ticks_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks as f64 / clock_ticks() as f64
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// The proxy binary: `--proxy PATH`, else the `proxy-server` built beside this program.
/// Panics, saying how to build it, when it is not there.
pub fn proxy_binary(args: &[String]) -> std::path::PathBuf {
    let binary: std::path::PathBuf = args
        .windows(2)
        .find(|w| w[0] == "--proxy")
        .map(|w| w[1].clone().into())
        .unwrap_or_else(|| {
            // Built by the same `cargo build --release`, so it sits beside this program,
            // wherever CARGO_TARGET_DIR put them.
            std::env::current_exe()
                .ok()
                .and_then(|exe| Some(exe.parent()?.join("proxy-server")))
                .filter(|beside| beside.exists())
                .unwrap_or_else(|| {
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/proxy-server")
                })
        });
    assert!(
        binary.exists(),
        "build the proxy first: cargo build --release -p proxy-server ({} is missing)",
        binary.display()
    );
    binary
}

/// `--NAME VALUE` as a number, or the default.
pub fn arg_num(args: &[String], name: &str, default: u64) -> u64 {
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

pub fn sleep(d: Duration) {
    std::thread::sleep(d)
}

/// A free TCP port on loopback (bound and released: good enough for a bench's origin).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// nginx with Debian's RTMP module (live application `live`), in the foreground in `dir`;
/// killed on drop.
pub struct NginxRtmp {
    pub port: u16,
    child: Child,
}

impl NginxRtmp {
    pub fn start(dir: &Path) -> Self {
        let module = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
        assert!(
            Path::new(module).exists(),
            "nginx's RTMP module is needed: apt-get install -y nginx libnginx-mod-rtmp"
        );
        std::fs::create_dir_all(dir).expect("nginx dir");
        let port = free_tcp_port();
        let d = dir.display();
        let conf = format!(
            "load_module {module};\ndaemon off;\nmaster_process off;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;\n\
             application live {{ live on; }} }} }}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx is needed: apt-get install -y nginx libnginx-mod-rtmp");
        let nginx = NginxRtmp { port, child };
        wait_listening(port, || {
            format!(
                "nginx did not start: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            )
        });
        nginx
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGSTOP: a hung process; the kernel still completes TCP handshakes.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-STOP", &self.child.id().to_string()])
            .status();
    }

    /// SIGKILL: as abrupt as a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NginxRtmp {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits up to 10 s for `127.0.0.1:port` to accept a connection; past that, panics with
/// `why()`.
fn wait_listening(port: u16, why: impl Fn() -> String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{}", why());
        sleep(Duration::from_millis(50));
    }
}

/// HAProxy in `mode tcp` (the Debian package) relaying `127.0.0.1:listen` to
/// `127.0.0.1:origin`, in the foreground in `dir`: the floor a stream-aware relay is
/// measured against (it moves bytes and parses nothing). Killed on drop.
pub struct Haproxy {
    pub port: u16,
    pub child: Child,
}

impl Haproxy {
    /// Starts HAProxy with its defaults (one thread per core, like the proxy's runtime),
    /// probing its origin as the proxy does by default: a TCP check every 2 s within 1 s
    /// (PROXY_HEALTH_CHECK_INTERVAL and _TIMEOUT), up after 2 passes, down after 3
    /// failures. Without it HAProxy would be spared the periodic work the proxy does.
    pub fn start(dir: &Path, origin: u16) -> Self {
        std::fs::create_dir_all(dir).expect("haproxy dir");
        let port = free_tcp_port();
        let conf = format!(
            "global\n  maxconn 8000\n\
             defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 300s\n  timeout server 300s\n  timeout check 1s\n\
             frontend relay\n  bind 127.0.0.1:{port}\n  default_backend origin\n\
             backend origin\n  server o1 127.0.0.1:{origin} check inter 2s rise 2 fall 3\n"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, conf).expect("haproxy.cfg");
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy is needed: apt-get install -y haproxy");
        let haproxy = Haproxy { port, child };
        wait_listening(port, || {
            format!("haproxy did not start (config {})", path.display())
        });
        haproxy
    }

    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.child.id())
    }

    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of a process in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A FAKE HTTP-FLV origin (nginx-rtmp serves no HTTP-FLV): answers any request with
/// `clip` (an FLV file) looped from after its header, paced at `kbps` in 100 ms slices.
pub async fn fake_flv_origin(clip: std::sync::Arc<Vec<u8>>, kbps: u64) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let clip = clip.clone();
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                if tokio::io::AsyncReadExt::read(&mut stream, &mut head)
                    .await
                    .is_err()
                {
                    return;
                }
                let reply =
                    "HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nConnection: close\r\n\r\n";
                if tokio::io::AsyncWriteExt::write_all(&mut stream, reply.as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
                // Paced at the bitrate, in 100 ms slices, looping the clip.
                let slice = (kbps * 1000 / 8 / 10) as usize;
                let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
                let mut offset = 0;
                loop {
                    tick.tick().await;
                    let end = (offset + slice).min(clip.len());
                    if tokio::io::AsyncWriteExt::write_all(&mut stream, &clip[offset..end])
                        .await
                        .is_err()
                    {
                        return;
                    }
                    offset = if end == clip.len() { 13 } else { end };
                }
            });
        }
    });
    addr
}

/// The median (the upper one of an even count); sorts `v`.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Publishes the clip as fast as ffmpeg and the server allow; the wall time.
pub fn publish(clip: &Path, url: &str) -> f64 {
    let start = std::time::Instant::now();
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"])
        .arg(clip)
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .output()
        .expect("ffmpeg is needed: apt-get install -y ffmpeg");
    let took = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "publishing to {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}
