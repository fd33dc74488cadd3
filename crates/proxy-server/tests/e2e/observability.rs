//! What an operator sees: Prometheus's `/metrics` and the JSON views moving while ffmpeg
//! publishes through the proxy to nginx-rtmp and plays back (RTMP; nginx-rtmp has no
//! HTTP-FLV, and HLS is fetched once).

use std::time::Duration;

use serde_json::Value;

use crate::harness::{
    ffmpeg_play, ffmpeg_publish, fleet_proxy, http, wait_for, NginxRtmp, Proxy, RedisServer,
};

/// The value of the sample `name` whose labels include every pair of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            let wanted = labels
                .iter()
                .all(|(k, v)| label_text.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
            (metric == name && wanted).then(|| value.parse().ok())?
        })
}

fn scrape(proxy: &Proxy) -> String {
    let r = http("GET", proxy.addr("system-api"), "/metrics", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4"),
        "Prometheus's text format"
    );
    r.text()
}

fn streams(proxy: &Proxy, query: &str) -> (u16, Value) {
    let r = http(
        "GET",
        proxy.addr("system-api"),
        &format!("/api/v1/streams{query}"),
        &[],
        b"",
    );
    (r.status, r.json())
}

#[test]
fn metrics_and_views_follow_a_publisher_and_a_player() {
    let nginx = NginxRtmp::start(None);
    let proxy = Proxy::start(&[], &[], Some(&nginx.origin_toml("nginx")));
    let before = scrape(&proxy);
    assert_eq!(
        sample(&before, "proxy_balancer_up", &[]),
        Some(1.0),
        "{before}"
    );
    assert_eq!(
        sample(&before, "proxy_origin_alive", &[("origin", "nginx")]),
        Some(1.0),
        "{before}"
    );
    assert_eq!(
        sample(&before, "proxy_origin_draining", &[("origin", "nginx")]),
        Some(0.0)
    );
    assert_eq!(
        sample(&before, "proxy_origin_sessions", &[("origin", "nginx")]),
        Some(0.0)
    );

    let (rtmp, media) = (proxy.addr("rtmp"), proxy.addr("http"));
    let publisher = ffmpeg_publish(&format!("rtmp://{rtmp}/live/cam"), 20, true, "flv");
    let publishing = wait_for(Duration::from_secs(20), || {
        let (status, v) = streams(&proxy, "?stream=live/cam");
        (status == 200 && v["data"][0]["sessions"]["bytes_to_origin"].as_u64() > Some(10_000))
            .then_some(v)
    });
    assert!(
        publishing.is_some(),
        "no publisher listed; log:\n{}",
        proxy.log_text()
    );
    let player = ffmpeg_play(&format!("rtmp://{rtmp}/live/cam"));
    let playlist = wait_for(Duration::from_secs(20), || {
        let r = http("GET", media, "/live/cam.m3u8", &[], b"");
        (r.status == 200).then_some(r)
    });
    assert!(playlist.is_some(), "no HLS playlist through the proxy");

    // Both clients are listed under the stream, each with its own bytes.
    let both = wait_for(Duration::from_secs(20), || {
        let (_, v) = streams(&proxy, "?stream=__defaultVhost__/live/cam");
        let clients = v["data"][0]["sessions"]["clients"].as_array()?.clone();
        let bytes = |role: &str, field: &str| {
            clients
                .iter()
                .find(|c| c["role"] == role)
                .and_then(|c| c[field].as_u64())
        };
        (bytes("publish", "bytes_to_origin") > Some(0)
            && bytes("play", "bytes_to_client") > Some(0))
        .then_some(v)
    })
    .unwrap_or_else(|| {
        panic!(
            "publisher and player not both listed with bytes: {}\nlog:\n{}",
            streams(&proxy, "").1,
            proxy.log_text()
        )
    });
    let entry = &both["data"][0];
    assert_eq!(entry["origin"], "nginx");
    assert_eq!(entry["placed"], true);
    assert_eq!(entry["origin_status"]["alive"], true);
    assert_eq!(entry["sessions"]["publishers"], 1);
    assert_eq!(entry["sessions"]["players"], 1);
    let clients = entry["sessions"]["clients"].as_array().unwrap();
    let protocols: Vec<&str> = clients
        .iter()
        .map(|c| c["protocol"].as_str().unwrap())
        .collect();
    assert_eq!(protocols, ["rtmp", "rtmp"]);
    assert!(clients
        .iter()
        .all(|c| c["origin"] == "nginx" && c["peer"].is_string()));

    // The origin filter finds it; another origin's filter does not.
    assert_eq!(
        streams(&proxy, "?origin=nginx").1["data"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        streams(&proxy, "?origin=other").1["data"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );

    let servers = http(
        "GET",
        proxy.addr("system-api"),
        "/api/v1/servers?sort=hot",
        &[],
        b"",
    )
    .json();
    let nginx_view = &servers["data"][0];
    assert_eq!(nginx_view["id"], "nginx");
    assert_eq!(nginx_view["sessions"], 2, "{servers}");
    assert_eq!(nginx_view["state"], "up");
    assert_eq!(nginx_view["streams"], 1);

    let during = scrape(&proxy);
    let bytes_up = |text: &str| {
        sample(
            text,
            "proxy_bytes_total",
            &[("protocol", "rtmp"), ("direction", "to_origin")],
        )
        .unwrap_or(0.0)
    };
    assert!(bytes_up(&during) > 10_000.0, "{during}");
    assert!(
        sample(
            &during,
            "proxy_bytes_total",
            &[("protocol", "rtmp"), ("direction", "to_client")]
        ) > Some(0.0),
        "{during}"
    );
    assert_eq!(
        sample(&during, "proxy_sessions_active", &[("protocol", "rtmp")]),
        Some(2.0),
        "{during}"
    );
    assert!(
        sample(
            &during,
            "proxy_client_connections_total",
            &[("protocol", "rtmp")]
        ) >= Some(2.0),
        "{during}"
    );
    assert!(
        sample(
            &during,
            "proxy_client_connections_total",
            &[("protocol", "http")]
        ) >= Some(1.0),
        "{during}"
    );
    assert_eq!(
        sample(&during, "proxy_origin_sessions", &[("origin", "nginx")]),
        Some(2.0),
        "{during}"
    );
    assert_eq!(
        sample(&during, "proxy_origin_streams", &[("origin", "nginx")]),
        Some(1.0),
        "{during}"
    );
    // Latency histograms: a pick per client, a connect per RTMP client.
    assert!(
        sample(
            &during,
            "proxy_pick_seconds_count",
            &[("balancer", "memory")]
        ) >= Some(2.0),
        "{during}"
    );
    assert!(
        sample(
            &during,
            "proxy_origin_connect_seconds_bucket",
            &[("protocol", "rtmp"), ("le", "+Inf")]
        ) >= Some(2.0),
        "{during}"
    );
    let grew = wait_for(Duration::from_secs(10), || {
        (bytes_up(&scrape(&proxy)) > bytes_up(&during)).then_some(())
    });
    assert!(grew.is_some(), "bytes to the origin stopped growing");

    // Both leave: the sessions gauges fall back to zero.
    drop(player);
    drop(publisher);
    let idle = wait_for(Duration::from_secs(10), || {
        let text = scrape(&proxy);
        let zero =
            |p: &str| sample(&text, "proxy_sessions_active", &[("protocol", p)]) == Some(0.0);
        zero("rtmp").then_some(text)
    });
    let idle = idle.unwrap_or_else(|| panic!("sessions still active:\n{}", scrape(&proxy)));
    assert_eq!(
        sample(&idle, "proxy_origin_sessions", &[("origin", "nginx")]),
        Some(0.0),
        "{idle}"
    );
}

#[test]
fn refusals_and_unknown_streams_are_visible() {
    // No origin at all: a viewer is refused, and the refusal is counted by reason.
    let proxy = Proxy::start(&[], &[], None);
    let media = proxy.addr("http");
    let r = http("GET", media, "/live/nowhere.flv", &[], b"");
    assert!(r.status >= 500, "{} {}", r.status, r.text());
    let text = scrape(&proxy);
    assert!(
        sample(&text, "proxy_refusals_total", &[("reason", "no_origin")]) >= Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "proxy_balancer_up", &[]), Some(1.0));
    assert_eq!(
        sample(&text, "proxy_origin_alive", &[]),
        None,
        "no origin, no origin series: {text}"
    );

    let (status, body) = streams(&proxy, "?stream=live/nowhere");
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("live/nowhere")),
        "{body}"
    );
    let (status, body) = streams(&proxy, "?origin=nobody");
    assert_eq!(
        (status, body["data"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let bad_sort = http(
        "GET",
        proxy.addr("system-api"),
        "/api/v1/servers?sort=warm",
        &[],
        b"",
    );
    assert_eq!(bad_sort.status, 400, "{}", bad_sort.text());
    assert!(bad_sort.json()["error"].as_str().unwrap().contains("warm"));
}

#[test]
fn metrics_need_the_token_when_one_is_set() {
    let proxy = Proxy::start(&[], &[("PROXY_SYSTEM_API_TOKEN", "s3cret")], None);
    let api = proxy.addr("system-api");
    assert_eq!(http("GET", api, "/metrics", &[], b"").status, 401);
    let r = http(
        "GET",
        api,
        "/metrics",
        &[("Authorization", "Bearer s3cret")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("proxy_balancer_up 1"), "{}", r.text());
    // The views list clients and stream names: they need it too.
    assert_eq!(http("GET", api, "/api/v1/streams", &[], b"").status, 401);
}

#[test]
fn a_live_stream_the_balancer_forgot_is_still_listed() {
    let mut redis = RedisServer::start();
    let nginx = NginxRtmp::start(None);
    let proxy = fleet_proxy(&redis, &[], Some(&nginx.origin_toml("nginx")));
    let rtmp = proxy.addr("rtmp");
    let _publisher = ffmpeg_publish(&format!("rtmp://{rtmp}/live/cam"), 20, true, "flv");
    let placed = wait_for(Duration::from_secs(20), || {
        let (_, v) = streams(&proxy, "?stream=live/cam");
        (v["data"][0]["placed"] == true && v["data"][0]["sessions"]["publishers"] == 1)
            .then_some(())
    });
    assert!(placed.is_some(), "{}", streams(&proxy, "").1);

    // Redis restarts empty: the placement is gone, the publisher is not.
    redis.kill();
    let (status, without) = streams(&proxy, "?stream=live/cam");
    assert_eq!(status, 200, "{without}");
    assert!(without["balancer_error"].is_string(), "{without}");
    assert_eq!(without["data"][0]["sessions"]["publishers"], 1, "{without}");
    let text = scrape(&proxy);
    assert_eq!(sample(&text, "proxy_balancer_up", &[]), Some(0.0), "{text}");
    assert!(
        sample(
            &text,
            "proxy_balancer_errors_total",
            &[("operation", "origins")]
        ) >= Some(1.0),
        "{text}"
    );
    // The proxy writes the live stream's placement back (only where none exists), so new
    // players of the stream find its publisher's origin.
    redis.restart();
    let listed = wait_for(Duration::from_secs(20), || {
        let (status, v) = streams(&proxy, "?stream=live/cam");
        (status == 200 && v["data"][0]["placed"] == true).then_some(v)
    })
    .unwrap_or_else(|| panic!("{}\n{}", streams(&proxy, "").1, proxy.log_text()));
    let entry = &listed["data"][0];
    assert_eq!(entry["origin"], "nginx", "{listed}");
    assert_eq!(entry["sessions"]["publishers"], 1, "{listed}");
    assert_eq!(entry["sessions"]["clients"][0]["role"], "publish");
}
