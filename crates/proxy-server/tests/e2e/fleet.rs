//! Many proxies, one fleet: proxies sharing one real redis-server behave as one.

use std::time::Duration;

use crate::harness::{
    ffmpeg_count_frames, ffmpeg_publish, fleet_proxy, free_port, http, wait_for, NginxRtmp, Proxy,
    RedisServer,
};

fn register(proxy: &Proxy, server: &str, rtmp: u16, http_port: u16) {
    let body = format!(
        r#"{{"ip":"127.0.0.1","server":"{server}","service":"s","pid":"1","rtmp":["{rtmp}"],"http":["{http_port}"]}}"#
    );
    let r = http(
        "POST",
        proxy.addr("system-api"),
        "/api/v1/srs/register",
        &[],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// A WHIP publish of `live/<stream>`: a publisher's pick, whose placement every proxy
/// lists (a player's is tentative, and is not listed).
fn whip_publish(api: std::net::SocketAddr, stream: &str) -> crate::harness::Response {
    let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef012345\r\n";
    http(
        "POST",
        api,
        &format!("/rtc/v1/whip/?app=live&stream={stream}"),
        &[("Content-Type", "application/sdp")],
        offer.as_bytes(),
    )
}

fn placements(proxy: &Proxy) -> Vec<(String, String)> {
    let r = http("GET", proxy.addr("system-api"), "/api/v1/streams", &[], b"");
    let mut list: Vec<(String, String)> = r.json()["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            (
                s["stream"].as_str().unwrap_or("").to_owned(),
                s["origin"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    list.sort();
    list
}

#[test]
fn an_origin_registered_through_one_proxy_serves_hls_through_another() {
    let redis = RedisServer::start();
    let nginx = NginxRtmp::start(None);
    let _publisher = ffmpeg_publish(
        &format!("rtmp://127.0.0.1:{}/live/cam", nginx.rtmp_port),
        40,
        true,
        "flv",
    );
    let a = fleet_proxy(&redis, &[], None);
    let b = fleet_proxy(&redis, &[], None);
    register(&a, "nginx", nginx.rtmp_port, nginx.http_port);
    let seen_by_b = http("GET", b.addr("system-api"), "/api/v1/servers", &[], b"").json();
    assert_eq!(
        seen_by_b["data"][0]["id"], "nginx-s-1",
        "B sees the origin A registered: {seen_by_b}"
    );

    // The playlist through A, its segments through B: B resolves A's token through Redis.
    let playlist = wait_for(Duration::from_secs(20), || {
        let r = http("GET", a.addr("http"), "/live/cam.m3u8", &[], b"");
        (r.status == 200 && r.text().contains(".ts")).then(|| r.text())
    })
    .unwrap_or_else(|| panic!("no playlist through A; log:\n{}", a.log_text()));
    let segment = playlist
        .lines()
        .find(|l| !l.starts_with('#') && l.contains("spbhid="))
        .expect("a tokenised segment")
        .to_owned();
    let path = if segment.starts_with('/') {
        segment
    } else {
        format!("/live/{segment}")
    };
    let r = http("GET", b.addr("http"), &path, &[], b"");
    assert_eq!(r.status, 200, "segment through B: {}", r.text());
    assert_eq!(r.body.first(), Some(&0x47));
    assert_eq!(placements(&a), placements(&b));
}

#[test]
fn concurrent_first_picks_through_three_proxies_agree() {
    let redis = RedisServer::start();
    // A failed connect would mark the origin down (and, with every origin down, later
    // streams would not be placed at all): this test watches placement alone.
    let flags = [("origin-connect-timeout", "1s"), ("suspect-for", "0s")];
    let proxies: Vec<Proxy> = (0..3).map(|_| fleet_proxy(&redis, &flags, None)).collect();
    // Origins on closed ports: each WHIP publish places its stream (a publisher's
    // placement, which is listed), then fails fast with 502.
    for n in 0..4 {
        register(&proxies[0], &format!("o{n}"), free_port(), free_port());
    }
    let streams = 40;
    std::thread::scope(|scope| {
        for (i, proxy) in proxies.iter().enumerate() {
            let addr = proxy.addr("http-api");
            scope.spawn(move || {
                for n in 0..streams {
                    let s = (n + i * 7) % streams;
                    let r = whip_publish(addr, &format!("s{s}"));
                    assert_eq!(r.status, 502, "{}", r.text());
                }
            });
        }
    });
    let views: Vec<Vec<(String, String)>> = proxies.iter().map(placements).collect();
    assert_eq!(views[0].len(), streams);
    assert!(
        views.iter().all(|v| v == &views[0]),
        "every proxy sees the same placements"
    );
    let origins: std::collections::HashSet<&str> =
        views[0].iter().map(|(_, o)| o.as_str()).collect();
    assert!(
        origins.len() > 1,
        "new streams are spread over the origins: {origins:?}"
    );
}

#[test]
fn a_live_relay_survives_redis_going_away_and_new_streams_recover() {
    let mut redis = RedisServer::start();
    let nginx = NginxRtmp::start(None);
    let _publisher = ffmpeg_publish(
        &format!("rtmp://127.0.0.1:{}/live/cam", nginx.rtmp_port),
        60,
        true,
        "flv",
    );
    let proxy = fleet_proxy(&redis, &[], Some(&nginx.origin_toml("nginx")));
    let http_addr = proxy.addr("http");
    wait_for(Duration::from_secs(20), || {
        (http("GET", http_addr, "/live/cam.m3u8", &[], b"").status == 200).then_some(())
    })
    .unwrap_or_else(|| panic!("no playlist; log:\n{}", proxy.log_text()));

    // A player decoding through the proxy while Redis dies under it.
    let url = format!("http://{http_addr}/live/cam.m3u8");
    let player = std::thread::spawn(move || ffmpeg_count_frames(&url, 6));
    std::thread::sleep(Duration::from_secs(2));
    redis.kill();
    // A new stream while Redis is down is placed by rendezvous over the last known origins
    // (nginx, which has no such stream, answers for itself), and the proxy says it is
    // degraded but fit.
    let down = http("GET", http_addr, "/live/other.flv", &[], b"");
    assert_ne!(
        down.status,
        503,
        "a new stream while Redis is down: {}",
        down.text()
    );
    let health = http("GET", proxy.addr("system-api"), "/healthz", &[], b"");
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(health.json()["status"], "degraded", "{}", health.text());

    redis.restart();
    // The static origin comes back by itself (re-added by the proxy), and new streams work.
    let recovered = wait_for(Duration::from_secs(30), || {
        let r = http("GET", http_addr, "/live/cam.m3u8", &[], b"");
        (r.status == 200).then_some(())
    });
    assert!(
        recovered.is_some(),
        "the proxy did not recover after Redis returned; log:\n{}",
        proxy.log_text()
    );
    let (frames, log) = player.join().unwrap();
    assert!(
        frames >= 100,
        "the player kept decoding through the outage: {frames} frames\n{log}"
    );
}

#[test]
fn rtmp_published_through_one_proxy_plays_through_another() {
    let redis = RedisServer::start();
    let (nginx_a, nginx_b) = (NginxRtmp::start(None), NginxRtmp::start(None));
    let a = fleet_proxy(&redis, &[], None);
    let b = fleet_proxy(&redis, &[], None);
    register(&a, "nginx-a", nginx_a.rtmp_port, nginx_a.http_port);
    register(&b, "nginx-b", nginx_b.rtmp_port, nginx_b.http_port);
    let _publisher = ffmpeg_publish(
        &format!("rtmp://{}/live/cam?token=abc", a.addr("rtmp")),
        30,
        true,
        "flv",
    );
    let placed = wait_for(Duration::from_secs(10), || {
        placements(&b)
            .into_iter()
            .find(|(s, _)| s.ends_with("/live/cam"))
    })
    .unwrap_or_else(|| panic!("B never saw the placement; A's log:\n{}", a.log_text()));
    std::thread::sleep(Duration::from_secs(1));
    let (frames, log) = ffmpeg_count_frames(&format!("rtmp://{}/live/cam", b.addr("rtmp")), 2);
    assert!(
        frames >= 25,
        "played {frames} frames through B from {}; ffmpeg said:\n{log}\nB's log:\n{}",
        placed.1,
        b.log_text()
    );
    let started = b
        .log_text()
        .lines()
        .find(|l| l.contains("play started"))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(
        started.contains(&format!("origin={}", placed.1)),
        "B relayed from the origin A placed the stream on: {started}"
    );
}

#[test]
fn an_origin_that_stops_heartbeating_leaves_every_proxy_and_its_streams_move() {
    let redis = RedisServer::start();
    let a = fleet_proxy(
        &redis,
        &[("origin-ttl", "1s"), ("origin-connect-timeout", "1s")],
        None,
    );
    let b = fleet_proxy(
        &redis,
        &[("origin-ttl", "1s"), ("origin-connect-timeout", "1s")],
        None,
    );
    register(&a, "old", free_port(), free_port());
    let _ = whip_publish(a.addr("http-api"), "cam");
    assert_eq!(
        placements(&b),
        [("__defaultVhost__/live/cam".to_owned(), "old-s-1".to_owned())]
    );
    // Only "new" keeps heartbeating, through B.
    for _ in 0..8 {
        register(&b, "new", free_port(), free_port());
        std::thread::sleep(Duration::from_millis(250));
    }
    for proxy in [&a, &b] {
        let servers = http("GET", proxy.addr("system-api"), "/api/v1/servers", &[], b"").json();
        let old = servers["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "old-s-1")
            .map(|s| s["alive"].clone());
        assert!(
            old.is_none() || old == Some(serde_json::Value::Bool(false)),
            "the silent origin is not alive on any proxy: {servers}"
        );
    }
    let _ = whip_publish(a.addr("http-api"), "cam");
    assert_eq!(
        placements(&b),
        [("__defaultVhost__/live/cam".to_owned(), "new-s-1".to_owned())]
    );
}

#[test]
fn srt_published_through_one_proxy_is_requested_from_the_same_origin_through_another() {
    use crate::harness::free_udp_port;
    use crate::srt::{ffmpeg_srt_publish, sink_origin, srt_url, wait_log, UdpSink};

    let redis = RedisServer::start();
    let a = fleet_proxy(&redis, &[], None);
    let b = fleet_proxy(&redis, &[], None);
    // Two real SRT origins (srt-live-transmit listeners writing to UDP sinks), registered
    // through A with their SRT endpoints.
    let (sink_x, sink_y) = (UdpSink::start(), UdpSink::start());
    let (port_x, port_y) = (free_udp_port(), free_udp_port());
    let _x = sink_origin(port_x, "", &sink_x);
    let _y = sink_origin(port_y, "", &sink_y);
    for (server, port) in [("x", port_x), ("y", port_y)] {
        let body = format!(
            r#"{{"ip":"127.0.0.1","server":"{server}","service":"s","pid":"1","rtmp":["{}"],"srt":["udp://0.0.0.0:{port}"]}}"#,
            free_port()
        );
        assert_eq!(
            http(
                "POST",
                a.addr("system-api"),
                "/api/v1/srs/register",
                &[],
                body.as_bytes()
            )
            .status,
            200
        );
    }
    let _publisher =
        ffmpeg_srt_publish(&srt_url(a.addr("srt"), "#!::r=live/cam,m=publish", ""), 20);
    assert!(
        wait_log(&a, "SRT session started", Duration::from_secs(10)),
        "A's log:\n{}",
        a.log_text()
    );
    let placed = placements(&b)
        .into_iter()
        .find(|(s, _)| s.ends_with("/live/cam"))
        .expect("B sees A's placement")
        .1;
    let sink = if placed.starts_with("x-") {
        &sink_x
    } else {
        &sink_y
    };
    assert!(
        sink.wait_for(50_000, Duration::from_secs(10)),
        "the origin A placed the stream on receives it"
    );

    // A player asking B for the same stream is sent to that same origin (which, being a
    // one-way relay, may then refuse it: the routing is what this test is about).
    let player = std::process::Command::new(crate::harness::require_program("ffmpeg", "ffmpeg"))
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-i",
            &srt_url(
                b.addr("srt"),
                "#!::r=live/cam,m=request",
                "&connect_timeout=3000",
            ),
            "-t",
            "1",
            "-f",
            "null",
            "-",
        ])
        .stdin(std::process::Stdio::null())
        .output();
    drop(player);
    let other = if placed.starts_with("x-") {
        "y-s-1"
    } else {
        "x-s-1"
    };
    let routed = wait_for(Duration::from_secs(10), || {
        b.log_text()
            .lines()
            .find(|l| l.contains("live/cam") && (l.contains(&placed) || l.contains(other)))
            .map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("B never routed the player; B's log:\n{}", b.log_text()));
    assert!(
        routed.contains(&placed) && !routed.contains(other),
        "B routed the player to the publisher's origin {placed}: {routed}"
    );
}

#[test]
fn a_live_rtmp_publish_carries_on_while_redis_is_down() {
    let mut redis = RedisServer::start();
    let nginx = NginxRtmp::start(None);
    let proxy = fleet_proxy(&redis, &[], Some(&nginx.origin_toml("nginx")));
    let rtmp = proxy.addr("rtmp");
    let mut publisher = ffmpeg_publish(&format!("rtmp://{rtmp}/live/cam"), 8, true, "flv");
    assert!(
        wait_for(Duration::from_secs(10), || proxy
            .log_text()
            .contains("publish started")
            .then_some(()))
        .is_some(),
        "{}",
        proxy.log_text()
    );
    std::thread::sleep(Duration::from_secs(1));
    redis.kill();

    // A new stream while Redis is down is placed by rendezvous over the last known origins.
    let mut other = ffmpeg_publish(&format!("rtmp://{rtmp}/live/other"), 2, true, "flv");
    let status = wait_for(Duration::from_secs(15), || {
        other.child.try_wait().ok().flatten()
    })
    .expect("the new publisher exits");
    assert!(
        status.success(),
        "a new stream while Redis is down is placed; proxy log:\n{}",
        proxy.log_text()
    );

    // The live publish goes on to its end through the outage.
    let status = wait_for(Duration::from_secs(20), || {
        publisher.child.try_wait().ok().flatten()
    })
    .expect("the publisher finishes");
    assert!(
        status.success(),
        "the live publish was cut by the Redis outage; proxy log:\n{}",
        proxy.log_text()
    );
    let ended = proxy
        .log_text()
        .lines()
        .find(|l| l.contains("publish ended") && l.contains("live/cam "))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(
        ended.contains("live/cam"),
        "the live publish ended through the proxy; log:\n{}",
        proxy.log_text()
    );

    redis.restart();
    // Like a real publisher, retry until the proxy has reconnected to Redis.
    let recovered = (0..10).any(|_| {
        let mut again = ffmpeg_publish(&format!("rtmp://{rtmp}/live/after"), 1, true, "flv");
        let status = wait_for(Duration::from_secs(20), || {
            again.child.try_wait().ok().flatten()
        });
        let ok = status.is_some_and(|s| s.success());
        if !ok {
            std::thread::sleep(Duration::from_millis(500));
        }
        ok
    });
    assert!(
        recovered,
        "new streams work again once Redis is back; proxy log:\n{}",
        proxy.log_text()
    );
}
