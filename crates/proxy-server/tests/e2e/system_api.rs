//! The System API, configuration and lifecycle of the real binary.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{http, wait_for, Proxy};

/// SRS's heartbeat body as SRS 5+ sends it (PROTOCOLS.md), on a loopback address.
const SRS_HEARTBEAT: &str = r#"{"device_id":"origin1","ip":"127.0.0.5","server":"vid-46p14mm","service":"z2s3w865","pid":"42583",
 "rtmp":["19351"],"http":["8081"],"api":["19851"],
 "srt":["udp://0.0.0.0:10081"],"rtc":["udp://0.0.0.0:8001","tcp://0.0.0.0:8001"]}"#;

const ID: &str = "vid-46p14mm-z2s3w865-42583";

fn servers(proxy: &Proxy) -> Vec<Value> {
    let r = http("GET", proxy.addr("system-api"), "/api/v1/servers", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"].as_array().cloned().unwrap_or_default()
}

fn register(
    proxy: &Proxy,
    body: &str,
    headers: &[(&str, &str)],
    query: &str,
) -> crate::harness::Response {
    http(
        "POST",
        proxy.addr("system-api"),
        &format!("/api/v1/srs/register{query}"),
        headers,
        body.as_bytes(),
    )
}

#[test]
fn srs_heartbeat_is_registered_and_listed() {
    let proxy = Proxy::start(&[], &[], None);
    let r = register(
        &proxy,
        SRS_HEARTBEAT,
        &[("Content-Type", "application/json")],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let reply = r.json();
    assert_eq!(reply["code"], 0);
    assert_eq!(
        reply["pid"],
        proxy.process.child.id().to_string(),
        "SRS expects the proxy's pid as a string"
    );

    let list = servers(&proxy);
    assert_eq!(list.len(), 1);
    let s = &list[0];
    assert_eq!(s["id"], ID);
    assert_eq!(s["alive"], true);
    assert_eq!(s["draining"], false);
    assert_eq!(s["device_id"], "origin1");
    assert_eq!(s["endpoints"]["rtmp"][0]["address"], "127.0.0.5:19351");
    assert_eq!(s["endpoints"]["http"][0]["address"], "127.0.0.5:8081");
    assert_eq!(s["endpoints"]["api"][0]["address"], "127.0.0.5:19851");
    assert_eq!(s["endpoints"]["srt"][0]["address"], "127.0.0.5:10081");
    assert_eq!(s["endpoints"]["rtc"][1]["transport"], "tcp");

    // A heartbeat again changes nothing but the time.
    assert_eq!(register(&proxy, SRS_HEARTBEAT, &[], "").status, 200);
    assert_eq!(servers(&proxy).len(), 1);
    let versions = http(
        "GET",
        proxy.addr("system-api"),
        "/api/v1/versions",
        &[],
        b"",
    )
    .json();
    assert_eq!(versions["code"], 0);
    assert!(versions["data"]["version"].is_string());
    let health = http("GET", proxy.addr("system-api"), "/healthz", &[], b"");
    assert_eq!(
        (health.status, health.json()["origins_alive"].as_u64()),
        (200, Some(1))
    );
}

#[test]
fn malformed_and_oversized_bodies_are_refused_and_change_nothing() {
    let proxy = Proxy::start(&[], &[], None);
    assert_eq!(register(&proxy, SRS_HEARTBEAT, &[], "").status, 200);
    let before = servers(&proxy);

    let missing_pid = SRS_HEARTBEAT.replace(r#""pid":"42583","#, "");
    let huge = format!(
        r#"{{"ip":"127.0.0.6","server":"x","service":"y","pid":"1","rtmp":["1935"],"pad":"{}"}}"#,
        "a".repeat(200_000)
    );
    let cases: [(&str, &str); 6] = [
        ("not JSON", "{this is not json"),
        ("missing pid", &missing_pid),
        (
            "wrong type",
            r#"{"ip":"127.0.0.6","server":"x","service":"y","pid":"1","rtmp":"1935"}"#,
        ),
        (
            "bad endpoint",
            r#"{"ip":"127.0.0.6","server":"x","service":"y","pid":"1","rtmp":["ftp://:1"]}"#,
        ),
        ("empty", ""),
        ("oversized", &huge),
    ];
    for (what, body) in cases {
        let r = register(&proxy, body, &[], "");
        let expected = if what == "oversized" { 413 } else { 400 };
        assert_eq!(r.status, expected, "{what}: {}", r.text());
        let reply = r.json();
        assert_ne!(reply["code"], 0, "{what}");
        assert!(
            reply["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {reply}"
        );
        if what == "missing pid" {
            assert!(
                reply["error"].as_str().unwrap().contains("pid"),
                "the error names the field: {reply}"
            );
        }
    }
    let without_clock = |mut list: Vec<Value>| {
        list.iter_mut().for_each(|s| {
            drop(
                s.as_object_mut()
                    .and_then(|o| o.remove("since_heartbeat_ms")),
            )
        });
        list
    };
    assert_eq!(
        without_clock(servers(&proxy)),
        without_clock(before),
        "refused registrations left the registry as it was"
    );
}

#[test]
fn a_token_guards_the_write_endpoints() {
    let proxy = Proxy::start(&[], &[("PROXY_SYSTEM_API_TOKEN", "s3cret")], None);
    assert_eq!(register(&proxy, SRS_HEARTBEAT, &[], "").status, 401);
    assert_eq!(
        register(
            &proxy,
            SRS_HEARTBEAT,
            &[("Authorization", "Bearer wrong")],
            ""
        )
        .status,
        401
    );
    let listed = http(
        "GET",
        proxy.addr("system-api"),
        "/api/v1/servers",
        &[("Authorization", "Bearer s3cret")],
        b"",
    );
    assert_eq!(listed.json()["data"], serde_json::json!([]));
    assert_eq!(
        register(
            &proxy,
            SRS_HEARTBEAT,
            &[("Authorization", "Bearer s3cret")],
            ""
        )
        .status,
        200
    );
    // SRS's heartbeat URL can carry the token only in its query.
    assert_eq!(
        register(&proxy, SRS_HEARTBEAT, &[], "?token=s3cret").status,
        200
    );
    let drain = format!("/api/v1/servers/{ID}/drain");
    assert_eq!(
        http("POST", proxy.addr("system-api"), &drain, &[], b"").status,
        401
    );
    assert_eq!(
        http(
            "POST",
            proxy.addr("system-api"),
            &drain,
            &[("Authorization", "Bearer s3cret")],
            b""
        )
        .status,
        200
    );
}

#[test]
fn draining_is_shown_and_undone() {
    let proxy = Proxy::start(&[], &[], None);
    assert_eq!(register(&proxy, SRS_HEARTBEAT, &[], "").status, 200);
    let api = proxy.addr("system-api");
    let r = http(
        "POST",
        api,
        &format!("/api/v1/servers/{ID}/drain"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["draining"], true);
    assert_eq!(servers(&proxy)[0]["draining"], true);
    assert_eq!(
        http(
            "DELETE",
            api,
            &format!("/api/v1/servers/{ID}/drain"),
            &[],
            b""
        )
        .json()["data"]["draining"],
        false
    );
    let unknown = http("POST", api, "/api/v1/servers/nope/drain", &[], b"");
    assert_eq!(unknown.status, 404, "{}", unknown.text());
}

#[test]
fn an_origin_that_stops_heartbeating_is_no_longer_alive() {
    let proxy = Proxy::start(&[("origin-ttl", "1s")], &[], None);
    assert_eq!(register(&proxy, SRS_HEARTBEAT, &[], "").status, 200);
    assert_eq!(servers(&proxy)[0]["alive"], true);
    let dead = wait_for(Duration::from_secs(5), || {
        (servers(&proxy)[0]["alive"] == false).then_some(())
    });
    assert!(
        dead.is_some(),
        "the origin was still alive 5 s after its 1 s TTL"
    );
    assert_eq!(register(&proxy, SRS_HEARTBEAT, &[], "").status, 200);
    assert_eq!(servers(&proxy)[0]["alive"], true, "a heartbeat revives it");
}

#[test]
fn static_origins_from_the_config_file() {
    let toml = r#"
lb_strategy = "least-streams"
[[origins]]
name = "nginx-a"
rtmp = "127.0.0.1:19350"
http = 8080
[[origins]]
name = "nginx-b"
ip = "127.0.0.2"
rtmp = [1935]
draining = true
"#;
    let proxy = Proxy::start(&[], &[], Some(toml));
    let list = servers(&proxy);
    let summary: Vec<(String, String, bool, String)> = list
        .iter()
        .map(|s| {
            let id = s["id"].as_str().unwrap().to_owned();
            (
                id,
                s["source"].as_str().unwrap().to_owned(),
                s["draining"].as_bool().unwrap(),
                s["endpoints"]["rtmp"][0]["address"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "nginx-a".to_owned(),
                "static".to_owned(),
                false,
                "127.0.0.1:19350".to_owned()
            ),
            (
                "nginx-b".to_owned(),
                "static".to_owned(),
                true,
                "127.0.0.2:1935".to_owned()
            ),
        ]
    );
}

#[test]
fn bad_configuration_exits_non_zero_naming_the_key() {
    let output = Command::new(env!("CARGO_BIN_EXE_proxy-server"))
        .env("PROXY_RTMP_SERVER", "not-a-port")
        .stdin(Stdio::null())
        .output()
        .expect("running proxy-server");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("PROXY_RTMP_SERVER") && stderr.contains("not-a-port"),
        "{stderr}"
    );
}

#[test]
fn sigterm_with_no_sessions_exits_at_once_and_cleanly() {
    let mut proxy = Proxy::start(&[], &[], None);
    let started = std::time::Instant::now();
    let status = proxy
        .process
        .terminate(Duration::from_secs(10))
        .expect("the proxy exits within 10 s of SIGTERM");
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        proxy.log_text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no live session, so no grace wait"
    );
}

/// Sends `raw` as is and reads until the server closes; the status code of its answer, if
/// it answered at all.
fn raw_exchange(addr: std::net::SocketAddr, raw: &[u8]) -> (Option<u16>, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The server may answer and close before reading everything; that is its right.
    let _ = stream.write_all(raw);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|s| s.parse().ok());
    (status, text)
}

#[test]
fn unknown_methods_are_405_and_name_the_allowed_ones() {
    let proxy = Proxy::start(&[], &[], None);
    let api = proxy.addr("system-api");
    for (method, path) in [
        ("PUT", "/api/v1/servers"),
        ("GET", "/api/v1/srs/register"),
        ("DELETE", "/metrics"),
        ("GET", "/api/v1/servers/x/drain"),
    ] {
        let r = http(method, api, path, &[], b"");
        assert_eq!(r.status, 405, "{method} {path}: {}", r.text());
        assert!(
            r.header("allow").is_some(),
            "{method} {path}: {:?}",
            r.headers
        );
        assert!(
            r.json()["error"]
                .as_str()
                .is_some_and(|e| e.contains(method)),
            "{method} {path}: {}",
            r.text()
        );
    }
    assert_eq!(http("GET", api, "/api/v1/nothing", &[], b"").status, 404);
}

#[test]
fn oversized_heads_and_stalled_clients_are_bounded() {
    let proxy = Proxy::start(&[("handshake-timeout", "1s")], &[], None);
    let api = proxy.addr("system-api");

    let long_path = format!("/api/v1/streams?stream={}", "a".repeat(40_000));
    let (status, text) = raw_exchange(
        api,
        format!("GET {long_path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    );
    assert!(
        matches!(status, Some(414 | 431)),
        "a 40 kB request line: {text:.200}"
    );

    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let (status, text) = raw_exchange(
        api,
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes(),
    );
    assert_eq!(status, Some(431), "200 headers: {text:.200}");

    let big = "v".repeat(40_000);
    let (status, text) = raw_exchange(
        api,
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes(),
    );
    assert_eq!(status, Some(431), "a 40 kB header: {text:.200}");

    // A declared body far beyond the limit is refused before it is sent.
    let (status, text) = raw_exchange(
        api,
        b"POST /api/v1/srs/register HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n",
    );
    assert_eq!(status, Some(413), "{text:.300}");
    assert!(text.contains("larger than"), "{text:.300}");

    // A head that never completes: the connection is closed, no answer owed.
    let (status, text) = raw_exchange(api, b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
    assert!(
        status.is_none_or(|s| s == 408),
        "a stalled head was answered: {text:.200}"
    );

    // A body that stops half-way is given up on, with a clear answer.
    let (status, text) = raw_exchange(
        api,
        b"POST /api/v1/srs/register HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ip\":",
    );
    assert_eq!(status, Some(408), "{text:.300}");

    // Still answering normally.
    assert_eq!(http("GET", api, "/healthz", &[], b"").status, 200);
}

#[test]
fn malformed_queries_are_400_naming_the_problem() {
    let proxy = Proxy::start(&[], &[], None);
    let api = proxy.addr("system-api");
    let r = http(
        "GET",
        api,
        "/api/v1/streams?stream=a/b&stream=c/d",
        &[],
        b"",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("query")),
        "{}",
        r.text()
    );
    let r = http("GET", api, "/api/v1/servers?sort=sideways", &[], b"");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("sideways"));
}
