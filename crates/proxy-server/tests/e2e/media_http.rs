//! HTTP-FLV and HLS through the proxy, from real origins: ffmpeg's own HTTP server as an
//! HTTP-FLV origin, nginx-rtmp (HLS written by nginx-rtmp, served by nginx) as an HLS origin.

use std::time::Duration;

use crate::harness::{
    ffmpeg_count_frames, ffmpeg_publish, free_port, http, wait_for, wait_listening, NginxRtmp,
    Proxy,
};

fn streams(proxy: &Proxy) -> serde_json::Value {
    http("GET", proxy.addr("system-api"), "/api/v1/streams", &[], b"").json()
}

#[test]
fn http_flv_plays_through_the_proxy_from_an_ffmpeg_origin() {
    // ffmpeg with `-listen 1` is a real HTTP server that sends its FLV output to the
    // first client that connects: the proxy.
    let origin_port = free_port();
    let _origin = ffmpeg_publish(
        &format!("http://127.0.0.1:{origin_port}/live/cam.flv"),
        30,
        true,
        "flv -listen 1",
    );
    assert!(
        wait_listening(origin_port, Duration::from_secs(10)),
        "ffmpeg did not start listening"
    );

    let proxy = Proxy::start(
        // The origin serves one client: no health probe may take its place.
        &[("health-check-interval", "off")],
        &[],
        Some(&format!(
            "[[origins]]\nname = \"ffmpeg\"\nhttp = {origin_port}\n"
        )),
    );
    let url = format!("http://{}/live/cam.flv?token=abc", proxy.addr("http"));
    let (frames, log) = ffmpeg_count_frames(&url, 2);
    assert!(
        frames >= 25,
        "decoded {frames} frames through the proxy; ffmpeg said:\n{log}\nproxy log:\n{}",
        proxy.log_text()
    );
    assert!(
        proxy
            .log_text()
            .contains("stream=__defaultVhost__/live/cam origin=ffmpeg status=200"),
        "{}",
        proxy.log_text()
    );
}

#[test]
fn hls_playlists_are_rewritten_and_segments_follow_the_token() {
    let nginx = NginxRtmp::start(None);
    let _publisher = ffmpeg_publish(
        &format!("rtmp://127.0.0.1:{}/live/cam", nginx.rtmp_port),
        40,
        true,
        "flv",
    );
    let proxy = Proxy::start(&[], &[], Some(&nginx.origin_toml("nginx")));
    let http_addr = proxy.addr("http");

    // nginx-rtmp writes the playlist once a few segments exist.
    let playlist = wait_for(Duration::from_secs(20), || {
        let r = http("GET", http_addr, "/live/cam.m3u8?auth=xyz", &[], b"");
        (r.status == 200 && r.text().contains(".ts")).then_some(r)
    })
    .unwrap_or_else(|| {
        panic!(
            "no playlist through the proxy; proxy log:\n{}",
            proxy.log_text()
        )
    });
    assert_eq!(playlist.header("access-control-allow-origin"), Some("*"));
    let text = playlist.text();
    let segments: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert!(!segments.is_empty(), "{text}");
    assert!(
        segments.iter().all(|s| s.contains("spbhid=")),
        "every segment URI carries the token:\n{text}"
    );

    // The origin saw the query (auth token) but not the proxy's own token.
    let log = nginx.access_log();
    assert!(log.contains("/live/cam.m3u8?auth=xyz"), "{log}");
    assert!(
        !log.contains("spbhid"),
        "the affinity token is stripped before the origin: {log}"
    );

    // A segment through the token: MPEG-TS bytes from the origin.
    let segment = segments[0];
    let path = if segment.starts_with('/') {
        segment.to_owned()
    } else {
        format!("/live/{segment}")
    };
    let r = http("GET", http_addr, &path, &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.body.first(),
        Some(&0x47),
        "an MPEG-TS segment starts with the sync byte"
    );

    // An unknown token is a clear 404, not a 500.
    let stale = http(
        "GET",
        http_addr,
        "/live/cam-0.ts?spbhid=nosuchtoken",
        &[],
        b"",
    );
    assert_eq!(stale.status, 404);
    assert!(stale.json()["error"]
        .as_str()
        .unwrap()
        .contains("HLS session"));

    // And a real player decodes it.
    let (frames, log) = ffmpeg_count_frames(&format!("http://{http_addr}/live/cam.m3u8"), 2);
    assert!(
        frames >= 25,
        "decoded {frames} frames of HLS through the proxy; ffmpeg said:\n{log}"
    );
}

#[test]
fn no_origin_is_503_and_an_unreachable_origin_is_502() {
    let proxy = Proxy::start(&[], &[], None);
    let r = http("GET", proxy.addr("http"), "/live/cam.flv", &[], b"");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("no origin"));

    let closed = free_port();
    let proxy = Proxy::start(
        &[("origin-connect-timeout", "2s")],
        &[],
        Some(&format!("[[origins]]\nname = \"gone\"\nhttp = {closed}\n")),
    );
    let r = http("GET", proxy.addr("http"), "/live/cam.flv", &[], b"");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("gone"));
    let r = http(
        "OPTIONS",
        proxy.addr("http"),
        "/live/cam.flv",
        &[("Origin", "http://player.example")],
        b"",
    );
    assert_eq!(
        (r.status, r.header("access-control-allow-origin")),
        (200, Some("*"))
    );
}

#[test]
fn a_stream_is_placed_again_when_its_origin_stops_heartbeating() {
    // No suspect marks: only the heartbeat's expiry may move the stream.
    let proxy = Proxy::start(&[("origin-ttl", "1s"), ("suspect-for", "0s")], &[], None);
    let api = proxy.addr("system-api");
    let heartbeat = |server: &str| {
        // Closed ports: the relay fails with a 502 naming the origin it tried.
        let body = format!(
            r#"{{"ip":"127.0.0.1","server":"{server}","service":"s","pid":"1","rtmp":["{}"],"http":["{}"]}}"#,
            free_port(),
            free_port()
        );
        assert_eq!(
            http("POST", api, "/api/v1/srs/register", &[], body.as_bytes()).status,
            200
        );
    };
    let tried = || {
        let r = http("GET", proxy.addr("http"), "/live/cam.flv", &[], b"");
        assert_eq!(r.status, 502, "{}", r.text());
        r.text()
    };
    heartbeat("first");
    assert!(tried().contains("origin first-s-1 unreachable"));

    heartbeat("second");
    // Keep the second origin alive while the first one's TTL runs out.
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(300));
        heartbeat("second");
    }
    let text = tried();
    assert!(
        text.contains("origin second-s-1 unreachable"),
        "placed again on the live origin: {text}"
    );
}

#[test]
fn http_ts_plays_and_a_leaving_viewer_releases_the_origin_at_once() {
    // ffmpeg serving MPEG-TS over HTTP to one client: when the proxy lets go of the origin
    // connection, ffmpeg's output breaks and it exits; that is what this test watches.
    let origin_port = free_port();
    let mut origin = ffmpeg_publish(
        &format!("http://127.0.0.1:{origin_port}/live/cam.ts"),
        120,
        true,
        "mpegts -listen 1",
    );
    assert!(
        wait_listening(origin_port, Duration::from_secs(10)),
        "ffmpeg did not start listening"
    );
    let proxy = Proxy::start(
        // The origin serves one client: no health probe may take its place.
        &[("health-check-interval", "off")],
        &[],
        Some(&format!(
            "[[origins]]\nname = \"ffmpeg\"\nhttp = {origin_port}\n"
        )),
    );
    let (frames, log) =
        ffmpeg_count_frames(&format!("http://{}/live/cam.ts", proxy.addr("http")), 2);
    assert!(
        frames >= 25,
        "decoded {frames} frames of HTTP-TS through the proxy; ffmpeg said:\n{log}"
    );
    // The viewer (ffmpeg_count_frames) has gone; the 120 s origin must stop well before.
    let exited = wait_for(Duration::from_secs(10), || {
        origin.child.try_wait().ok().flatten()
    });
    assert!(
        exited.is_some(),
        "the origin connection was still open 10 s after the viewer left"
    );
    // A player's placement is not listed once its last session is gone; no session is.
    let listed = streams(&proxy);
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["sessions"]["players"] == 0),
        "the viewer's session is gone from the API: {listed}"
    );
}
