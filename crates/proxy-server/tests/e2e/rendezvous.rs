//! A fleet that agrees without asking: proxies placing streams by rendezvous hashing
//! (`PROXY_LB_STRATEGY=rendezvous`) and routing HLS segments by tokens signed with a
//! shared secret (`PROXY_FLEET_SECRET`), on the memory balancer (no shared state at all)
//! and on Redis while Redis is away.

use std::time::Duration;

use lb_core::token::{FleetKeys, TokenKind};
use lb_core::{Candidate, Origin, OriginId, Rendezvous, StreamKey};

use crate::harness::{
    ffmpeg_count_frames, ffmpeg_publish, free_port, free_udp_port, http, wait_for, NginxRtmp,
    Proxy, RedisServer,
};

const SECRET: &str = "a fleet secret shared by every proxy";

/// Where rendezvous hashing puts `live/<stream>` among static origins named `names`
/// (weight 1 each): what every proxy must agree on.
fn expected_origin(stream: &str, names: &[&str]) -> String {
    let origins: Vec<Origin> = names
        .iter()
        .map(|n| {
            let body = format!(
                r#"{{"ip":"127.0.0.1","server":"{n}","service":"s","pid":"1","rtmp":["1935"]}}"#
            );
            let mut o = lb_core::Registration::from_json(body.as_bytes())
                .and_then(lb_core::Registration::into_origin)
                .unwrap();
            // Static origins are named by their `name`.
            o.id = OriginId::new(*n);
            o
        })
        .collect();
    let candidates: Vec<Candidate<'_>> = origins
        .iter()
        .map(|origin| Candidate {
            origin,
            streams: 0,
            connections: 0,
        })
        .collect();
    let key = StreamKey::new(None, "live", stream).unwrap();
    let first = Rendezvous::order(&key, &candidates)[0];
    names[first].to_owned()
}

/// The line of `proxy`'s log where `what` ("publish started", "play started") of
/// `live/<stream>` is logged, once it is.
fn started_line(proxy: &Proxy, what: &str, stream: &str) -> String {
    let needle = format!("/live/{stream} ");
    wait_for(Duration::from_secs(15), || {
        proxy
            .log_text()
            .lines()
            .find(|l| l.contains(what) && l.contains(&needle))
            .map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("no `{what}` for {stream}; log:\n{}", proxy.log_text()))
}

fn origin_in(line: &str) -> String {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("origin="))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn two_memory_proxies_with_rendezvous_agree_over_rtmp_http_flv_and_hls() {
    let names = ["o1", "o2", "o3"];
    let nginx: Vec<NginxRtmp> = names.iter().map(|_| NginxRtmp::start(None)).collect();
    let toml: String = names
        .iter()
        .zip(&nginx)
        .map(|(name, n)| n.origin_toml(name))
        .collect();
    let flags = [("lb-strategy", "rendezvous")];
    let env = [("PROXY_FLEET_SECRET", SECRET)];
    let a = Proxy::start(&flags, &env, Some(&toml));
    let b = Proxy::start(&flags, &env, Some(&toml));

    // Streams spread over at least two origins, as rendezvous computes them.
    let streams = ["cam0", "cam1", "cam2", "cam3"];
    let expected: Vec<String> = streams.iter().map(|s| expected_origin(s, &names)).collect();
    let spread: std::collections::HashSet<&String> = expected.iter().collect();
    assert!(
        spread.len() > 1,
        "test streams all hash to one origin: {expected:?}"
    );
    let _publishers: Vec<_> = streams
        .iter()
        .map(|s| {
            ffmpeg_publish(
                &format!("rtmp://{}/live/{s}", a.addr("rtmp")),
                40,
                true,
                "flv",
            )
        })
        .collect();
    for (s, want) in streams.iter().zip(&expected) {
        let line = started_line(&a, "publish started", s);
        assert_eq!(
            &origin_in(&line),
            want,
            "A placed {s} where rendezvous says: {line}"
        );
    }

    // RTMP through B: B, which shares nothing with A, sends each player to the same origin.
    for (s, want) in streams.iter().zip(&expected).take(2) {
        let (frames, log) = ffmpeg_count_frames(&format!("rtmp://{}/live/{s}", b.addr("rtmp")), 2);
        assert!(
            frames >= 25,
            "played {frames} frames of {s} through B:\n{log}\nB's log:\n{}",
            b.log_text()
        );
        let line = started_line(&b, "play started", s);
        assert_eq!(
            &origin_in(&line),
            want,
            "B relayed {s} from A's origin: {line}"
        );
    }

    // HTTP-FLV through B reaches the same origin (nginx-rtmp has no HTTP-FLV of its own:
    // its access log is the witness of where B sent the request).
    for (s, want) in streams.iter().zip(&expected) {
        let _ = http("GET", b.addr("http"), &format!("/live/{s}.flv"), &[], b"");
        let line = format!("GET /live/{s}.flv");
        for (name, n) in names.iter().zip(&nginx) {
            assert_eq!(
                n.access_log().contains(&line),
                name == want,
                "HTTP-FLV of {s} through B went to {want} only; {name}'s access log:\n{}",
                n.access_log()
            );
        }
    }

    // HLS: the playlist through A, its segments through B, by the signed token alone.
    let playlist = wait_for(Duration::from_secs(25), || {
        let r = http("GET", a.addr("http"), "/live/cam0.m3u8", &[], b"");
        (r.status == 200 && r.text().contains(".ts")).then(|| r.text())
    })
    .unwrap_or_else(|| panic!("no playlist through A; log:\n{}", a.log_text()));
    let segment = playlist
        .lines()
        .find(|l| !l.starts_with('#') && l.contains("spbhid="))
        .unwrap_or_else(|| panic!("no tokenised segment in:\n{playlist}"))
        .to_owned();
    let path = if segment.starts_with('/') {
        segment.clone()
    } else {
        format!("/live/{segment}")
    };
    let token = path
        .split("spbhid=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let claims = FleetKeys::new(SECRET.as_bytes(), None)
        .unwrap()
        .verify(token, TokenKind::Hls, b"", 0)
        .unwrap_or_else(|e| {
            panic!("the playlist's token {token} is not signed with the fleet secret: {e:?}")
        });
    assert_eq!(claims.origin.as_str(), expected[0]);
    assert_eq!(claims.subject, "__defaultVhost__/live/cam0");
    let r = http("GET", b.addr("http"), &path, &[], b"");
    assert_eq!(
        r.status,
        200,
        "segment through B: {}\nB's log:\n{}",
        r.text(),
        b.log_text()
    );
    assert_eq!(r.body.first(), Some(&0x47), "an MPEG-TS segment");
    // A token changed by one character is refused by B, not routed.
    let mut forged = token.to_owned().into_bytes();
    forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
    let forged = path.replace(token, std::str::from_utf8(&forged).unwrap());
    assert_eq!(http("GET", b.addr("http"), &forged, &[], b"").status, 404);
}

#[test]
fn srt_published_through_one_memory_proxy_is_requested_from_the_same_origin_through_another() {
    use crate::srt::{ffmpeg_srt_publish, sink_origin, srt_url, wait_log, UdpSink};

    let names = ["x", "y", "z"];
    let sinks: Vec<UdpSink> = names.iter().map(|_| UdpSink::start()).collect();
    let ports: Vec<u16> = names.iter().map(|_| free_udp_port()).collect();
    let _origins: Vec<_> = ports
        .iter()
        .zip(&sinks)
        .map(|(&port, sink)| sink_origin(port, "", sink))
        .collect();
    let toml: String = names
        .iter()
        .zip(&ports)
        .map(|(name, port)| {
            format!(
                "[[origins]]\nname = \"{name}\"\nrtmp = {}\nsrt = {port}\n",
                free_port()
            )
        })
        .collect();
    let flags = [("lb-strategy", "rendezvous")];
    let a = Proxy::start(&flags, &[], Some(&toml));
    let b = Proxy::start(&flags, &[], Some(&toml));
    let want = expected_origin("cam", &names);

    let _publisher =
        ffmpeg_srt_publish(&srt_url(a.addr("srt"), "#!::r=live/cam,m=publish", ""), 20);
    assert!(
        wait_log(&a, "SRT session started", Duration::from_secs(10)),
        "A's log:\n{}",
        a.log_text()
    );
    let started = started_line(&a, "SRT session started", "cam");
    assert_eq!(origin_in(&started), want, "{started}");
    let index = names.iter().position(|n| *n == want).unwrap();
    assert!(
        sinks[index].wait_for(50_000, Duration::from_secs(10)),
        "the origin rendezvous names receives the stream"
    );

    // A player asking B is sent to that same origin (a one-way relay may then refuse it:
    // the routing is what this test is about).
    let _ = std::process::Command::new(crate::harness::require_program("ffmpeg", "ffmpeg"))
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"])
        .arg(srt_url(
            b.addr("srt"),
            "#!::r=live/cam,m=request",
            "&connect_timeout=3000",
        ))
        .args(["-t", "1", "-f", "null", "-"])
        .stdin(std::process::Stdio::null())
        .output();
    let routed = wait_for(Duration::from_secs(10), || {
        b.log_text()
            .lines()
            .find(|l| l.contains("live/cam") && l.contains("origin="))
            .map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("B never routed the player; B's log:\n{}", b.log_text()));
    assert_eq!(
        origin_in(&routed),
        want,
        "B routed the player to A's origin: {routed}"
    );
}

#[test]
fn with_redis_gone_a_new_stream_through_one_proxy_plays_through_another_and_is_written_back() {
    let mut redis = RedisServer::start();
    let names = ["o1", "o2", "o3"];
    let nginx: Vec<NginxRtmp> = names.iter().map(|_| NginxRtmp::start(None)).collect();
    let toml: String = names
        .iter()
        .zip(&nginx)
        .map(|(name, n)| n.origin_toml(name))
        .collect();
    let extra = [("lb-strategy", "rendezvous"), ("tentative-ttl", "2s")];
    let a = crate::harness::fleet_proxy(&redis, &extra, Some(&toml));
    let b = crate::harness::fleet_proxy(&redis, &extra, Some(&toml));
    let healthy = http("GET", a.addr("system-api"), "/healthz", &[], b"");
    assert_eq!(healthy.json()["status"], "ok", "{}", healthy.text());

    redis.kill();
    let want = expected_origin("during", &names);
    let _publisher = ffmpeg_publish(
        &format!("rtmp://{}/live/during", a.addr("rtmp")),
        60,
        true,
        "flv",
    );
    let line = started_line(&a, "publish started", "during");
    assert_eq!(
        origin_in(&line),
        want,
        "A placed the new stream by rendezvous: {line}"
    );
    assert!(a
        .log_text()
        .contains("placed by rendezvous over the last known origins"));

    for proxy in [&a, &b] {
        let health = http("GET", proxy.addr("system-api"), "/healthz", &[], b"");
        assert_eq!(health.status, 200, "{}", health.text());
        assert_eq!(health.json()["status"], "degraded", "{}", health.text());
    }
    let (frames, log) = ffmpeg_count_frames(&format!("rtmp://{}/live/during", b.addr("rtmp")), 2);
    assert!(
        frames >= 25,
        "played {frames} frames through B during the outage:\n{log}\nB's log:\n{}",
        b.log_text()
    );
    assert_eq!(origin_in(&started_line(&b, "play started", "during")), want);

    // Redis comes back empty: the live publisher's placement is written back.
    redis.restart();
    let cli = crate::harness::require_program("redis-cli", "redis-tools");
    let key = "srs-proxy-url:__defaultVhost__/live/during";
    let written = wait_for(Duration::from_secs(30), || {
        let out = std::process::Command::new(&cli)
            .args(["-p", &redis.port.to_string(), "GET", key])
            .output()
            .ok()?;
        let value = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (!value.is_empty()).then_some(value)
    })
    .unwrap_or_else(|| {
        panic!(
            "the placement was not written back; keys: {:?}\nA's log:\n{}",
            redis.keys("*"),
            a.log_text()
        )
    });
    assert_eq!(written, want, "written back where the stream lives");
    let healthy = wait_for(Duration::from_secs(15), || {
        let r = http("GET", a.addr("system-api"), "/healthz", &[], b"");
        (r.json()["status"] == "ok").then_some(())
    });
    assert!(healthy.is_some(), "healthz is ok again once Redis is back");
}

#[test]
fn a_whip_location_signed_by_one_memory_proxy_is_deleted_through_another() {
    use crate::webrtc::fake_origin::{self, FakeOrigin};

    let fake = FakeOrigin::start();
    let toml = fake.origin_toml("fake");
    let env = [("PROXY_FLEET_SECRET", SECRET)];
    let a = Proxy::start(&[], &env, Some(&toml));
    let b = Proxy::start(&[], &env, Some(&toml));
    let r = http(
        "POST",
        a.addr("http-api"),
        "/rtc/v1/whip/?app=live&stream=signed",
        &[],
        fake_origin::offer("cli1").as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let location = r.header("location").unwrap().to_owned();
    assert!(
        location.contains("proxy_token=") && !location.contains("proxy_secret="),
        "a signed Location: {location}"
    );
    // A forged token (one character changed) reaches nothing, through either proxy.
    let token = location
        .split("proxy_token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let mut forged = token.as_bytes().to_vec();
    forged[12] = if forged[12] == b'A' { b'B' } else { b'A' };
    let forged = location.replace(token, std::str::from_utf8(&forged).unwrap());
    for proxy in [&a, &b] {
        assert_eq!(
            http("DELETE", proxy.addr("http-api"), &forged, &[], b"").status,
            404
        );
    }
    assert!(!fake.requests().iter().any(|s| s.method == "DELETE"));
    // The genuine Location, through B, which never saw the session and shares no store.
    let r = http("DELETE", b.addr("http-api"), &location, &[], b"");
    assert_eq!(r.status, 200, "{}\nB's log:\n{}", r.text(), b.log_text());
    assert!(fake.requests().iter().any(|s| s.method == "DELETE"));
}
