//! WebRTC through the proxy: WHIP/WHEP signalling on `http-api`, media on the `webrtc` UDP
//! port.
//!
//! With a real WebRTC stack on both sides: aiortc (Python) as the publishing and playing
//! clients and as the origin, an aiortc-based origin written for these tests that answers
//! with SRS's paths and replies (tests/e2e/webrtc_peers/origin.py; not SRS). With a FAKE
//! origin written in Rust (webrtc/fake_origin.rs) where exact bytes matter: the rewritten
//! answer, the forwarded requests, and which datagrams reach the origin's media port.

mod fake_origin;
mod peers;

use std::net::UdpSocket;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use serde_json::Value;
use stun_ufrag::{BindingRequest, IceRole, IntegrityKey, TransactionId};

use crate::harness::{fleet_proxy, http, wait_for, Proxy, RedisServer};
use fake_origin::FakeOrigin;
use peers::{client, PyOrigin};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// A signed ICE check, as a client sends it.
fn check(server: &str, client: &str, pwd: &str, nominate: bool) -> Vec<u8> {
    static NEXT: AtomicU8 = AtomicU8::new(1);
    let mut buf = [0u8; 512];
    let request = BindingRequest {
        transaction_id: TransactionId([NEXT.fetch_add(1, Ordering::Relaxed); 12]),
        server_ufrag: server,
        client_ufrag: client,
        priority: 1_853_824_767,
        role: IceRole::Controlling(0x1234),
        use_candidate: nominate,
        network_info: None,
    };
    request
        .encode(&IntegrityKey::new(pwd.as_bytes()), &mut buf)
        .expect("encoding a check")
        .to_vec()
}

fn udp_client() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("udp bind");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s
}

/// Datagrams arriving at `socket` within `wait`.
fn drain(socket: &UdpSocket, wait: Duration) -> Vec<Vec<u8>> {
    let deadline = std::time::Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while std::time::Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            out.push(buf[..n].to_vec());
        }
    }
    out
}

fn streams(proxy: &Proxy) -> Value {
    http("GET", proxy.addr("system-api"), "/api/v1/streams", &[], b"").json()
}

/// The WebRTC clients the proxy lists for a stream.
fn rtc_clients(proxy: &Proxy, stream: &str) -> Vec<Value> {
    let all = streams(proxy);
    all["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["stream"] == stream)
        .flat_map(|s| {
            s["sessions"]["clients"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|c| c["protocol"] == "webrtc")
        .collect()
}

fn proxied_candidate(proxy: &Proxy) -> String {
    format!("127.0.0.1 {} typ host", proxy.addr("webrtc").port())
}

/// The `session=<server>:<client>` of SRS's Location: the client ufrag of the offer.
fn client_ufrag(location: &str) -> String {
    let session = location
        .split('&')
        .find_map(|kv| kv.strip_prefix("session="))
        .expect("session= in the Location");
    session.split_once(':').expect("server:client").1.to_owned()
}

#[test]
fn whip_publish_and_whep_play_through_the_proxy() {
    let origin = PyOrigin::start(true);
    let proxy = Proxy::start(&[], &[], Some(&origin.origin_toml("aiortc")));
    let api = proxy.addr("http-api");

    let mut publisher = client(
        "publish",
        &format!("http://{api}/rtc/v1/whip/?app=live&stream=cam"),
        25,
        false,
    );
    let answer = publisher.event("answer", SECS(20));
    assert_eq!(answer["status"], 201, "{answer}");
    assert_eq!(answer["content_type"], "application/sdp");
    let candidates = answer["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 1, "one candidate, the proxy's: {answer}");
    assert!(
        candidates[0]
            .as_str()
            .unwrap()
            .ends_with(&proxied_candidate(&proxy)),
        "{answer}"
    );
    let location = answer["location"].as_str().unwrap();
    assert!(
        location.starts_with("/rtc/v1/whip/?action=delete&token="),
        "SRS's Location, kept: {location}"
    );
    assert!(location.contains("&proxy_ufrag="), "{location}");
    assert!(
        answer["etag"].as_str().is_some_and(|e| !e.is_empty()),
        "{answer}"
    );
    publisher.wait(SECS(15), "connected publisher", |v| {
        v["state"] == "connected"
    });
    assert!(
        wait_for(SECS(10), || (origin.frames("live/cam") >= 10).then_some(())).is_some(),
        "the origin decodes the published video: {}\n{}",
        origin.state(),
        origin.peer.stderr()
    );

    // Two players at once, through both of SRS's play paths.
    let mut whep = client(
        "play",
        &format!("http://{api}/rtc/v1/whep/?app=live&stream=cam"),
        6,
        false,
    );
    let mut whip_play = client(
        "play",
        &format!("http://{api}/rtc/v1/whip-play/?app=live&stream=cam"),
        6,
        false,
    );
    for player in [&mut whep, &mut whip_play] {
        let answer = player.event("answer", SECS(20));
        assert_eq!(answer["status"], 201, "{answer}");
        assert!(
            answer["candidates"][0]
                .as_str()
                .unwrap()
                .ends_with(&proxied_candidate(&proxy)),
            "{answer}"
        );
        let frames = player.frames_at_least(10, SECS(20));
        assert!(frames >= 10, "{frames}");
    }

    // The proxy relayed it all: one publisher and two players, bytes both ways.
    let clients = rtc_clients(&proxy, "__defaultVhost__/live/cam");
    assert_eq!(
        clients.iter().filter(|c| c["publishing"] == true).count(),
        1,
        "{clients:?}"
    );
    assert_eq!(
        clients.iter().filter(|c| c["publishing"] == false).count(),
        2,
        "{clients:?}"
    );
    let stream = streams(&proxy)["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stream"] == "__defaultVhost__/live/cam")
        .cloned()
        .unwrap();
    assert!(
        stream["sessions"]["bytes_to_origin"].as_u64().unwrap() > 20_000,
        "{stream}"
    );
    assert!(
        stream["sessions"]["bytes_to_client"].as_u64().unwrap() > 20_000,
        "{stream}"
    );
    // The origin saw the offers with the client's address added.
    let seen = origin.state();
    let posts: Vec<&Value> = seen["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST")
        .collect();
    assert_eq!(posts.len(), 3, "{seen}");
    assert!(
        posts.iter().all(|r| r["forwarded_for"] == "127.0.0.1"),
        "{seen}"
    );
    assert_eq!(posts[0]["target"], "/rtc/v1/whip/?app=live&stream=cam");
}

#[test]
fn delete_and_patch_on_the_location_reach_the_origin() {
    // This origin opens a port per session (no registered media port): the proxy relays to
    // the port its answer names.
    let origin = PyOrigin::start(false);
    let proxy = Proxy::start(&[], &[], Some(&origin.origin_toml("aiortc")));
    let api = proxy.addr("http-api");
    let mut publisher = client(
        "publish",
        &format!("http://{api}/rtc/v1/whip/?app=live&stream=gone"),
        8,
        true,
    );
    let answer = publisher.event("answer", SECS(20));
    assert_eq!(answer["status"], 201, "{answer}");
    publisher.wait(SECS(15), "connected publisher", |v| {
        v["state"] == "connected"
    });
    assert!(
        wait_for(SECS(10), || (origin.frames("live/gone") >= 10)
            .then_some(()))
        .is_some(),
        "media reached the origin's own port: {}\n{}",
        origin.state(),
        origin.peer.stderr()
    );
    assert_eq!(rtc_clients(&proxy, "__defaultVhost__/live/gone").len(), 1);

    // Trickle ICE: PATCH with If-Match reaches the origin, which checks the ETag.
    let location = answer["location"].as_str().unwrap().to_owned();
    let etag = answer["etag"].as_str().unwrap().to_owned();
    let frag = "a=ice-ufrag:abcd\r\na=ice-pwd:efghijklmnopqrstuvwxyz12\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n";
    let sdpfrag = [("Content-Type", "application/trickle-ice-sdpfrag")];
    let wrong = http(
        "PATCH",
        api,
        &location,
        &[sdpfrag[0], ("If-Match", "\"nope\"")],
        frag.as_bytes(),
    );
    assert_eq!(
        wrong.status,
        412,
        "the origin's refusal passes through: {}",
        wrong.text()
    );
    let right = http(
        "PATCH",
        api,
        &location,
        &[sdpfrag[0], ("If-Match", etag.as_str())],
        frag.as_bytes(),
    );
    assert_eq!(right.status, 204, "{}", right.text());
    assert_eq!(right.header("etag"), Some(etag.as_str()));

    // The client's DELETE ends the origin's session and the proxy's.
    let deleted = publisher.event("deleted", SECS(15));
    assert_eq!(deleted["status"], 200, "{deleted}");
    let seen = origin.state();
    let requests = seen["requests"].as_array().unwrap();
    let patch = requests
        .iter()
        .find(|r| r["method"] == "PATCH" && r["if_match"] == etag.as_str())
        .expect("the PATCH reached the origin");
    assert_eq!(patch["body"], frag, "the fragment passes untouched");
    let delete = requests
        .iter()
        .find(|r| r["method"] == "DELETE")
        .unwrap_or_else(|| panic!("the origin saw no DELETE: {seen}"));
    let target = delete["target"].as_str().unwrap();
    assert!(
        target.starts_with("/rtc/v1/whip/?action=delete&token="),
        "{target}"
    );
    assert!(
        !target.contains("proxy_"),
        "the proxy's own parameters are stripped: {target}"
    );
    assert_eq!(
        seen["sessions"].as_object().map(|s| s.len()),
        Some(0),
        "the origin closed the session: {seen}"
    );
    assert!(
        wait_for(SECS(5), || rtc_clients(
            &proxy,
            "__defaultVhost__/live/gone"
        )
        .is_empty()
        .then_some(()))
        .is_some(),
        "the proxy's session ended with the DELETE: {}",
        streams(&proxy)
    );
    // Again: the origin no longer knows it, and says so.
    assert_eq!(http("DELETE", api, &location, &[], b"").status, 404);
    // A URL naming no session at all.
    let r = http(
        "DELETE",
        api,
        "/rtc/v1/whip/?action=delete&token=zzz&app=live&stream=gone",
        &[],
        b"",
    );
    assert_eq!(r.status, 404, "{}", r.text());
}

#[test]
fn two_streams_on_two_origins_share_the_udp_port() {
    let (one, two) = (PyOrigin::start(true), PyOrigin::start(true));
    let config = format!("{}{}", one.origin_toml("one"), two.origin_toml("two"));
    let proxy = Proxy::start(&[("lb-strategy", "least-streams")], &[], Some(&config));
    let api = proxy.addr("http-api");
    let mut publishers: Vec<_> = ["s1", "s2"]
        .iter()
        .map(|s| {
            client(
                "publish",
                &format!("http://{api}/rtc/v1/whip/?app=live&stream={s}"),
                20,
                false,
            )
        })
        .collect();
    for p in &mut publishers {
        let answer = p.event("answer", SECS(20));
        assert_eq!(answer["status"], 201, "{answer}");
        assert!(
            answer["candidates"][0]
                .as_str()
                .unwrap()
                .ends_with(&proxied_candidate(&proxy)),
            "both through the one UDP port: {answer}"
        );
    }
    for p in &mut publishers {
        p.wait(SECS(15), "connected publisher", |v| {
            v["state"] == "connected"
        });
    }
    let placed: Vec<(String, String)> = streams(&proxy)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["origin"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let origin_of = |s: &str| {
        placed
            .iter()
            .find(|(n, _)| n == s)
            .map(|(_, o)| o.clone())
            .unwrap_or_else(|| panic!("{s} not placed: {placed:?}"))
    };
    assert_ne!(
        origin_of("s1"),
        origin_of("s2"),
        "least-streams puts them on different origins"
    );
    for stream in ["s1", "s2"] {
        let (mine, other) = if origin_of(stream) == "one" {
            (&one, &two)
        } else {
            (&two, &one)
        };
        let key = format!("live/{stream}");
        assert!(
            wait_for(SECS(10), || (mine.frames(&key) >= 10).then_some(())).is_some(),
            "{stream}'s media reaches its own origin: {}",
            mine.state()
        );
        assert_eq!(other.frames(&key), 0, "and not the other one");
    }
}

#[test]
fn bad_stun_is_dropped_and_live_sessions_go_on_then_a_moved_client_is_followed() {
    let origin = PyOrigin::start(true);
    let proxy = Proxy::start(&[], &[], Some(&origin.origin_toml("aiortc")));
    let api = proxy.addr("http-api");
    let webrtc = proxy.addr("webrtc");
    let mut publisher = client(
        "publish",
        &format!("http://{api}/rtc/v1/whip/?app=live&stream=cam"),
        25,
        false,
    );
    assert_eq!(publisher.event("answer", SECS(20))["status"], 201);
    publisher.wait(SECS(15), "connected publisher", |v| {
        v["state"] == "connected"
    });
    let mut player = client(
        "play",
        &format!("http://{api}/rtc/v1/whep/?app=live&stream=cam"),
        14,
        false,
    );
    let answer = player.event("answer", SECS(20));
    let (ufrag, pwd) = (
        answer["ufrag"].as_str().unwrap().to_owned(),
        answer["pwd"].as_str().unwrap().to_owned(),
    );
    let cli = client_ufrag(answer["location"].as_str().unwrap());
    let before = player.frames_at_least(10, SECS(20));

    let attacker = udp_client();
    let valid = check(&ufrag, &cli, &pwd, true);
    let mut garbage: Vec<Vec<u8>> = vec![
        vec![0x00; 3],
        vec![0x01, 0x01, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef],
        b"\x00\x01\x00\x08\x21\x12\xa4\x42not-a-stun-message!!".to_vec(),
        valid[..30].to_vec(), // truncated check
        check(&ufrag, &cli, "wrong-password-0123456789", true), // wrong MESSAGE-INTEGRITY
        check(&ufrag, "someoneelse", &pwd, true), // right key, another client's ufrag
        check("nosuchufrag", &cli, &pwd, true), // unknown ufrag
        vec![0x17, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1], // DTLS-looking
        {
            let mut rtp = vec![0x80, 0x60];
            rtp.resize(1200, 0x55);
            rtp
        },
    ];
    // A valid check altered after signing (the last byte of PRIORITY, before
    // MESSAGE-INTEGRITY and FINGERPRINT): same ufrags, integrity fails.
    let mut tampered = valid.clone();
    let at = tampered.len() - 8 - 24 - 1;
    tampered[at] ^= 0xff;
    garbage.push(tampered);
    for _ in 0..3 {
        for datagram in &garbage {
            attacker.send_to(datagram, webrtc).unwrap();
        }
    }
    assert_eq!(
        drain(&attacker, SECS(2)),
        Vec::<Vec<u8>>::new(),
        "nothing comes back to the sender of bad packets"
    );
    let after = player.frames_at_least(before + 20, SECS(10));
    assert!(
        after >= before + 20,
        "the player goes on decoding: {before} then {after}"
    );
    assert_eq!(origin.state()["sessions"].as_object().unwrap().len(), 2);

    // A valid, nominating check from a new address moves the session there: the origin's
    // answer to it and then the origin's media follow the client.
    let moved = udp_client();
    let mut stun_answers = 0;
    let mut media = 0;
    for _ in 0..10 {
        moved
            .send_to(&check(&ufrag, &cli, &pwd, true), webrtc)
            .unwrap();
        for d in drain(&moved, Duration::from_millis(150)) {
            match d[0] {
                0..=3 => stun_answers += 1,
                128..=191 => media += 1,
                _ => {}
            }
        }
    }
    assert!(
        stun_answers >= 1,
        "the origin's answer to the check reached the new address"
    );
    assert!(
        media >= 1,
        "the origin's media followed the client to its new address"
    );
    let log = proxy.log_text();
    assert!(log.contains("WebRTC client address changed"), "{log}");
}

#[test]
fn the_answer_is_rewritten_and_only_authentic_checks_reach_the_origin() {
    let fake = FakeOrigin::start();
    let proxy = Proxy::start(&[], &[], Some(&fake.origin_toml("fake")));
    let (api, webrtc) = (proxy.addr("http-api"), proxy.addr("webrtc"));
    let offer = fake_origin::offer("cli1");
    let r = http(
        "POST",
        api,
        "/rtc/v1/whip/?app=live&stream=cam&secret=s3",
        &[
            ("Content-Type", "application/sdp"),
            ("Authorization", "Bearer t0k"),
        ],
        offer.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/sdp"));
    assert_eq!(r.header("etag"), Some(fake_origin::ETAG));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r
        .header("access-control-expose-headers")
        .is_some_and(|h| h.contains("Location")));
    let expected = fake_origin::answer(fake.media_port())
        .replace(
            &format!("192.0.2.10 {} typ host generation", fake.media_port()),
            &format!("127.0.0.1 {} typ host generation", webrtc.port()),
        )
        .replace(
            &format!(
                "a=candidate:2 1 tcp 1671430143 192.0.2.10 {} typ host tcptype passive\r\n",
                fake.media_port()
            ),
            "",
        );
    assert_eq!(
        r.text(),
        expected,
        "UDP candidate rewritten to the proxy, TCP candidate dropped, the rest untouched"
    );
    let location = r.header("location").unwrap().to_owned();
    assert_eq!(location, "/rtc/v1/whip/?action=delete&token=tok1&app=live&stream=cam&secret=s3&session=fakeufrag:cli&proxy_ufrag=fakeufrag&proxy_origin=fake");
    let posted = fake
        .requests()
        .into_iter()
        .find(|s| s.method == "POST")
        .expect("the offer reached the origin");
    assert_eq!(posted.target, "/rtc/v1/whip/?app=live&stream=cam&secret=s3");
    assert_eq!(posted.body, offer.as_bytes());
    assert_eq!(posted.header("authorization"), Some("Bearer t0k"));
    assert_eq!(posted.header("x-forwarded-for"), Some("127.0.0.1"));

    // Media: a valid check opens the session and reaches the origin byte for byte.
    let a = udp_client();
    let first = check(fake_origin::UFRAG, "cli1", fake_origin::PWD, true);
    a.send_to(&first, webrtc).unwrap();
    let (got, relay) = fake
        .next(SECS(3))
        .expect("the check reached the origin's media port");
    assert_eq!(got, first);
    let mut rtp = vec![0x80, 0x60];
    rtp.resize(1200, 7);
    a.send_to(&rtp, webrtc).unwrap();
    fake.media
        .send_to(b"\x80\x60origin-to-client", relay)
        .unwrap();
    assert_eq!(
        drain(&a, Duration::from_millis(500)),
        vec![b"\x80\x60origin-to-client".to_vec()]
    );

    // Checks failing MESSAGE-INTEGRITY, or naming another client, or an unknown ufrag, from
    // another address: dropped, and the session stays with A.
    let b = udp_client();
    b.send_to(
        &check(fake_origin::UFRAG, "cli1", "not-the-password-at-all", true),
        webrtc,
    )
    .unwrap();
    b.send_to(
        &check(fake_origin::UFRAG, "intruder", fake_origin::PWD, true),
        webrtc,
    )
    .unwrap();
    b.send_to(&check("unknown", "cli1", fake_origin::PWD, true), webrtc)
        .unwrap();
    b.send_to(&rtp, webrtc).unwrap();
    let arrived = fake.received(Duration::from_millis(800));
    assert_eq!(
        arrived.len(),
        1,
        "only A's RTP reached the origin: {arrived:?}"
    );
    assert_eq!(
        (arrived[0].0.len(), arrived[0].1),
        (1200, relay),
        "through the session's one origin-side socket"
    );
    fake.media.send_to(b"\x80\x60still-a", relay).unwrap();
    assert_eq!(
        drain(&a, Duration::from_millis(500)),
        vec![b"\x80\x60still-a".to_vec()]
    );
    assert!(drain(&b, Duration::from_millis(100)).is_empty());

    // A valid check from B: B is followed.
    b.send_to(
        &check(fake_origin::UFRAG, "cli1", fake_origin::PWD, true),
        webrtc,
    )
    .unwrap();
    let (_, via) = fake
        .next(SECS(3))
        .expect("B's valid check reached the origin");
    assert_eq!(via, relay, "the same origin-side socket");
    fake.media.send_to(b"\x80\x60now-b", relay).unwrap();
    assert_eq!(
        drain(&b, Duration::from_millis(500)),
        vec![b"\x80\x60now-b".to_vec()]
    );

    // PATCH and DELETE through the Location reach the origin without the proxy's parameters.
    let frag = "a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n";
    let r = http(
        "PATCH",
        api,
        &location,
        &[
            ("Content-Type", "application/trickle-ice-sdpfrag"),
            ("If-Match", fake_origin::ETAG),
        ],
        frag.as_bytes(),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let r = http("DELETE", api, &location, &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = fake.requests();
    let origin_url = "/rtc/v1/whip/?action=delete&token=tok1&app=live&stream=cam&secret=s3&session=fakeufrag:cli";
    let patch = seen
        .iter()
        .find(|s| s.method == "PATCH")
        .expect("PATCH reached the origin");
    assert_eq!(
        (
            patch.target.as_str(),
            patch.header("if-match"),
            patch.body.as_slice()
        ),
        (origin_url, Some(fake_origin::ETAG), frag.as_bytes())
    );
    assert_eq!(
        seen.iter()
            .find(|s| s.method == "DELETE")
            .map(|s| s.target.as_str()),
        Some(origin_url)
    );
    // Deleted: the session's checks no longer reach the origin.
    std::thread::sleep(Duration::from_millis(200));
    a.send_to(&first, webrtc).unwrap();
    assert!(
        fake.received(Duration::from_millis(800)).is_empty(),
        "a deleted session is not relayed"
    );
}

#[test]
fn idle_sessions_expire_and_come_back_from_the_balancer() {
    let fake = FakeOrigin::start();
    let proxy = Proxy::start(
        &[("idle-timeout", "1s")],
        &[],
        Some(&fake.origin_toml("fake")),
    );
    let (api, webrtc) = (proxy.addr("http-api"), proxy.addr("webrtc"));
    let r = http(
        "POST",
        api,
        "/rtc/v1/whep/?app=live&stream=idle",
        &[],
        fake_origin::offer("cli1").as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let a = udp_client();
    a.send_to(
        &check(fake_origin::UFRAG, "cli1", fake_origin::PWD, true),
        webrtc,
    )
    .unwrap();
    assert!(fake.next(SECS(3)).is_some());
    assert_eq!(rtc_clients(&proxy, "__defaultVhost__/live/idle").len(), 1);
    // Silent for longer than the idle timeout: the session, its socket and its task end.
    assert!(
        wait_for(SECS(5), || rtc_clients(
            &proxy,
            "__defaultVhost__/live/idle"
        )
        .is_empty()
        .then_some(()))
        .is_some(),
        "the idle session ended: {}",
        streams(&proxy)
    );
    assert!(
        proxy.log_text().contains("reason=\"idle\"") || proxy.log_text().contains("reason=idle"),
        "{}",
        proxy.log_text()
    );
    // The client comes back: the session is found again in the balancer.
    a.send_to(
        &check(fake_origin::UFRAG, "cli1", fake_origin::PWD, true),
        webrtc,
    )
    .unwrap();
    let (_, relay) = fake
        .next(SECS(3))
        .expect("the returning client's check reached the origin");
    fake.media.send_to(b"\x80\x60back", relay).unwrap();
    assert_eq!(
        drain(&a, Duration::from_millis(500)),
        vec![b"\x80\x60back".to_vec()]
    );
}

#[test]
fn a_session_signalled_through_one_proxy_is_relayed_and_deleted_through_another() {
    let redis = RedisServer::start();
    let fake = FakeOrigin::start();
    let toml = fake.origin_toml("fake");
    let (one, two) = (
        fleet_proxy(&redis, &[], Some(&toml)),
        fleet_proxy(&redis, &[], Some(&toml)),
    );
    let r = http(
        "POST",
        one.addr("http-api"),
        "/rtc/v1/whip/?app=live&stream=fleet",
        &[],
        fake_origin::offer("cli1").as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let location = r.header("location").unwrap().to_owned();
    // The media goes to the other proxy, which finds the session in Redis.
    let a = udp_client();
    let first = check(fake_origin::UFRAG, "cli1", fake_origin::PWD, true);
    a.send_to(&first, two.addr("webrtc")).unwrap();
    let (got, relay) = fake
        .next(SECS(5))
        .unwrap_or_else(|| panic!("proxy two did not relay; its log:\n{}", two.log_text()));
    assert_eq!(got, first);
    fake.media.send_to(b"\x80\x60via-two", relay).unwrap();
    assert_eq!(
        drain(&a, Duration::from_millis(500)),
        vec![b"\x80\x60via-two".to_vec()]
    );
    // Proxy two learnt from the stored record that this client publishes.
    let listed = http(
        "GET",
        two.addr("system-api"),
        "/api/v1/streams?stream=live/fleet",
        &[],
        b"",
    )
    .text();
    assert!(
        listed.contains("\"role\":\"publish\"") && listed.contains("\"webrtc\""),
        "{listed}"
    );
    // A forged check is refused there too.
    udp_client()
        .send_to(
            &check(fake_origin::UFRAG, "cli1", "forged-password-xxxxxxxx", true),
            two.addr("webrtc"),
        )
        .unwrap();
    assert!(fake.received(Duration::from_millis(500)).is_empty());
    // DELETE through the other proxy reaches the origin.
    let r = http("DELETE", two.addr("http-api"), &location, &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(fake.requests().iter().any(|s| s.method == "DELETE"));
}

#[test]
fn without_an_origin_a_whip_offer_gets_503_and_the_api_answers_plain_requests() {
    let proxy = Proxy::start(&[], &[], None);
    let api = proxy.addr("http-api");
    let offer = fake_origin::offer("cli1");
    let r = http(
        "POST",
        api,
        "/rtc/v1/whip/?app=live&stream=cam",
        &[("Content-Type", "application/sdp")],
        offer.as_bytes(),
    );
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.json()["error"].as_str().unwrap().contains("no origin"),
        "{}",
        r.text()
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let r = http("POST", api, "/rtc/v1/whep/?app=live", &[], offer.as_bytes());
    assert_eq!(r.status, 400, "no stream named: {}", r.text());
    let r = http(
        "POST",
        api,
        "/rtc/v1/whip/?app=live&stream=cam",
        &[],
        b"hello",
    );
    assert_eq!(r.status, 400, "not an SDP offer: {}", r.text());
    let r = http(
        "OPTIONS",
        api,
        "/rtc/v1/whip/?app=live&stream=cam",
        &[
            ("Origin", "https://player.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    );
    assert_eq!(r.status, 200);
    assert!(r
        .header("access-control-allow-methods")
        .is_some_and(|m| m.contains("PATCH") && m.contains("DELETE")));
    let r = http("GET", api, "/api/v1/versions", &[], b"");
    assert_eq!((r.status, r.json()["code"].as_u64()), (200, Some(0)));
    assert_eq!(http("GET", api, "/nothing/here", &[], b"").status, 404);

    // An origin that refuses: its status and body pass through.
    let closed_api = crate::harness::free_port();
    let proxy = Proxy::start(
        &[("origin-connect-timeout", "1s")],
        &[],
        Some(&format!(
            "[[origins]]\nname = \"down\"\napi = {closed_api}\n"
        )),
    );
    let r = http(
        "POST",
        proxy.addr("http-api"),
        "/rtc/v1/whip/?app=live&stream=cam",
        &[],
        offer.as_bytes(),
    );
    assert_eq!(r.status, 502, "an unreachable origin: {}", r.text());
}
