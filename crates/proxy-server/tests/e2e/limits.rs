//! Limits and abuse, and the origin leg: per-client-IP limits across listeners, a failed
//! origin connect marking the origin down and placing the stream elsewhere, and the
//! PROXY protocol v2 header towards origins.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{
    ffmpeg_count_frames, ffmpeg_publish, free_port, http, wait_for, NginxProxyProtocol, NginxRtmp,
    Process, Proxy,
};

/// The value of a Prometheus sample whose labels include all of `labels` (0 if absent).
pub fn metric(proxy: &Proxy, name: &str, labels: &[(&str, &str)]) -> f64 {
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

/// Whether the proxy closed the connection at once (EOF or reset within 5 s): an accepted
/// connection that says nothing is held for the (long) handshake timeout instead.
fn closed_at_once(mut stream: &TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
        Ok(_) => panic!("the proxy sent bytes to a client that sent none"),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(e) => panic!("reading: {e}"),
    }
}

/// Whether the connection is still open after `wait` without a byte either way.
fn held_open(mut stream: &TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut))
}

/// A connection from a given local address (any 127/8 address is loopback on Linux).
pub fn connect_from(local: &str, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&local.parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.connect(&to.into()).unwrap();
    socket.into()
}

fn wait_exit(process: &mut Process, timeout: Duration) -> (std::process::ExitStatus, String) {
    let status = wait_for(timeout, || process.child.try_wait().ok().flatten())
        .unwrap_or_else(|| panic!("ffmpeg did not finish within {timeout:?}"));
    let mut stderr = String::new();
    if let Some(mut e) = process.child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    (status, stderr)
}

fn wait_log(proxy: &Proxy, needle: &str, timeout: Duration) -> bool {
    wait_for(timeout, || proxy.log_text().contains(needle).then_some(())).is_some()
}

#[test]
fn a_client_ip_over_its_limit_is_refused_at_once_and_others_carry_on() {
    let nginx = NginxRtmp::start(None);
    let proxy = Proxy::start(
        &[
            ("max-connections-per-ip", "3"),
            // Idle connections that were accepted stay open far longer than a refusal takes.
            ("handshake-timeout", "60s"),
        ],
        &[],
        Some(&nginx.origin_toml("nginx")),
    );
    let rtmp = proxy.addr("rtmp");
    let accepted = || {
        metric(
            &proxy,
            "proxy_client_connections_total",
            &[("protocol", "rtmp")],
        )
    };

    let idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(rtmp).unwrap()).collect();
    assert!(
        wait_for(Duration::from_secs(10), || (accepted() >= 2.0)
            .then_some(()))
        .is_some(),
        "the two idle connections were not accepted"
    );

    // The third connection of 127.0.0.1: a real publisher.
    let mut publisher = ffmpeg_publish(&format!("rtmp://{rtmp}/live/cam"), 6, true, "flv");
    assert!(
        wait_log(&proxy, "publish started", Duration::from_secs(15)),
        "{}",
        proxy.log_text()
    );
    // The fourth and fifth are turned away while it publishes...
    for n in 4..=5 {
        let extra = TcpStream::connect(rtmp).unwrap();
        assert!(
            closed_at_once(&extra),
            "connection {n} of one IP with a limit of 3 was held open"
        );
    }
    // ...but another client IP is not.
    let other = connect_from("127.0.0.2:0", rtmp);
    assert!(
        held_open(&other, Duration::from_secs(1)),
        "a connection from 127.0.0.2 was refused"
    );
    let (status, stderr) = wait_exit(&mut publisher, Duration::from_secs(30));
    assert!(status.success(), "the publisher was disturbed: {stderr}");
    assert!(
        metric(
            &proxy,
            "proxy_refusals_total",
            &[("protocol", "rtmp"), ("reason", "ip_limit")]
        ) >= 2.0
    );
    assert!(
        proxy
            .log_text()
            .contains("refused: the client's IP has as many connections as it may"),
        "{}",
        proxy.log_text()
    );

    // The idle ones leave: their slots come back, and a publish works again.
    drop(idle);
    drop(other);
    let mut again = ffmpeg_publish(&format!("rtmp://{rtmp}/live/cam2"), 2, false, "flv");
    let (status, stderr) = wait_exit(&mut again, Duration::from_secs(30));
    assert!(status.success(), "{stderr}\n{}", proxy.log_text());
    let held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(rtmp).unwrap()).collect();
    assert!(
        held.iter()
            .all(|s| held_open(s, Duration::from_millis(500))),
        "the slots of closed connections were not given back"
    );
}

#[test]
fn the_ip_limit_counts_every_listener_srt_included() {
    let proxy = Proxy::start(
        &[
            ("max-connections-per-ip", "1"),
            ("handshake-timeout", "60s"),
        ],
        &[],
        None,
    );
    let held = TcpStream::connect(proxy.addr("rtmp")).unwrap();
    assert!(wait_for(Duration::from_secs(10), || {
        (metric(
            &proxy,
            "proxy_client_connections_total",
            &[("protocol", "rtmp")],
        ) >= 1.0)
            .then_some(())
    })
    .is_some());
    // The HTTP listener: closed at once too.
    let http_conn = TcpStream::connect(proxy.addr("http")).unwrap();
    assert!(closed_at_once(&http_conn));
    // SRT: the handshake is rejected (SRT_REJX_OVERLOAD) before any origin is looked for.
    let srt = proxy.addr("srt");
    let url = format!("srt://{srt}?streamid=#!::r=live/cam,m=publish");
    let mut publisher = ffmpeg_publish(&url, 2, false, "mpegts");
    let (status, _) = wait_exit(&mut publisher, Duration::from_secs(20));
    assert!(!status.success());
    assert!(
        wait_log(
            &proxy,
            "SRT connection refused: the client's IP has as many sessions as it may",
            Duration::from_secs(5)
        ),
        "{}",
        proxy.log_text()
    );
    assert!(!proxy.log_text().contains("reject=1503"));
    // With the RTMP connection gone, SRT gets as far as the balancer (no origin: 1503).
    drop(held);
    assert!(wait_log(
        &proxy,
        "closed before publish or play",
        Duration::from_secs(5)
    ));
    let mut publisher = ffmpeg_publish(&url, 2, false, "mpegts");
    let _ = wait_exit(&mut publisher, Duration::from_secs(20));
    assert!(
        wait_log(&proxy, "reject=1503", Duration::from_secs(5)),
        "{}",
        proxy.log_text()
    );
}

pub fn server(proxy: &Proxy, id: &str) -> Value {
    let r = http("GET", proxy.addr("system-api"), "/api/v1/servers", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["id"] == id).cloned())
        .unwrap_or_else(|| panic!("origin {id} is not listed: {}", r.text()))
}

/// A live origin and one on a closed port, round-robin (which goes by name: "dead" is
/// offered first), no probes: only the failed connects can tell the proxy it is dead.
fn live_and_dead_origins() -> (NginxRtmp, Proxy) {
    let nginx = NginxRtmp::start(None);
    let toml = format!(
        "{}[[origins]]\nname = \"dead\"\nrtmp = {}\nhttp = {}\n",
        nginx.origin_toml("live"),
        free_port(),
        free_port()
    );
    let proxy = Proxy::start(
        &[
            ("lb-strategy", "round-robin"),
            ("health-check-interval", "off"),
        ],
        &[],
        Some(&toml),
    );
    (nginx, proxy)
}

#[test]
fn a_failed_origin_connect_marks_it_down_and_every_publish_succeeds() {
    let (_nginx, proxy) = live_and_dead_origins();
    let rtmp = proxy.addr("rtmp");
    for n in 0..4 {
        let mut publisher = ffmpeg_publish(&format!("rtmp://{rtmp}/live/cam{n}"), 2, false, "flv");
        let (status, stderr) = wait_exit(&mut publisher, Duration::from_secs(30));
        assert!(
            status.success(),
            "publish {n} failed: {stderr}\n{}",
            proxy.log_text()
        );
    }
    let log = proxy.log_text();
    assert!(
        log.contains("placing on another origin after a failed connect"),
        "round-robin never picked the dead origin first:\n{log}"
    );
    let dead = server(&proxy, "dead");
    assert_eq!(dead["alive"], false, "{dead}");
    let reason = dead["down"].as_str().unwrap_or_default();
    assert!(reason.contains("connect failed"), "{dead}");
    assert_eq!(server(&proxy, "live")["alive"], true);
    assert!(
        metric(
            &proxy,
            "proxy_origin_retries_total",
            &[("protocol", "rtmp")]
        ) >= 1.0
    );
    assert!(
        metric(
            &proxy,
            "proxy_origin_connect_failures_total",
            &[("protocol", "rtmp")]
        ) >= 1.0
    );
    assert!(metric(&proxy, "proxy_origin_marks_total", &[("reason", "connect")]) >= 1.0);
}

#[test]
fn http_requests_are_placed_again_after_a_failed_connect() {
    let (_nginx, proxy) = live_and_dead_origins();
    for n in 0..4 {
        // nginx has no such playlist: its 404 proves the request reached it.
        let r = http(
            "GET",
            proxy.addr("http"),
            &format!("/live/none{n}.m3u8"),
            &[],
            b"",
        );
        assert_eq!(
            r.status,
            404,
            "request {n}: {}\n{}",
            r.text(),
            proxy.log_text()
        );
        assert!(r.header("server").is_some_and(|s| s.contains("nginx")));
    }
    assert!(
        metric(
            &proxy,
            "proxy_origin_retries_total",
            &[("protocol", "http")]
        ) >= 1.0
    );
    assert_eq!(server(&proxy, "dead")["alive"], false);
}

/// A raw GET through the proxy's HTTP listener; returns the body and the client's address.
fn get_raw(proxy: SocketAddr, path: &str) -> (String, SocketAddr) {
    let mut stream = TcpStream::connect(proxy).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let local = stream.local_addr().unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {proxy}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    (raw, local)
}

#[test]
fn an_http_origin_behind_the_proxy_protocol_sees_the_real_client() {
    let nginx = NginxProxyProtocol::start();
    let toml = format!("[[origins]]\nname = \"pp\"\nhttp = {}\n", nginx.http_port);
    let proxy = Proxy::start(&[("origin-proxy-protocol", "http")], &[], Some(&toml));
    let listener = proxy.addr("http");
    let (raw, client) = get_raw(listener, "/live/cam.flv");
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default();
    // The client as it connected to the proxy, and the proxy's listener it connected to.
    assert_eq!(
        body,
        format!(
            "127.0.0.1 {} 127.0.0.1 {} xff=127.0.0.1",
            client.port(),
            listener.port()
        ),
        "{raw}"
    );

    // Without the setting, nginx gets no header and drops the connection: a 502.
    let plain = Proxy::start(&[], &[], Some(&toml));
    let (raw, _) = get_raw(plain.addr("http"), "/live/cam.flv");
    assert!(raw.starts_with("HTTP/1.1 502"), "{raw}");
    assert!(
        nginx.error_log().contains("broken header"),
        "{}",
        nginx.error_log()
    );
}

#[test]
fn the_rtmp_leg_starts_with_a_proxy_protocol_v2_header() {
    // A fake origin: it only reads what the proxy sends first (Debian's nginx-rtmp reads
    // PROXY protocol v1 only, so it cannot play this part).
    let fake_origin = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = fake_origin.local_addr().unwrap().port();
    let reader = std::thread::spawn(move || loop {
        let (mut conn, _) = fake_origin.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut first = [0u8; 16 + 12 + 1];
        // A connection that sends nothing (a stray connect) is not the relayed client.
        if conn.read_exact(&mut first).is_ok() {
            return first;
        }
    });
    let toml = format!("[[origins]]\nname = \"fake\"\nrtmp = {port}\n");
    // Probes off: the RTMP probe also sends a header first, naming its own connection.
    let proxy = Proxy::start(
        &[
            ("origin-proxy-protocol", "rtmp"),
            ("health-check-interval", "off"),
        ],
        &[],
        Some(&toml),
    );
    let rtmp = proxy.addr("rtmp");
    // The publish fails (the fake origin speaks no RTMP); what reached it is the point.
    let mut publisher = ffmpeg_publish(&format!("rtmp://{rtmp}/live/cam"), 3, true, "flv");
    let first = reader.join().expect("the fake origin read the first bytes");
    let _ = publisher.child.kill();
    let header = ppp::v2::Header::try_from(&first[..28]).expect("a PROXY protocol v2 header");
    assert_eq!(header.command, ppp::v2::Command::Proxy);
    assert_eq!(header.protocol, ppp::v2::Protocol::Stream);
    let ppp::v2::Addresses::IPv4(addrs) = header.addresses else {
        panic!("not IPv4: {:?}", header.addresses)
    };
    assert_eq!(addrs.source_address.to_string(), "127.0.0.1");
    assert_ne!(addrs.source_port, 0);
    assert_eq!(
        SocketAddr::from((addrs.destination_address, addrs.destination_port)),
        rtmp
    );
    assert_eq!(first[28], 3, "RTMP's C0 follows the header");
}

#[test]
fn nginx_rtmp_behind_the_proxy_protocol_v1_gets_the_stream() {
    // Debian's nginx-rtmp reads only the v1 (text) header on an RTMP listener.
    let nginx = NginxRtmp::start_with(None, "proxy_protocol");
    let proxy = Proxy::start(
        &[
            ("origin-proxy-protocol", "rtmp"),
            ("origin-proxy-protocol-version", "1"),
            // Keeps nginx's error log to the relayed sessions.
            ("health-check-interval", "off"),
        ],
        &[],
        Some(&nginx.origin_toml("pp")),
    );
    let url = format!("rtmp://{}/live/cam", proxy.addr("rtmp"));
    let mut publisher = ffmpeg_publish(&url, 8, true, "flv");
    let (frames, stderr) = ffmpeg_count_frames(&url, 3);
    assert!(
        frames > 0,
        "no frames played through nginx-rtmp: {stderr}\n{}",
        nginx.error_log()
    );
    let (status, stderr) = wait_exit(&mut publisher, Duration::from_secs(30));
    assert!(
        status.success(),
        "publish failed: {stderr}\n{}",
        nginx.error_log()
    );
    // nginx logs the publish it accepted after reading the header (the harness's own
    // readiness check, a bare connect, is the one "bad header" it logs).
    let log = nginx.error_log();
    assert!(log.contains("publish: name='cam'"), "{log}");
}

#[test]
fn an_origin_at_its_max_connections_refuses_more_clients_of_this_proxy() {
    let nginx = NginxRtmp::start(None);
    let toml = format!("{}max_connections = 1\n", nginx.origin_toml("small"));
    let proxy = Proxy::start(&[], &[], Some(&toml));
    let rtmp = proxy.addr("rtmp");
    let mut publisher = ffmpeg_publish(&format!("rtmp://{rtmp}/live/cam"), 8, true, "flv");
    assert!(
        wait_log(&proxy, "publish started", Duration::from_secs(15)),
        "{}",
        proxy.log_text()
    );
    // The publisher holds the origin's only connection: a viewer is turned away.
    let (frames, stderr) = ffmpeg_count_frames(&format!("rtmp://{rtmp}/live/cam"), 1);
    assert_eq!(frames, 0, "{stderr}");
    assert!(
        stderr.contains("origin at its connection limit"),
        "ffmpeg said: {stderr}\n{}",
        proxy.log_text()
    );
    assert!(
        metric(
            &proxy,
            "proxy_refusals_total",
            &[("protocol", "rtmp"), ("reason", "origin_full")]
        ) >= 1.0
    );
    let (status, stderr) = wait_exit(&mut publisher, Duration::from_secs(30));
    assert!(status.success(), "{stderr}");
}

#[test]
fn an_oversized_request_head_is_refused_with_431() {
    let proxy = Proxy::start(&[], &[], None);
    for listener in ["http", "http-api"] {
        // hyper checks the limit between reads, so a head may pass it by one read; this
        // one is well beyond.
        let big = "x".repeat(256 * 1024);
        let r = http(
            "GET",
            proxy.addr(listener),
            "/live/cam.flv",
            &[("x-big", &big)],
            b"",
        );
        assert_eq!(r.status, 431, "{listener}: {}", r.text());
        // A head of ordinary size still gets an answer (503: no origin).
        let r = http(
            "GET",
            proxy.addr(listener),
            "/live/cam.flv",
            &[("x-small", "1")],
            b"",
        );
        assert_ne!(r.status, 431, "{listener}");
    }
}

#[test]
fn an_srt_origin_whose_port_is_unreachable_is_marked_down_and_replaced() {
    use crate::srt::{ffmpeg_srt_publish, sink_origin, srt_url, UdpSink};
    let sink = UdpSink::start();
    let live_port = crate::harness::free_udp_port();
    let _live = sink_origin(live_port, "", &sink);
    // Nothing listens there: the kernel answers the handshake with port unreachable.
    let dead_port = crate::harness::free_udp_port();
    let toml = format!(
        "[[origins]]\nname = \"live\"\nsrt = {live_port}\n[[origins]]\nname = \"dead\"\nsrt = {dead_port}\n"
    );
    let proxy = Proxy::start(&[("lb-strategy", "round-robin")], &[], Some(&toml));
    let srt = proxy.addr("srt");
    // Round-robin goes through the origins in order of name: "dead" comes first. (One
    // publish only: srt-live-transmit takes one caller, and listens again after a while.)
    // A publish succeeds only if the origin accepted it: the proxy answers the client's
    // handshake with the origin's own answer.
    let url = srt_url(srt, "#!::r=live/cam,m=publish", "");
    let mut publisher = ffmpeg_srt_publish(&url, 2);
    let (status, stderr) = wait_exit(&mut publisher, Duration::from_secs(20));
    assert!(status.success(), "{stderr}\n{}", proxy.log_text());
    assert!(sink.wait_for(10_000, Duration::from_secs(5)));
    assert!(
        proxy
            .log_text()
            .contains("placing on another origin after a failed handshake"),
        "{}",
        proxy.log_text()
    );
    let dead = server(&proxy, "dead");
    assert_eq!(dead["alive"], false, "{dead}");
    assert!(
        dead["down"]
            .as_str()
            .is_some_and(|d| d.contains("connect failed")),
        "{dead}"
    );
    assert!(metric(&proxy, "proxy_origin_retries_total", &[("protocol", "srt")]) >= 1.0);
}

#[test]
fn a_live_http_body_ends_when_the_origin_falls_silent() {
    // A fake origin (no real server stalls on cue): it starts an FLV response, sends one
    // chunk, then holds the connection without a byte for a minute.
    let fake_origin = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = fake_origin.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in fake_origin.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut head = [0u8; 4096];
            let _ = conn.read(&mut head);
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nFLV\r\n",
            );
            held.push(conn);
        }
    });
    let toml = format!("[[origins]]\nname = \"stalls\"\nhttp = {port}\n");
    let proxy = Proxy::start(
        &[("idle-timeout", "1s"), ("health-check-interval", "off")],
        &[],
        Some(&toml),
    );
    let mut client = TcpStream::connect(proxy.addr("http")).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        client,
        "GET /live/cam.flv HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let ended = client.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(
        ended.is_ok(),
        "the proxy kept a silent relay open: {ended:?}, {text}"
    );
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("FLV"), "{text}");
    // Cut short: no final chunk.
    assert!(!text.ends_with("0\r\n\r\n"), "{text}");
}
