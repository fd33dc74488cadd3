//! TLS cost, measured in one run against one proxy: CPU per MB for an RTMP publish relayed
//! from RTMPS (the client leg encrypted) against the same publish over plain RTMP, and
//! TLS handshakes per second on the RTMPS listener (ECDSA P-256, then RSA 2048 after a
//! SIGHUP reload), with the proxy's CPU per handshake.
//!
//! The publisher is ffmpeg `-c copy` from a clip, as fast as it goes (no `-re`), to an
//! nginx-rtmp origin; runs alternate plain and TLS. Handshakes come from
//! `openssl s_time -new` (a full handshake per connection, no resumption). Only the
//! proxy's CPU is counted (/proc), not the clients'. The certificates come from a CA made
//! here with the `openssl` command.
//!
//! `cargo build --release -p proxy-server -p proxy-benches && target/release/tls-relay
//!  [--seconds 20] [--kbps 12000] [--runs 3] [--handshake-seconds 5] [--proxy PATH]`

#[path = "common.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = common::arg_num(&args, "--seconds", 20);
    let kbps = common::arg_num(&args, "--kbps", 12_000);
    let runs = common::arg_num(&args, "--runs", 3).max(1) as usize;
    let handshake_seconds = common::arg_num(&args, "--handshake-seconds", 5).max(1);
    let binary = common::proxy_binary(&args);

    let workdir = std::env::temp_dir().join(format!("tls-relay-{}", std::process::id()));
    std::fs::create_dir_all(&workdir).expect("workdir");
    let pki = Pki::new(&workdir.join("pki"));
    let (cert, key) = (workdir.join("cert.pem"), workdir.join("key.pem"));
    std::fs::copy(&pki.ecdsa.0, &cert).expect("cert");
    std::fs::copy(&pki.ecdsa.1, &key).expect("key");

    let clip = make_clip(&workdir, seconds, kbps);
    let clip_mb = std::fs::metadata(&clip).expect("clip").len() as f64 / 1e6;
    let nginx = common::NginxRtmp::start(&workdir.join("nginx"));
    std::fs::write(
        workdir.join("proxy.toml"),
        format!("[[origins]]\nname = \"nginx\"\nrtmp = {}\n", nginx.port),
    )
    .expect("config");
    let proxy = common::ProxyProcess::start(
        &binary,
        &[
            "--config",
            "proxy.toml",
            "--rtmps-server",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &workdir,
    );
    let plain = |n: usize| format!("rtmp://{}/live/plain{n}", proxy.addr("rtmp"));
    let tls = |n: usize| format!("rtmps://{}/live/tls{n}", proxy.addr("rtmps"));

    println!("TLS relay: {clip_mb:.1} MB clip ({seconds} s of 720p at {kbps} kbit/s), published without -re, {runs} runs each way, alternating");
    common::publish(&clip, &plain(99));
    common::publish(&clip, &tls(99));
    let (mut plain_wall, mut tls_wall) = (Vec::new(), Vec::new());
    let (mut plain_cpu, mut tls_cpu) = (0.0, 0.0);
    for n in 0..runs {
        let before = proxy.cpu_seconds();
        plain_wall.push(common::publish(&clip, &plain(n)));
        let between = proxy.cpu_seconds();
        tls_wall.push(common::publish(&clip, &tls(n)));
        plain_cpu += between - before;
        tls_cpu += proxy.cpu_seconds() - between;
    }
    let mb = clip_mb * runs as f64;
    let (plain_per_mb, tls_per_mb) = (plain_cpu / mb, tls_cpu / mb);
    println!(
        "plain RTMP: proxy CPU {:.2} ms per MB ({:.0} MB per CPU second); median wall {:.3} s",
        plain_per_mb * 1e3,
        1.0 / plain_per_mb.max(1e-9),
        common::median(&mut plain_wall)
    );
    println!(
        "RTMPS     : proxy CPU {:.2} ms per MB ({:.0} MB per CPU second); median wall {:.3} s",
        tls_per_mb * 1e3,
        1.0 / tls_per_mb.max(1e-9),
        common::median(&mut tls_wall)
    );
    println!(
        "CPU per MB ratio RTMPS / RTMP: {:.2}",
        tls_per_mb / plain_per_mb.max(1e-9)
    );

    let rtmps = proxy.addr("rtmps");
    let (rate, cpu_each) = handshakes(&proxy, rtmps, &pki.ca, handshake_seconds);
    println!("handshakes (ECDSA P-256): {rate:.0} per second from one s_time client; proxy CPU {:.3} ms each ({:.0} per proxy CPU second)", cpu_each * 1e3, 1.0 / cpu_each.max(1e-9));
    // The same listener after a certificate reload: the SIGHUP path, measured too.
    std::fs::copy(&pki.rsa.0, &cert).expect("cert");
    std::fs::copy(&pki.rsa.1, &key).expect("key");
    let reloaded = Command::new("kill")
        .args(["-HUP", &proxy.child.id().to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(reloaded, "kill -HUP failed");
    common::sleep(std::time::Duration::from_millis(500));
    let (rate, cpu_each) = handshakes(&proxy, rtmps, &pki.ca, handshake_seconds);
    println!("handshakes (RSA 2048, after SIGHUP): {rate:.0} per second; proxy CPU {:.3} ms each ({:.0} per proxy CPU second)", cpu_each * 1e3, 1.0 / cpu_each.max(1e-9));
    drop(proxy);
    drop(nginx);
    let _ = std::fs::remove_dir_all(&workdir);
}

/// Full handshakes from `openssl s_time -new` for `seconds`: (per second, proxy CPU
/// seconds per handshake).
fn handshakes(
    proxy: &common::ProxyProcess,
    addr: std::net::SocketAddr,
    ca: &Path,
    seconds: u64,
) -> (f64, f64) {
    let before = proxy.cpu_seconds();
    let out = Command::new("openssl")
        .args(["s_time", "-connect", &addr.to_string(), "-new"])
        .args(["-time", &seconds.to_string()])
        .arg("-CAfile")
        .arg(ca)
        .stdin(Stdio::null())
        .output()
        .expect("openssl is needed: apt-get install -y openssl");
    let cpu = proxy.cpu_seconds() - before;
    let text = String::from_utf8_lossy(&out.stdout);
    // "1234 connections in 5.00s; 246.80 connections/user sec, ..." then
    // "1234 connections in 6 real seconds, ..."
    let line = text
        .lines()
        .find(|l| l.contains("connections in") && l.contains("real seconds"))
        .unwrap_or_else(|| panic!("unexpected s_time output:\n{text}"));
    let mut words = line.split_whitespace();
    let count: f64 = words.next().and_then(|n| n.parse().ok()).unwrap_or(0.0);
    let real: f64 = line
        .split("connections in ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(seconds as f64);
    assert!(count > 0.0, "no handshake completed:\n{text}");
    (count / real.max(1e-9), cpu / count)
}

struct Pki {
    ca: PathBuf,
    ecdsa: (PathBuf, PathBuf),
    rsa: (PathBuf, PathBuf),
}

impl Pki {
    fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("pki dir");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .current_dir(dir)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("openssl is needed: apt-get install -y openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=bench-ca",
        ]);
        let leaf = |name: &str, newkey: &[&str]| {
            let (k, csr, c) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
            );
            let mut req = vec!["req", "-new", "-nodes"];
            req.extend_from_slice(newkey);
            req.extend_from_slice(&["-keyout", &k, "-out", &csr, "-subj", "/CN=localhost"]);
            run(&req);
            std::fs::write(
                dir.join("san.ext"),
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
            )
            .expect("san");
            run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "san.ext",
                "-out",
                &c,
            ]);
            (dir.join(c), dir.join(k))
        };
        let ecdsa = leaf(
            "ecdsa",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        );
        let rsa = leaf("rsa", &["-newkey", "rsa:2048"]);
        Pki {
            ca: dir.join("ca.pem"),
            ecdsa,
            rsa,
        }
    }
}

/// A constant-bitrate 720p H.264/AAC clip (filler NAL units: the size the bitrate says).
fn make_clip(dir: &Path, seconds: u64, kbps: u64) -> PathBuf {
    let path = dir.join("clip.flv");
    let rate = format!("{kbps}k");
    let buffer = format!("{}k", kbps * 2);
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=1280x720:rate=30:duration={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=48000:duration={seconds}"
        ))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "60",
            "-pix_fmt",
            "yuv420p",
        ])
        .args([
            "-b:v", &rate, "-minrate", &rate, "-maxrate", &rate, "-bufsize", &buffer,
        ])
        .args(["-x264-params", "nal-hrd=cbr"])
        .args(["-c:a", "aac", "-b:a", "128k", "-f", "flv"])
        .arg(&path)
        .stdin(Stdio::null())
        .status()
        .expect("ffmpeg is needed to make the clip: apt-get install -y ffmpeg");
    assert!(status.success(), "ffmpeg failed to make the clip");
    path
}
