//! TLS on the client-facing listeners (`rtmps`, `https`, `https-api`), with real clients
//! checking the proxy's certificate against a CA each test makes with the `openssl`
//! command: ffmpeg (RTMPS publish and play, HTTPS-FLV), curl (HLS over HTTP/2), aiortc
//! (WHIP/WHEP over HTTPS), `openssl s_client` (which certificate a handshake gets).
//! Origins are real: nginx-rtmp, ffmpeg's HTTP server, and the aiortc origin written for
//! these tests (not SRS).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{
    ffmpeg_publish, free_port, http, require_program, wait_for, wait_listening, NginxRtmp, Proxy,
    TempDir,
};
use crate::webrtc::peers::{client_with_env, PyOrigin};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// A test CA and the leaf certificates it signs, in a scratch directory.
struct Pki {
    dir: TempDir,
    ca: PathBuf,
}

/// A leaf's key type: the three rustls loads.
#[derive(Clone, Copy)]
enum KeyType {
    Ecdsa,
    Rsa,
    Ed25519,
}

fn openssl() -> PathBuf {
    require_program("openssl", "openssl")
}

fn run_openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(openssl())
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    fn new() -> Self {
        let dir = TempDir::new("pki");
        let d = dir.path();
        std::fs::write(
            d.join("ca.cnf"),
            "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
             default_md = sha256\npolicy = p\ncopy_extensions = copy\nunique_subject = no\n\
             [p]\ncommonName = supplied\n",
        )
        .unwrap();
        std::fs::write(d.join("index.txt"), "").unwrap();
        std::fs::write(d.join("serial"), "01\n").unwrap();
        run_openssl(
            d,
            &[
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
                "3",
                "-subj",
                "/CN=proxy-test-ca",
            ],
        );
        let ca = d.join("ca.pem");
        Pki { dir, ca }
    }

    /// A leaf named `cn` for `names` (DNS names; 127.0.0.1 is always in), valid now unless
    /// `expired`; returns (chain, key) paths.
    fn leaf(&self, cn: &str, names: &[&str], key: KeyType, expired: bool) -> (PathBuf, PathBuf) {
        let d = self.dir.path();
        let newkey: &[&str] = match key {
            KeyType::Ecdsa => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyType::Rsa => &["-newkey", "rsa:2048"],
            KeyType::Ed25519 => &["-newkey", "ed25519"],
        };
        let mut san = String::from("subjectAltName=IP:127.0.0.1");
        for n in names {
            san.push_str(&format!(",DNS:{n}"));
        }
        let (key_file, csr, cert) = (
            format!("{cn}.key"),
            format!("{cn}.csr"),
            format!("{cn}.pem"),
        );
        let subj = format!("/CN={cn}");
        let mut args = vec!["req", "-new", "-nodes"];
        args.extend_from_slice(newkey);
        args.extend_from_slice(&[
            "-keyout", &key_file, "-out", &csr, "-subj", &subj, "-addext", &san,
        ]);
        run_openssl(d, &args);
        let mut args = vec![
            "ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in",
            &csr, "-out", &cert, "-notext",
        ];
        if expired {
            args.extend_from_slice(&[
                "-startdate",
                "20200101000000Z",
                "-enddate",
                "20200201000000Z",
            ]);
        } else {
            args.extend_from_slice(&["-days", "2"]);
        }
        run_openssl(d, &args);
        (d.join(cert), d.join(key_file))
    }
}

/// The proxy's environment for a certificate pair.
fn tls_env<'a>(cert: &'a Path, key: &'a Path) -> Vec<(&'a str, &'a str)> {
    vec![
        ("PROXY_TLS_CERT", cert.to_str().unwrap()),
        ("PROXY_TLS_KEY", key.to_str().unwrap()),
    ]
}

/// The TLS listeners on ephemeral loopback ports.
const TLS_FLAGS: &[(&str, &str)] = &[
    ("rtmps-server", "127.0.0.1:0"),
    ("https-server", "127.0.0.1:0"),
    ("https-api", "127.0.0.1:0"),
];

/// What `openssl s_client` saw of a handshake with `addr` asking for `server_name`:
/// (the leaf's subject line, whether the chain verified against `ca`, everything said).
fn s_client(addr: SocketAddr, server_name: &str, ca: &Path) -> (String, bool, String) {
    let out = Command::new(openssl())
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            server_name,
        ])
        .arg("-CAfile")
        .arg(ca)
        .stdin(Stdio::null())
        .output()
        .expect("running openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let subject = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("subject="))
        .unwrap_or("")
        .trim()
        .to_owned();
    let verified = text.contains("Verify return code: 0 (ok)");
    (subject, verified, text)
}

fn curl() -> PathBuf {
    require_program("curl", "curl")
}

/// `curl --http2` GET of `url` checking the proxy against `ca`, for at most `max_time`
/// seconds: (HTTP version, status, body, stderr).
fn curl_h2(url: &str, ca: &Path, max_time: &str) -> (String, u16, Vec<u8>, String) {
    let dir = TempDir::new("curl");
    let body = dir.path().join("body");
    let out = Command::new(curl())
        .args([
            "--http2",
            "--silent",
            "--show-error",
            "--max-time",
            max_time,
        ])
        .arg("--cacert")
        .arg(ca)
        .arg("--output")
        .arg(&body)
        .args(["--write-out", "%{http_version} %{http_code}"])
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("running curl");
    let written = String::from_utf8_lossy(&out.stdout).into_owned();
    let (version, code) = written.split_once(' ').unwrap_or(("", "0"));
    (
        version.to_owned(),
        code.trim().parse().unwrap_or(0),
        std::fs::read(&body).unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Decodes up to `seconds` of `url` with ffmpeg, verifying the server against `ca`; the
/// video frames decoded and ffmpeg's stderr.
fn ffmpeg_frames_verified(url: &str, ca: &Path, seconds: u32) -> (u64, String) {
    let ffmpeg = require_program("ffmpeg", "ffmpeg");
    let output = Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-rw_timeout", "10000000"])
        .args(["-tls_verify", "1", "-ca_file"])
        .arg(ca)
        .args(["-i", url, "-t", &seconds.to_string()])
        .args(["-map", "0:v:0", "-f", "null", "-"])
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

/// The proxy's Prometheus text.
fn metrics(proxy: &Proxy) -> String {
    http("GET", proxy.addr("system-api"), "/metrics", &[], b"").text()
}

/// The value of a counter line starting with `series` (name and labels), 0 if absent.
fn counter(text: &str, name: &str, labels: &[&str]) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|lab| l.contains(lab)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

fn bytes_to_origin(proxy: &Proxy, stream: &str) -> u64 {
    let v = http("GET", proxy.addr("system-api"), "/api/v1/streams", &[], b"").json();
    v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["stream"] == stream)
        .and_then(|s| s["sessions"]["bytes_to_origin"].as_u64())
        .unwrap_or(0)
}

/// RTMPS in and out, HTTP-FLV over HTTPS, HLS over HTTP/2: every client checks the
/// proxy's certificate against the test CA.
#[test]
fn rtmps_publish_and_play_flv_and_hls_over_https() {
    let pki = Pki::new();
    let (cert, key) = pki.leaf("proxy", &["localhost"], KeyType::Ecdsa, false);
    let nginx = NginxRtmp::start(None);
    // FLV origins: ffmpeg's own HTTP server, which serves one client (the proxy); one
    // per HTTP version, each behind its own proxy (a proxy places a stream on any of its
    // origins).
    let flv_origin = || {
        let port = free_port();
        let origin = ffmpeg_publish(
            &format!("http://127.0.0.1:{port}/live/flv.flv"),
            40,
            true,
            "flv -listen 1",
        );
        assert!(wait_listening(port, SECS(10)), "ffmpeg did not listen");
        let mut flags = TLS_FLAGS.to_vec();
        flags.push(("health-check-interval", "off")); // one client: no probe
        let proxy = Proxy::start(
            &flags,
            &tls_env(&cert, &key),
            Some(&format!("[[origins]]\nname = \"ffmpeg\"\nhttp = {port}\n")),
        );
        (origin, proxy)
    };
    let (_flv_origin, flv_proxy) = flv_origin();
    let (_flv_origin_h2, flv_proxy_h2) = flv_origin();
    let proxy = Proxy::start(
        TLS_FLAGS,
        &tls_env(&cert, &key),
        Some(&nginx.origin_toml("nginx")),
    );
    let rtmps = proxy.addr("rtmps");
    let https = proxy.addr("https");
    let ca = pki.ca.to_str().unwrap();

    // ffmpeg publishes over RTMPS, verifying the proxy's certificate.
    let mut publisher = ffmpeg_publish(
        &format!("rtmps://{rtmps}/live/cam"),
        40,
        true,
        &format!("flv -tls_verify 1 -ca_file {ca}"),
    );
    let up = wait_for(SECS(15), || {
        (bytes_to_origin(&proxy, "__defaultVhost__/live/cam") > 50_000).then_some(())
    });
    assert!(
        up.is_some(),
        "no RTMPS publish reached nginx; proxy log:\n{}",
        proxy.log_text()
    );
    assert!(
        publisher.child.try_wait().unwrap().is_none(),
        "the publisher stopped"
    );

    // Played back over RTMPS.
    let (frames, said) = ffmpeg_frames_verified(&format!("rtmps://{rtmps}/live/cam"), &pki.ca, 2);
    assert!(
        frames >= 25,
        "decoded {frames} frames over RTMPS; ffmpeg:\n{said}"
    );

    // HTTP-FLV over HTTPS (ffmpeg speaks HTTP/1.1).
    let flv_https = flv_proxy.addr("https");
    let (frames, said) =
        ffmpeg_frames_verified(&format!("https://{flv_https}/live/flv.flv"), &pki.ca, 2);
    assert!(
        frames >= 25,
        "decoded {frames} frames over HTTPS-FLV; ffmpeg:\n{said}\nproxy log:\n{}",
        flv_proxy.log_text()
    );
    // And over HTTP/2: curl reads the live body until its time is up.
    let (version, status, body, err) = curl_h2(
        &format!("https://{}/live/flv.flv", flv_proxy_h2.addr("https")),
        &pki.ca,
        "2",
    );
    assert_eq!((version.as_str(), status), ("2", 200), "{err}");
    assert!(
        body.starts_with(b"FLV") && body.len() > 50_000,
        "{} bytes of FLV over HTTP/2: {err}",
        body.len()
    );

    // HLS (written by nginx-rtmp from the RTMPS publish) over HTTP/2.
    let playlist = wait_for(SECS(20), || {
        let (version, status, body, err) =
            curl_h2(&format!("https://{https}/live/cam.m3u8"), &pki.ca, "15");
        assert!(err.is_empty() || status != 0, "curl: {err}");
        (status == 200 && String::from_utf8_lossy(&body).contains(".ts"))
            .then_some((version, String::from_utf8_lossy(&body).into_owned()))
    });
    let (version, text) = playlist
        .unwrap_or_else(|| panic!("no playlist over HTTPS; proxy log:\n{}", proxy.log_text()));
    assert_eq!(version, "2", "curl --http2 negotiated HTTP/{version}");
    let segment = text
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap();
    assert!(segment.contains("spbhid="), "{text}");
    let path = if segment.starts_with('/') {
        segment.to_owned()
    } else {
        format!("/live/{segment}")
    };
    let (version, status, body, err) = curl_h2(&format!("https://{https}{path}"), &pki.ca, "15");
    assert_eq!((version.as_str(), status), ("2", 200), "{err}");
    assert_eq!(body.first(), Some(&0x47), "an MPEG-TS segment over HTTP/2");
    // nginx got the HTTP/2 requests as HTTP/1.1 with a Host.
    assert!(
        nginx.access_log().contains("GET /live/cam.m3u8 HTTP/1.1"),
        "{}",
        nginx.access_log()
    );
    publisher.terminate(SECS(5));
}

/// WHIP publish and WHEP play over HTTPS with aiortc; the Location stays on HTTPS.
#[test]
fn whip_and_whep_over_https() {
    let pki = Pki::new();
    let (cert, key) = pki.leaf("proxy", &["localhost"], KeyType::Rsa, false);
    let origin = PyOrigin::start(true);
    let proxy = Proxy::start(
        TLS_FLAGS,
        &tls_env(&cert, &key),
        Some(&origin.origin_toml("aiortc")),
    );
    let api = proxy.addr("https-api");
    // Python's ssl trusts the CA named by SSL_CERT_FILE.
    let env = [("SSL_CERT_FILE", pki.ca.to_str().unwrap())];
    let mut publisher = client_with_env(
        "publish",
        &format!("https://{api}/rtc/v1/whip/?app=live&stream=cam"),
        20,
        false,
        &env,
    );
    let answer = publisher.event("answer", SECS(20));
    assert_eq!(answer["status"], 201, "{answer}\n{}", proxy.log_text());
    let location = answer["location"].as_str().unwrap();
    assert!(
        location.starts_with('/'),
        "a path, resolved against the https:// URL the offer went to: {location}"
    );
    publisher.wait(SECS(15), "connected publisher", |v| {
        v["state"] == "connected"
    });
    assert!(
        wait_for(SECS(10), || (origin.frames("live/cam") >= 10).then_some(())).is_some(),
        "the origin decodes the video published over WHIP/HTTPS: {}",
        origin.state()
    );
    let mut player = client_with_env(
        "play",
        &format!("https://{api}/rtc/v1/whep/?app=live&stream=cam"),
        4,
        true,
        &env,
    );
    let answer = player.event("answer", SECS(20));
    assert_eq!(answer["status"], 201, "{answer}");
    assert!(player.frames_at_least(10, SECS(20)) >= 10);
    let deleted = player.event("deleted", SECS(20));
    assert_eq!(deleted["status"], 200, "{deleted}");
    assert!(
        deleted["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("https://{api}/")),
        "the DELETE went over HTTPS: {deleted}"
    );
    // Plain WHIP is still there, untouched.
    let plain = http("GET", proxy.addr("http-api"), "/api/v1/versions", &[], b"");
    assert_eq!(plain.status, 200);
}

/// Certificates change under a live RTMPS publish: on SIGHUP, and when the files change.
/// New handshakes get the new certificate, the publisher runs on, a bad file keeps the
/// old one, and a second pair (Ed25519) answers its own server name.
#[test]
fn certificates_reload_under_a_live_rtmps_publish() {
    let pki = Pki::new();
    let (v1_cert, v1_key) = pki.leaf("proxy-v1", &["localhost"], KeyType::Ecdsa, false);
    let (v2_cert, v2_key) = pki.leaf("proxy-v2", &["localhost"], KeyType::Rsa, false);
    let (v3_cert, v3_key) = pki.leaf("proxy-v3", &["localhost"], KeyType::Ecdsa, false);
    let (ed_cert, ed_key) = pki.leaf("ed-pair", &["ed.test"], KeyType::Ed25519, false);
    // The files the proxy reads, replaced by renames as a certificate manager does.
    let live = TempDir::new("live-cert");
    let (cert, key) = (live.path().join("cert.pem"), live.path().join("key.pem"));
    let install = |c: &Path, k: &Path| {
        for (from, to) in [(c, &cert), (k, &key)] {
            let tmp = to.with_extension("tmp");
            std::fs::copy(from, &tmp).unwrap();
            std::fs::rename(&tmp, to).unwrap();
        }
    };
    install(&v1_cert, &v1_key);
    let nginx = NginxRtmp::start(None);
    let toml = format!(
        "{}\n[[tls_certs]]\nnames = [\"ed.test\"]\ncert = \"{}\"\nkey = \"{}\"\n",
        nginx.origin_toml("nginx"),
        ed_cert.display(),
        ed_key.display()
    );
    let proxy = Proxy::start(TLS_FLAGS, &tls_env(&cert, &key), Some(&toml));
    let rtmps = proxy.addr("rtmps");
    let (subject, verified, said) = s_client(rtmps, "localhost", &pki.ca);
    assert!(subject.contains("proxy-v1") && verified, "{said}");
    let (subject, verified, said) = s_client(rtmps, "ed.test", &pki.ca);
    assert!(
        subject.contains("ed-pair") && verified,
        "the SNI pair (Ed25519): {said}"
    );

    let ca = pki.ca.to_str().unwrap();
    let mut publisher = ffmpeg_publish(
        &format!("rtmps://{rtmps}/live/cam"),
        60,
        true,
        &format!("flv -tls_verify 1 -ca_file {ca}"),
    );
    let stream = "__defaultVhost__/live/cam";
    assert!(
        wait_for(SECS(15), || (bytes_to_origin(&proxy, stream) > 50_000)
            .then_some(()))
        .is_some(),
        "no RTMPS publish; proxy log:\n{}",
        proxy.log_text()
    );

    // SIGHUP after the swap.
    install(&v2_cert, &v2_key);
    let kill = |signal: &str| {
        let ok = Command::new("kill")
            .args([signal, &proxy.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {signal}");
    };
    kill("-HUP");
    let seen = wait_for(SECS(10), || {
        let (subject, verified, _) = s_client(rtmps, "localhost", &pki.ca);
        (subject.contains("proxy-v2") && verified).then_some(())
    });
    assert!(
        seen.is_some(),
        "no new certificate after SIGHUP:\n{}",
        proxy.log_text()
    );
    assert!(proxy
        .log_text()
        .contains("SIGHUP: TLS certificates reloaded"));
    let before = bytes_to_origin(&proxy, stream);
    assert!(
        wait_for(SECS(10), || (bytes_to_origin(&proxy, stream)
            > before + 20_000)
            .then_some(()))
        .is_some(),
        "the publish stalled after the reload"
    );

    // A broken file: the previous certificate stays, and the log says why.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n").unwrap();
    kill("-HUP");
    assert!(
        wait_for(SECS(10), || proxy
            .log_text()
            .contains("TLS certificate not reloaded, the previous one stays in use")
            .then_some(()))
        .is_some(),
        "{}",
        proxy.log_text()
    );
    let (subject, verified, said) = s_client(rtmps, "localhost", &pki.ca);
    assert!(subject.contains("proxy-v2") && verified, "{said}");
    // A certificate with another pair's key: refused as well, and said.
    install(&v3_cert, &v1_key);
    kill("-HUP");
    assert!(
        wait_for(SECS(10), || proxy
            .log_text()
            .contains("keys may not be consistent: KeyMismatch")
            .then_some(()))
        .is_some(),
        "{}",
        proxy.log_text()
    );
    let (subject, verified, said) = s_client(rtmps, "localhost", &pki.ca);
    assert!(subject.contains("proxy-v2") && verified, "{said}");

    // No signal: the files change, and the watch notices.
    install(&v3_cert, &v3_key);
    let seen = wait_for(SECS(15), || {
        let (subject, verified, _) = s_client(rtmps, "localhost", &pki.ca);
        (subject.contains("proxy-v3") && verified).then_some(())
    });
    assert!(
        seen.is_some(),
        "the changed files were not reloaded:\n{}",
        proxy.log_text()
    );

    // One publish all along: the same session, still moving, the publisher still running.
    let before = bytes_to_origin(&proxy, stream);
    assert!(
        wait_for(SECS(10), || (bytes_to_origin(&proxy, stream)
            > before + 20_000)
            .then_some(()))
        .is_some(),
        "the publish stalled"
    );
    assert!(
        publisher.child.try_wait().unwrap().is_none(),
        "the publisher stopped"
    );
    let starts = proxy.log_text().matches("publish started").count();
    assert_eq!(starts, 1, "{}", proxy.log_text());
    let m = metrics(&proxy);
    assert!(
        counter(&m, "proxy_tls_reloads_total", &["outcome=\"failed\""]) >= 1,
        "{m}"
    );
    publisher.terminate(SECS(5));
}

/// Reads until the proxy closes the connection (or `limit` passes): whether it closed.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
        if start.elapsed() > limit {
            return false;
        }
    }
}

/// Garbage, a stalled handshake, and a client IP at its limit on the TLS ports: each is
/// closed with a reason in the log and the metrics, and a good client next to them is
/// served.
#[test]
fn garbage_and_stalled_handshakes_are_cut_and_cost_nothing_else() {
    let pki = Pki::new();
    let (cert, key) = pki.leaf("proxy", &["localhost"], KeyType::Ecdsa, false);
    let mut flags = TLS_FLAGS.to_vec();
    flags.extend([("handshake-timeout", "2s"), ("max-connections-per-ip", "3")]);
    let proxy = Proxy::start(&flags, &tls_env(&cert, &key), None);
    let (rtmps, https) = (proxy.addr("rtmps"), proxy.addr("https"));

    // Plain HTTP and RTMP bytes on the TLS ports.
    let mut http_on_tls = TcpStream::connect(https).unwrap();
    http_on_tls
        .write_all(b"GET /live/cam.flv HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(
        closed_within(&mut http_on_tls, SECS(3)),
        "plain HTTP on the HTTPS port"
    );
    let mut rtmp_on_tls = TcpStream::connect(rtmps).unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.extend([0x5a; 1536]);
    rtmp_on_tls.write_all(&c0c1).unwrap();
    assert!(
        closed_within(&mut rtmp_on_tls, SECS(3)),
        "plain RTMP on the RTMPS port"
    );

    // A client that connects and stalls mid-handshake (half a ClientHello record header).
    let mut staller = TcpStream::connect(rtmps).unwrap();
    staller.write_all(&[0x16, 0x03, 0x01]).unwrap();
    let started = Instant::now();
    // While it stalls, a good client gets its handshake.
    let (subject, verified, said) = s_client(rtmps, "localhost", &pki.ca);
    assert!(subject.contains("proxy") && verified, "{said}");
    assert!(
        closed_within(&mut staller, SECS(5)),
        "the staller was not cut"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "cut after {took:?}, before the timeout"
    );

    // The per-IP limit counts connections still in their handshake: three stallers hold
    // it, a fourth is closed at once.
    let stallers: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(https).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut fourth = TcpStream::connect(https).unwrap();
    assert!(
        closed_within(&mut fourth, Duration::from_millis(1500)),
        "the fourth got in"
    );
    drop(stallers);

    let log = proxy.log_text();
    assert!(
        log.contains("TLS handshake failed") && log.contains("not_tls"),
        "{log}"
    );
    assert!(
        log.contains("no TLS handshake within the handshake timeout"),
        "{log}"
    );
    let m = metrics(&proxy);
    let handshakes = "proxy_tls_handshakes_total";
    assert!(
        counter(
            &m,
            handshakes,
            &["protocol=\"https\"", "outcome=\"not_tls\""]
        ) >= 1,
        "{m}"
    );
    assert!(
        counter(
            &m,
            handshakes,
            &["protocol=\"rtmps\"", "outcome=\"not_tls\""]
        ) >= 1,
        "{m}"
    );
    assert!(
        counter(
            &m,
            handshakes,
            &["protocol=\"rtmps\"", "outcome=\"timeout\""]
        ) >= 1,
        "{m}"
    );
    assert!(
        counter(&m, handshakes, &["protocol=\"rtmps\"", "outcome=\"ok\""]) >= 1,
        "{m}"
    );
    assert!(
        counter(
            &m,
            "proxy_refusals_total",
            &["protocol=\"https\"", "reason=\"ip_limit\""]
        ) >= 1,
        "{m}"
    );
    // Still serving, once the stallers' slots are back.
    let served = wait_for(SECS(5), || {
        let (subject, verified, _) = s_client(https, "localhost", &pki.ca);
        (subject.contains("proxy") && verified).then_some(())
    });
    assert!(served.is_some(), "{}", proxy.log_text());
}

/// An expired certificate: the proxy says so when it loads it, clients refuse it with a
/// clear error, and the plain listeners are not affected.
#[test]
fn an_expired_certificate_is_named_in_the_log_and_refused_by_clients() {
    let pki = Pki::new();
    let (cert, key) = pki.leaf("proxy-old", &["localhost"], KeyType::Ecdsa, true);
    let proxy = Proxy::start(TLS_FLAGS, &tls_env(&cert, &key), None);
    let log = proxy.log_text();
    assert!(
        log.contains("TLS certificate expired on 2020-02-01 00:00:00 UTC"),
        "{log}"
    );
    let (_, status, _, err) = curl_h2(
        &format!("https://{}/api/v1/versions", proxy.addr("https")),
        &pki.ca,
        "15",
    );
    assert_eq!(status, 0, "curl accepted an expired certificate");
    assert!(
        err.contains("expired"),
        "curl's error names the cause: {err}"
    );
    // The client's refusal reaches the proxy's metrics as an alert.
    let m = wait_for(SECS(5), || {
        let m = metrics(&proxy);
        (counter(
            &m,
            "proxy_tls_handshakes_total",
            &["outcome=\"client_alert\""],
        ) >= 1)
            .then_some(m)
    });
    assert!(m.is_some(), "{}", metrics(&proxy));
    let plain = http("GET", proxy.addr("http"), "/api/v1/versions", &[], b"");
    assert_eq!(plain.status, 200);
}

/// A TLS listener with no certificate is a configuration error naming what to set.
#[test]
fn a_tls_listener_without_a_certificate_is_refused_at_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_proxy-server"))
        .args(["--check-config", "--rtmps-server", "0"])
        .env_remove("PROXY_TLS_CERT")
        .env_remove("PROXY_TLS_KEY")
        .current_dir(TempDir::new("no-cert").path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("PROXY_RTMPS_SERVER is on but no certificate is set"),
        "{err}"
    );
}

/// An HTTP/2 client that opens a connection and sends no request (answering nothing, not
/// even the PING of the GOAWAY) is cut: it cannot hold its slot with an idle connection.
#[test]
fn an_idle_http2_connection_is_closed_after_the_handshake_timeout() {
    let pki = Pki::new();
    let (cert, key) = pki.leaf("proxy", &["localhost"], KeyType::Ecdsa, false);
    let mut flags = TLS_FLAGS.to_vec();
    flags.push(("handshake-timeout", "1s"));
    let proxy = Proxy::start(&flags, &tls_env(&cert, &key), None);
    let mut cmd = Command::new(openssl());
    cmd.args(["s_client", "-quiet", "-alpn", "h2", "-connect"])
        .arg(proxy.addr("https").to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut client = crate::harness::Process::spawn("openssl s_client", &mut cmd);
    let mut stdin = client.child.stdin.take().unwrap();
    // The HTTP/2 preface and an empty SETTINGS frame, then nothing.
    stdin
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    stdin.flush().unwrap();
    let said = |needle: &'static str| {
        wait_for(SECS(6), || proxy.log_text().contains(needle).then_some(())).is_some()
    };
    assert!(
        said("closing an HTTP/2 connection with no request for 1s"),
        "{}",
        proxy.log_text()
    );
    assert!(
        said("closed an HTTP/2 connection that did not close within 1s of GOAWAY"),
        "{}",
        proxy.log_text()
    );
    drop(stdin);
}
