//! WebRTC through the proxy: WHIP/WHEP signalling on `http-api`, media on the `webrtc` UDP
//! port.
//!
//! With a real WebRTC stack on both sides: aiortc (Python) as the publishing and playing
//! clients and as the origin, an aiortc-based origin written for these tests that answers
//! with SRS's paths and replies (tests/e2e/webrtc_peers/origin.py; not SRS). With a FAKE
//! origin written in Rust (webrtc/fake_origin.rs) where exact bytes matter: the rewritten
//! answer, the forwarded requests, and which datagrams reach the origin's media port.
//!
//! The proxy sends media only to a client address that answered its own consent request
//! (RFC 7675); the raw-socket clients here answer it as an ICE agent does
//! ([`answer_consent`]), or on purpose do not.

mod fake_origin;
mod nat;
pub mod peers;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use serde_json::Value;
use stun_ufrag::stun::binding_success_response;
use stun_ufrag::{BindingRequest, IceRole, IntegrityKey, Message, TransactionId};

use crate::harness::{fleet_proxy, http, wait_for, Proxy, RedisServer};
use fake_origin::FakeOrigin;
use nat::FakeNat;
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

/// Whether a datagram is STUN (RFC 7983's first-byte range).
fn is_stun(d: &[u8]) -> bool {
    d.first().is_some_and(|b| *b <= 3)
}

/// The client's ICE agent's answer to a binding request keyed with its `pwd`: a success
/// keyed with the same password.
fn consent_answer(request: &[u8], pwd: &str, mapped: SocketAddr) -> Vec<u8> {
    Message::parse(request)
        .expect("a STUN request")
        .verify_password(pwd.as_bytes())
        .expect("the proxy keys its request with the client's ice-pwd");
    signed_answer(request, pwd, mapped)
}

/// A success answer to `request` keyed with `pwd`, whichever it is.
fn signed_answer(request: &[u8], pwd: &str, mapped: SocketAddr) -> Vec<u8> {
    let req = Message::parse(request).expect("a STUN request");
    let mut buf = [0u8; 256];
    binding_success_response(&req, mapped, &IntegrityKey::new(pwd.as_bytes()), &mut buf)
        .expect("encoding an answer")
        .to_vec()
}

/// Waits for the proxy's consent request at `socket` and answers it as the client's ICE
/// agent would; the request. Fails if media arrives first.
fn answer_consent(socket: &UdpSocket, pwd: &str, wait: Duration) -> Vec<u8> {
    let deadline = std::time::Instant::now() + wait;
    let mut buf = [0u8; 2048];
    while std::time::Instant::now() < deadline {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let d = &buf[..n];
        assert!(is_stun(d), "media arrived before consent: {d:?}");
        if Message::parse(d).is_ok_and(|m| m.is_binding_request()) {
            socket
                .send_to(&consent_answer(d, pwd, socket.local_addr().unwrap()), from)
                .unwrap();
            return d.to_vec();
        }
    }
    panic!("no consent request from the proxy within {wait:?}")
}

/// Datagrams other than STUN arriving at `socket` within `wait`; the proxy's consent
/// requests among them are answered.
fn media(socket: &UdpSocket, pwd: &str, wait: Duration) -> Vec<Vec<u8>> {
    let deadline = std::time::Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while std::time::Instant::now() < deadline {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let d = &buf[..n];
        if !is_stun(d) {
            out.push(d.to_vec());
        } else if Message::parse(d).is_ok_and(|m| m.is_binding_request()) {
            let answer = consent_answer(d, pwd, socket.local_addr().unwrap());
            socket.send_to(&answer, from).unwrap();
        }
    }
    out
}

/// An RTP-looking datagram.
fn rtp(fill: u8) -> Vec<u8> {
    let mut rtp = vec![0x80, 0x60];
    rtp.resize(1200, fill);
    rtp
}

/// The client at `socket` answers the proxy's consent request, then sends RTP; once the
/// origin has that RTP, the proxy has taken the answer (one socket, one task, in order),
/// and the answer itself did not reach the origin.
fn consent_then_rtp(socket: &UdpSocket, webrtc: SocketAddr, fake: &FakeOrigin) -> Vec<u8> {
    let request = answer_consent(socket, fake_origin::CLIENT_PWD, SECS(3));
    consent_taken(socket, webrtc, fake);
    request
}

/// Once RTP the client sends after its consent answer has reached the origin, the proxy
/// has taken that answer, and the answer itself was not relayed.
fn consent_taken(socket: &UdpSocket, webrtc: SocketAddr, fake: &FakeOrigin) {
    socket.send_to(&rtp(9), webrtc).unwrap();
    let (got, _) = fake
        .next(SECS(3))
        .expect("the client's RTP reached the origin");
    assert_eq!(
        got,
        rtp(9),
        "the consent answer is the proxy's own: it is not relayed"
    );
}

/// A UDP socket that shares its port with others (SO_REUSEPORT), on `port` or a free one.
fn shared_port_socket(port: u16) -> UdpSocket {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    s.set_reuse_port(true).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    let s: UdpSocket = s.into();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s
}

/// A forger that sends with `victim`'s address as its source: a socket on the victim's
/// port (SO_REUSEPORT) connected elsewhere, so the kernel delivers what is sent to that
/// address to the victim's socket only, as on a network where the source was spoofed.
fn forger_of(victim: &UdpSocket) -> UdpSocket {
    let forger = shared_port_socket(victim.local_addr().unwrap().port());
    forger.connect("127.0.0.1:9").unwrap();
    forger
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
fn bad_stun_and_forged_sources_are_refused_then_a_moved_client_is_followed() {
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
    let (ufrag, pwd, client_pwd) = (
        answer["ufrag"].as_str().unwrap().to_owned(),
        answer["pwd"].as_str().unwrap().to_owned(),
        answer["local_pwd"].as_str().unwrap().to_owned(),
    );
    let cli = client_ufrag(answer["location"].as_str().unwrap());
    assert_eq!(answer["local_ufrag"].as_str(), Some(cli.as_str()));
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

    // Whoever has the answer (the player itself, here this test) can make checks that pass
    // MESSAGE-INTEGRITY, and can put a victim's address on them as their source. The
    // victim gets the origin's answers to those checks and the proxy's consent requests,
    // one small STUN message each, and never the player's media.
    let victim = shared_port_socket(0);
    let forger = forger_of(&victim);
    let mut at_victim = Vec::new();
    for _ in 0..15 {
        forger
            .send_to(&check(&ufrag, &cli, &pwd, true), webrtc)
            .unwrap();
        at_victim.extend(drain(&victim, Duration::from_millis(200)));
    }
    assert!(
        drain(&forger, Duration::from_millis(100)).is_empty(),
        "the forger sees none of it"
    );
    let media_at_victim: Vec<&Vec<u8>> = at_victim.iter().filter(|d| !is_stun(d)).collect();
    assert!(
        media_at_victim.is_empty(),
        "{} datagrams of media reached the victim's address",
        media_at_victim.len()
    );
    let asked = at_victim
        .iter()
        .filter(|d| Message::parse(d).is_ok_and(|m| m.is_binding_request()))
        .count();
    assert!(
        (1..=10).contains(&asked),
        "the victim's address is asked for consent, a bounded number of times: {asked}"
    );
    let after_forgery = player.frames_at_least(after + 20, SECS(10));
    assert!(
        after_forgery >= after + 20,
        "the player goes on decoding: {after} then {after_forgery}"
    );
    assert!(
        !proxy.log_text().contains("WebRTC client address changed"),
        "{}",
        proxy.log_text()
    );

    // A client really at a new address answers the consent request (with its own ice-pwd,
    // as its ICE agent does): the origin's answers and then its media follow it there.
    let moved = udp_client();
    let mut stun_answers = 0;
    let mut media = 0;
    for _ in 0..10 {
        moved
            .send_to(&check(&ufrag, &cli, &pwd, true), webrtc)
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_millis(150);
        while std::time::Instant::now() < deadline {
            let mut buf = [0u8; 2048];
            let Ok((n, from)) = moved.recv_from(&mut buf) else {
                continue;
            };
            let d = &buf[..n];
            match d[0] {
                0..=3 if Message::parse(d).is_ok_and(|m| m.is_binding_request()) => {
                    let answer = consent_answer(d, &client_pwd, moved.local_addr().unwrap());
                    moved.send_to(&answer, from).unwrap();
                }
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
fn a_player_whose_nat_rebinds_is_followed_once_its_new_address_consents() {
    let origin = PyOrigin::start(true);
    // The player reaches the proxy through a fake NAT: the answer names the NAT's inside
    // address, which forwards to the proxy's UDP port.
    let nat = FakeNat::bind();
    let candidate = nat.inside.to_string();
    let proxy = Proxy::start(
        &[],
        &[("PROXY_RTC_CANDIDATE", candidate.as_str())],
        Some(&origin.origin_toml("aiortc")),
    );
    nat.start(proxy.addr("webrtc"));
    // The publisher goes to the origin directly (the NAT has room for one client).
    let mut publisher = client(
        "publish",
        &format!(
            "http://127.0.0.1:{}/rtc/v1/whip/?app=live&stream=nat",
            origin.api
        ),
        45,
        false,
    );
    assert_eq!(publisher.event("answer", SECS(20))["status"], 201);
    publisher.wait(SECS(15), "connected publisher", |v| {
        v["state"] == "connected"
    });
    let mut player = client(
        "play",
        &format!(
            "http://{}/rtc/v1/whep/?app=live&stream=nat",
            proxy.addr("http-api")
        ),
        40,
        false,
    );
    let answer = player.event("answer", SECS(20));
    assert_eq!(answer["status"], 201, "{answer}");
    assert!(
        answer["candidates"][0]
            .as_str()
            .unwrap()
            .ends_with(&format!("127.0.0.1 {} typ host", nat.inside.port())),
        "{answer}"
    );
    let before = player.frames_at_least(15, SECS(20));
    assert!(
        nat.media_at(0) > 0,
        "the media came through the first mapping"
    );
    let first = nat.outside();
    nat.rebind();
    // Everything the player sends now comes from a new address. Its next consent check
    // (aioice sends one every 4-6 s) is valid there; the proxy asks the new address, the
    // player's ICE agent answers, and the media follows.
    assert!(
        wait_for(SECS(20), || (nat.media_at(1) >= 30).then_some(())).is_some(),
        "no media through the new mapping {} (old {first}): {}\n{}",
        nat.outside(),
        proxy.log_text(),
        player.stderr()
    );
    let after = player.frames_at_least(before + 30, SECS(15));
    assert!(
        after >= before + 30,
        "decoding went on: {before} then {after}"
    );
    let log = proxy.log_text();
    assert!(
        log.contains("WebRTC client address changed")
            && log.contains(&format!("to={}", nat.outside())),
        "{log}"
    );
    assert_eq!(rtc_clients(&proxy, "__defaultVhost__/live/nat").len(), 1);
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
    let (named, secret) = location
        .split_once("&proxy_secret=")
        .unwrap_or_else(|| panic!("the Location carries the session's secret: {location}"));
    assert_eq!(named, "/rtc/v1/whip/?action=delete&token=tok1&app=live&stream=cam&secret=s3&session=fakeufrag:cli&proxy_ufrag=fakeufrag");
    assert!(
        secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit()),
        "128 random bits: {secret}"
    );
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
    // Until A answers the proxy's consent request, the origin's media does not go to A,
    // the session's first address though it is.
    fake.media
        .send_to(b"\x80\x60before-consent", relay)
        .unwrap();
    let early = drain(&a, Duration::from_millis(250));
    assert!(
        !early.is_empty() && early.iter().all(|d| is_stun(d)),
        "only the consent request: {early:?}"
    );
    let request = Message::parse(&early[0]).expect("the consent request");
    assert!(request.is_binding_request());
    assert_eq!(
        request.username_bytes(),
        Some(&b"cli1:fakeufrag"[..]),
        "USERNAME <client ufrag>:<server ufrag>"
    );
    request
        .verify_password(fake_origin::CLIENT_PWD.as_bytes())
        .expect("keyed with the client's ice-pwd from the offer");
    request.verify_fingerprint().unwrap();
    // An answer keyed with the origin's password (which anyone holding the SDP answer
    // knows) grants nothing, and is not relayed; the client checks again, and is asked again.
    let wrong = signed_answer(&early[0], fake_origin::PWD, a.local_addr().unwrap());
    a.send_to(&wrong, webrtc).unwrap();
    // (What was already on its way to A before the proxy read that answer.)
    assert!(drain(&a, Duration::from_millis(150))
        .iter()
        .all(|d| is_stun(d)));
    a.send_to(&first, webrtc).unwrap();
    let (got, _) = fake.next(SECS(3)).expect("the check again");
    assert_eq!(got, first, "the wrong answer did not reach the origin");
    fake.media.send_to(b"\x80\x60still-held", relay).unwrap();
    let queued = drain(&a, Duration::from_millis(250));
    assert!(queued.iter().all(|d| is_stun(d)), "still held: {queued:?}");
    let asked = queued
        .iter()
        .find(|d| Message::parse(d).is_ok_and(|m| m.is_binding_request()))
        .expect("asked again");
    // The client's own answer: from then on media flows.
    let answer = consent_answer(asked, fake_origin::CLIENT_PWD, a.local_addr().unwrap());
    a.send_to(&answer, webrtc).unwrap();
    consent_taken(&a, webrtc, &fake);
    let rtp = rtp(9);
    fake.media
        .send_to(b"\x80\x60origin-to-client", relay)
        .unwrap();
    assert_eq!(
        media(&a, fake_origin::CLIENT_PWD, Duration::from_millis(500)),
        vec![b"\x80\x60origin-to-client".to_vec()]
    );

    // Checks failing MESSAGE-INTEGRITY, or naming another client, or an unknown ufrag, from
    // another address: dropped, and the session stays with A.
    a.send_to(&rtp, webrtc).unwrap();
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
        media(&a, fake_origin::CLIENT_PWD, Duration::from_millis(500)),
        vec![b"\x80\x60still-a".to_vec()]
    );
    assert!(drain(&b, Duration::from_millis(100)).is_empty());

    // A valid, nominating check from B: the origin hears it, but the media stays with A
    // until B answers the proxy's consent request; then B is followed.
    b.send_to(
        &check(fake_origin::UFRAG, "cli1", fake_origin::PWD, true),
        webrtc,
    )
    .unwrap();
    let (_, via) = fake
        .next(SECS(3))
        .expect("B's valid check reached the origin");
    assert_eq!(via, relay, "the same origin-side socket");
    fake.media
        .send_to(b"\x80\x60a-until-b-answers", relay)
        .unwrap();
    assert_eq!(
        media(&a, fake_origin::CLIENT_PWD, Duration::from_millis(500)),
        vec![b"\x80\x60a-until-b-answers".to_vec()]
    );
    consent_then_rtp(&b, webrtc, &fake);
    fake.media.send_to(b"\x80\x60now-b", relay).unwrap();
    assert_eq!(
        media(&b, fake_origin::CLIENT_PWD, Duration::from_millis(500)),
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
fn forged_delete_and_patch_reach_nothing_and_only_a_confirmed_delete_forgets() {
    let fake = FakeOrigin::start();
    let proxy = Proxy::start(&[], &[], Some(&fake.origin_toml("fake")));
    let (api, webrtc) = (proxy.addr("http-api"), proxy.addr("webrtc"));
    let r = http(
        "POST",
        api,
        "/rtc/v1/whip/?app=live&stream=kick",
        &[],
        fake_origin::offer("cli1").as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let location = r.header("location").unwrap().to_owned();
    let (_, secret) = location.split_once("&proxy_secret=").unwrap();
    let recorded =
        "/rtc/v1/whip/?action=delete&token=tok1&app=live&stream=kick&session=fakeufrag:cli";
    // A live session: the client checks, consents, and gets the origin's media.
    let a = udp_client();
    a.send_to(
        &check(fake_origin::UFRAG, "cli1", fake_origin::PWD, true),
        webrtc,
    )
    .unwrap();
    let (_, relay) = fake.next(SECS(3)).expect("the check reached the origin");
    consent_then_rtp(&a, webrtc, &fake);
    let flows = |tag: &[u8]| {
        fake.media.send_to(tag, relay).unwrap();
        media(&a, fake_origin::CLIENT_PWD, Duration::from_millis(500)) == vec![tag.to_vec()]
    };
    assert!(flows(b"\x80\x60live"));
    let listed = || rtc_clients(&proxy, "__defaultVhost__/live/kick").len();
    assert_eq!(listed(), 1);

    let wrong_secret = location.replace(secret, &"0".repeat(32));
    let forged = [
        // The reported attack: an origin named, any path of its API (SRS's "kick client").
        ("DELETE", "/api/v1/clients/abc?proxy_origin=fake".to_owned()),
        // The ufrag, which every STUN check carries in clear, is not enough.
        (
            "DELETE",
            "/api/v1/clients/abc?proxy_ufrag=fakeufrag&proxy_origin=fake".to_owned(),
        ),
        ("DELETE", format!("{recorded}&proxy_ufrag=fakeufrag")),
        // SRS's own URL without the proxy's parameters.
        ("DELETE", recorded.to_owned()),
        ("DELETE", wrong_secret.clone()),
        ("PATCH", wrong_secret.clone()),
        ("DELETE", location.replace(secret, &secret[..31])),
        // The right secret with another session's ufrag.
        (
            "DELETE",
            format!("/rtc/v1/whip/?proxy_ufrag=nosuch&proxy_secret={secret}"),
        ),
    ];
    for (method, url) in &forged {
        let r = http(method, api, url, &[], b"");
        assert_eq!(r.status, 404, "{method} {url}: {}", r.text());
        assert_eq!(
            r.json()["error"],
            "unknown or expired WebRTC session: this URL names no session the proxy knows",
            "one answer for every refusal"
        );
    }
    let reached: Vec<String> = fake
        .requests()
        .iter()
        .filter(|s| s.method != "POST")
        .map(|s| format!("{} {}", s.method, s.target))
        .collect();
    assert!(
        reached.is_empty(),
        "nothing forged reached the origin: {reached:?}"
    );
    assert_eq!(listed(), 1, "the session stays");
    assert!(flows(b"\x80\x60still-live"), "its media still flows");

    // The session's secret, on whatever path: forwarded to the RECORDED resource only. The
    // origin refuses this DELETE: the proxy keeps relaying the session.
    let elsewhere = format!("/api/v1/clients/abc?proxy_ufrag=fakeufrag&proxy_secret={secret}");
    let r = http("DELETE", api, &elsewhere, &[("X-Fake-Status", "500")], b"");
    assert_eq!(r.status, 500, "the origin's refusal passes through");
    let deletes = || -> Vec<String> {
        fake.requests()
            .iter()
            .filter(|s| s.method == "DELETE")
            .map(|s| s.target.clone())
            .collect()
    };
    assert_eq!(deletes(), [recorded]);
    assert_eq!(listed(), 1, "not confirmed by the origin: not forgotten");
    assert!(flows(b"\x80\x60after-a-refused-delete"));

    // Confirmed: forgotten, and relayed no more.
    let r = http("DELETE", api, &location, &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(deletes(), [recorded, recorded]);
    assert!(
        wait_for(SECS(5), || (listed() == 0).then_some(())).is_some(),
        "the session ended with the confirmed DELETE: {}",
        streams(&proxy)
    );
    let r = http("DELETE", api, &location, &[], b"");
    assert_eq!(r.status, 404, "a forgotten session: {}", r.text());
    assert_eq!(deletes().len(), 2, "and nothing forwarded");
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
    // (The first session's unanswered consent requests, still queued at A.)
    drain(&a, Duration::from_millis(100));
    // The client comes back: the session is found again in the balancer, and its
    // address is asked for consent again (the origin may still have the DTLS association:
    // a forged first check must not get the media).
    a.send_to(
        &check(fake_origin::UFRAG, "cli1", fake_origin::PWD, true),
        webrtc,
    )
    .unwrap();
    let (_, relay) = fake
        .next(SECS(3))
        .expect("the returning client's check reached the origin");
    consent_then_rtp(&a, webrtc, &fake);
    fake.media.send_to(b"\x80\x60back", relay).unwrap();
    assert_eq!(
        media(&a, fake_origin::CLIENT_PWD, Duration::from_millis(500)),
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
    // Proxy two asks for consent with the client's ice-pwd it read from the record.
    consent_then_rtp(&a, two.addr("webrtc"), &fake);
    fake.media.send_to(b"\x80\x60via-two", relay).unwrap();
    assert_eq!(
        media(&a, fake_origin::CLIENT_PWD, Duration::from_millis(500)),
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
