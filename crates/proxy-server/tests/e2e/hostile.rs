//! Hostile clients and local faults cost nothing (issue 13): a client without any secret
//! must not be able to spend the fleet's capacity, reach an origin's management API, or
//! make the proxy blame a healthy origin.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::harness::{
    ffmpeg_publish, fleet_proxy, free_port, http, wait_for, wait_listening, NginxProxyProtocol,
    NginxRtmp, Proxy, RedisServer,
};
use crate::limits::{connect_from, metric, server};

/// Two nginx origins listed statically, and the TOML naming them.
fn two_origins() -> (NginxRtmp, NginxRtmp, String) {
    let (a, b) = (NginxRtmp::start(None), NginxRtmp::start(None));
    let toml = format!("{}{}", a.origin_toml("a"), b.origin_toml("b"));
    (a, b, toml)
}

/// Running out of file descriptors is the proxy's own fault: the client gets a 503, and
/// neither the failed connect nor the probes meanwhile mark a healthy origin down.
#[test]
fn running_out_of_descriptors_marks_no_origin_down() {
    let (_a, _b, toml) = two_origins();
    let proxy = Proxy::start_with_nofile(
        (64, 64),
        &[
            ("handshake-timeout", "60s"),
            ("health-check-interval", "200ms"),
            ("health-check-fall", "1"),
        ],
        &[],
        Some(&toml),
    );
    assert!(
        proxy.log_text().contains("open-file limit is too low"),
        "a limit that cannot hold the connection limit is warned about at start:\n{}",
        proxy.log_text()
    );
    // Idle clients until the proxy cannot accept any more (the rest wait in the backlog).
    let http_addr = proxy.addr("http");
    let mut idle: Vec<TcpStream> = Vec::new();
    let exhausted = wait_for(Duration::from_secs(20), || {
        for _ in 0..8 {
            idle.push(TcpStream::connect(http_addr).expect("connecting an idle client"));
        }
        proxy
            .log_text()
            .contains("Too many open files")
            .then_some(())
    });
    assert!(
        exhausted.is_some(),
        "the proxy never ran out of descriptors"
    );
    // The first idle client was accepted long ago: its request makes the proxy connect
    // to an origin, with no descriptor to do it with. Probes fail the same way meanwhile.
    let mut client = idle.remove(0);
    client
        .write_all(b"GET /live/cam.flv HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = String::new();
    let _ = client.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 503"),
        "a local shortage is a 503, not the origin's 502: {answer:?}"
    );
    assert!(answer.contains("short of resources"), "{answer}");
    // Let several probe rounds fail locally before the descriptors come back.
    std::thread::sleep(Duration::from_millis(800));
    drop(idle);
    drop(client);
    let api_up = wait_for(Duration::from_secs(10), || {
        TcpStream::connect(proxy.addr("system-api")).ok()
    });
    assert!(api_up.is_some());
    for id in ["a", "b"] {
        let origin = server(&proxy, id);
        assert_eq!(
            origin["alive"],
            true,
            "origin {id} was blamed for the proxy's own shortage: {origin}\n{}",
            proxy.log_text()
        );
        assert!(origin["down"].is_null(), "{origin}");
    }
    assert!(
        metric(
            &proxy,
            "proxy_refusals_total",
            &[("reason", "local_resources")]
        ) >= 1.0
    );
    assert_eq!(
        metric(&proxy, "proxy_origin_marks_total", &[]),
        0.0,
        "no origin mark of any kind"
    );
}

/// At start the soft descriptor limit is raised to the hard one.
#[test]
fn the_soft_descriptor_limit_is_raised_to_the_hard_one() {
    let proxy = Proxy::start_with_nofile((256, 4096), &[], &[], None);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", proxy.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let soft: u64 = line
        .split_whitespace()
        .nth(3)
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert_eq!(soft, 4096, "{line}");
    let r = http("GET", proxy.addr("system-api"), "/healthz", &[], b"");
    assert_eq!(r.status, 200);
}

/// A client's own `X-Forwarded-For` is replaced by its address, so an origin hook reading
/// the first entry cannot be fooled; a peer listed in `PROXY_TRUSTED_PROXIES` keeps the
/// chain it sent, with itself appended. (nginx echoes the header it received.)
#[test]
fn x_forwarded_for_is_believed_only_from_trusted_proxies() {
    let nginx = NginxProxyProtocol::start();
    let toml = format!("[[origins]]\nname = \"pp\"\nhttp = {}\n", nginx.http_port);
    let spoofed = [("X-Forwarded-For", "6.6.6.6")];
    let echoed = |proxy: &Proxy| {
        let r = http("GET", proxy.addr("http"), "/live/cam.flv", &spoofed, b"");
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
            .rsplit_once("xff=")
            .map(|(_, x)| x.to_owned())
            .unwrap()
    };
    let untrusting = Proxy::start(&[("origin-proxy-protocol", "http")], &[], Some(&toml));
    assert_eq!(echoed(&untrusting), "127.0.0.1");
    let trusting = Proxy::start(
        &[("origin-proxy-protocol", "http")],
        &[("PROXY_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.0/8")],
        Some(&toml),
    );
    assert_eq!(echoed(&trusting), "6.6.6.6, 127.0.0.1");
}

/// An origin that accepts connections and never answers HTTP (a stopped nginx: the kernel
/// still completes the handshake) is held down like one that refused, and the request
/// goes to another origin instead of ending in a 502. Probes are off: only the request
/// can tell.
#[test]
fn an_origin_that_never_answers_is_marked_down_and_replaced() {
    let (mut hung, _live, _) = two_origins();
    let toml = format!(
        "{}{}",
        hung.origin_toml("a-hung"),
        _live.origin_toml("b-live")
    );
    let proxy = Proxy::start(
        &[
            ("lb-strategy", "round-robin"),
            ("health-check-interval", "off"),
            ("origin-connect-timeout", "1s"),
        ],
        &[],
        Some(&toml),
    );
    hung.pause();
    let r = http("GET", proxy.addr("http"), "/live/cam.m3u8", &[], b"");
    hung.resume();
    // nginx answers 404 for a stream it does not have: an answer, from the live origin.
    assert_eq!(r.status, 404, "{}\n{}", r.text(), proxy.log_text());
    let hung_status = server(&proxy, "a-hung");
    assert!(
        hung_status["down"]
            .as_str()
            .is_some_and(|why| why.contains("no response within")),
        "the silent origin is held down: {hung_status}"
    );
    assert!(metric(&proxy, "proxy_origin_retries_total", &[]) >= 1.0);
}

/// An HTTP-FLV viewer that stops reading is closed once nothing has got through to it for
/// the idle timeout, and its origin connection with it (the ffmpeg origin, serving one
/// client, then exits); other viewers are not its business.
#[test]
fn a_viewer_that_stops_reading_is_cut() {
    let origin_port = free_port();
    // Not in real time: the stream fills the socket buffers in moments.
    let mut origin = ffmpeg_publish(
        &format!("http://127.0.0.1:{origin_port}/live/cam.flv"),
        600,
        false,
        "flv -listen 1",
    );
    assert!(
        wait_listening(origin_port, Duration::from_secs(10)),
        "ffmpeg did not start listening"
    );
    let proxy = Proxy::start(
        &[("health-check-interval", "off"), ("idle-timeout", "2s")],
        &[],
        Some(&format!(
            "[[origins]]\nname = \"ffmpeg\"\nhttp = {origin_port}\n"
        )),
    );
    let mut viewer = TcpStream::connect(proxy.addr("http")).unwrap();
    viewer
        .write_all(b"GET /live/cam.flv HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 1024];
    viewer
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let n = viewer.read(&mut head).unwrap();
    assert!(
        String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head[..n])
    );
    // The viewer reads nothing more, and keeps its socket open.
    let released = wait_for(Duration::from_secs(20), || {
        origin.child.try_wait().ok().flatten()
    });
    assert!(
        released.is_some(),
        "a viewer that reads nothing still holds its origin connection after 20 s:\n{}",
        proxy.log_text()
    );
    assert!(
        proxy.log_text().contains("it read nothing for 2s"),
        "{}",
        proxy.log_text()
    );
    drop(viewer);
}

/// With a token set, the views (every client's address, every stream name: often the
/// publisher's secret) need it too; only liveness and the version stay open.
#[test]
fn with_a_token_every_view_needs_it() {
    let proxy = Proxy::start(&[], &[("PROXY_SYSTEM_API_TOKEN", "s3cret")], None);
    let api = proxy.addr("system-api");
    let bearer = [("Authorization", "Bearer s3cret")];
    for path in [
        "/api/v1/servers",
        "/api/v1/streams",
        "/metrics",
        "/api/v1/servers?sort=hot",
    ] {
        assert_eq!(http("GET", api, path, &[], b"").status, 401, "{path}");
        assert_eq!(
            http("GET", api, path, &[("Authorization", "Bearer nope")], b"").status,
            401,
            "{path}"
        );
        assert_eq!(http("GET", api, path, &bearer, b"").status, 200, "{path}");
    }
    assert_eq!(
        http("GET", api, "/api/v1/streams?token=s3cret", &[], b"").status,
        200
    );
    for open in ["/healthz", "/api/v1/versions"] {
        assert_eq!(http("GET", api, open, &[], b"").status, 200, "{open}");
    }
}

/// One host holding keep-alive connections cannot take the System API's whole budget:
/// an origin on another address still registers.
#[test]
fn one_host_cannot_lock_the_origins_out_of_the_system_api() {
    let proxy = Proxy::start(&[], &[], None);
    let api = proxy.addr("system-api");
    // More than the API's whole budget of 256, from one address, each with a request
    // answered and the connection kept alive.
    let mut hoarded = Vec::new();
    let mut served = 0;
    for _ in 0..300 {
        let mut conn = connect_from("127.0.0.1:0", api);
        conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = conn.write_all(b"GET /api/v1/versions HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut answer = [0u8; 512];
        if matches!(conn.read(&mut answer), Ok(n) if n > 0) {
            served += 1;
        }
        hoarded.push(conn);
    }
    assert!(
        (1..=16).contains(&served),
        "one address was served on {served} connections at once"
    );
    let mut origin = connect_from("127.0.0.2:0", api);
    origin
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let heartbeat =
        r#"{"ip":"127.0.0.5","server":"srs-a","service":"s1","pid":"1","rtmp":["19351"]}"#;
    write!(
        origin,
        "POST /api/v1/srs/register HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{heartbeat}",
        heartbeat.len()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = origin.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "an origin could not register while one host hoarded connections: {answer:?}"
    );
    drop(hoarded);
}

/// Plays of streams that do not exist take no capacity and leave nothing behind: neither
/// a placement counted against `max_streams` nor keys in Redis. A real stream is then
/// still placed. (Finding 1: ten such GETs used to fill two origins of `max_streams = 5`.)
#[test]
fn plays_of_missing_streams_take_no_capacity_and_leave_no_state() {
    let redis = RedisServer::start();
    let (a, b) = (NginxRtmp::start(None), NginxRtmp::start(None));
    let toml = format!(
        "{}max_streams = 5\n{}max_streams = 5\n",
        a.origin_toml("a"),
        b.origin_toml("b")
    );
    let proxy = fleet_proxy(&redis, &[], Some(&toml));
    let web = proxy.addr("http");
    for n in 0..20 {
        for ext in ["flv", "m3u8", "ts"] {
            let r = http("GET", web, &format!("/live/nothing-{n}.{ext}"), &[], b"");
            assert_eq!(r.status, 404, "{ext}: {}", r.text());
        }
    }
    for id in ["a", "b"] {
        assert_eq!(server(&proxy, id)["streams"], 0, "{}", server(&proxy, id));
    }
    let left: Vec<String> = ["*url:*", "*spbhid:*", "*streams:*"]
        .iter()
        .flat_map(|p| redis.keys(p))
        .collect();
    assert!(left.is_empty(), "state left by plays of nothing: {left:?}");

    let rtmp = proxy.addr("rtmp");
    let _publisher = ffmpeg_publish(&format!("rtmp://{rtmp}/live/real"), 20, true, "flv");
    let placed = wait_for(Duration::from_secs(20), || {
        let total: u64 = ["a", "b"]
            .iter()
            .filter_map(|id| server(&proxy, id)["streams"].as_u64())
            .sum();
        (total == 1).then_some(())
    });
    assert!(placed.is_some(), "{}", proxy.log_text());
    assert_eq!(redis.keys("*url:*").len(), 1);
}
