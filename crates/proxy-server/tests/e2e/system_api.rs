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
        assert_eq!(r.status, 400, "{what}: {}", r.text());
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
    assert!(servers(&proxy).is_empty());
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
