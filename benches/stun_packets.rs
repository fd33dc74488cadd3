//! Per-packet costs of the WebRTC UDP path (`stun-ufrag`): first-byte demultiplexing, STUN
//! parse with USERNAME extraction, parse with MESSAGE-INTEGRITY verification, the router's
//! hot path (a bound client's media to its origin, the origin's media to its client), and
//! the signalling-time SDP candidate rewrite.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use stun_ufrag::router::{Action, Config, Known, Router};
use stun_ufrag::sdp::{self, CandidateAddr, TcpCandidates};
use stun_ufrag::stun::binding_success_response;
use stun_ufrag::{classify, BindingRequest, IceRole, IntegrityKey, Message, TransactionId};

const SERVER_UFRAG: &str = "2m8u6b05";
const SERVER_PWD: &str = "c5i0u0e2o38k2t4i9q0x8m5k0g9d9fyx";

/// A Chrome-style connectivity check (USERNAME, GOOG-NETWORK-INFO, ICE-CONTROLLING,
/// USE-CANDIDATE, PRIORITY, MESSAGE-INTEGRITY, FINGERPRINT), 104 bytes.
fn chrome_check() -> Bytes {
    let mut buf = [0u8; 256];
    let bytes = BindingRequest {
        transaction_id: TransactionId(*b"q7Kx2mP9vB4n"),
        server_ufrag: SERVER_UFRAG,
        client_ufrag: "EsAw",
        priority: 1_853_824_767,
        role: IceRole::Controlling(0x5c3a_9e1f_0b7d_2468),
        use_candidate: true,
        network_info: Some((1, 10)),
    }
    .encode(&IntegrityKey::new(SERVER_PWD.as_bytes()), &mut buf)
    .expect("fits");
    Bytes::copy_from_slice(bytes)
}

fn srs_answer() -> String {
    let mut sdp = String::from(
        "v=0\r\no=SRS/6.0.145(Bee) 107783412304512 2 IN IP4 0.0.0.0\r\ns=SRSPublishSession\r\n\
         t=0 0\r\na=ice-lite\r\na=group:BUNDLE 0 1\r\na=msid-semantic: WMS live/livestream\r\n",
    );
    for (mid, media, pt, codec) in [
        (0, "audio", 111, "opus/48000/2"),
        (1, "video", 106, "H264/90000"),
    ] {
        sdp.push_str(&format!(
            "m={media} 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:{SERVER_UFRAG}\r\n\
             a=ice-pwd:{SERVER_PWD}\r\n\
             a=fingerprint:sha-256 7D:3C:1A:5E:0F:7B:54:E0:86:D3:6C:25:59:A0:9D:3B:66:60:0A:13:2D:28:7F:A8:F1:42:01:34:2E:8F:45:C0\r\n\
             a=setup:passive\r\na=mid:{mid}\r\n\
             a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
             a=recvonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:{pt} {codec}\r\n\
             a=rtcp-fb:{pt} transport-cc\r\na=rtcp-fb:{pt} nack\r\na=rtcp-fb:{pt} nack pli\r\n\
             a=candidate:0 1 udp 2130706431 192.168.3.6 8000 typ host generation 0\r\n\
             a=candidate:1 1 udp 2130706431 172.17.0.2 8000 typ host generation 0\r\n"
        ));
    }
    sdp
}

fn stun(c: &mut Criterion) {
    let check = chrome_check();
    let key = IntegrityKey::new(SERVER_PWD.as_bytes());

    let mut g = c.benchmark_group("stun");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_username", |b| {
        b.iter(|| {
            let msg = Message::parse(black_box(&check)).expect("valid");
            let user = msg.ice_username().expect("username");
            black_box(user.server.len())
        })
    });
    g.bench_function("parse_verify_integrity", |b| {
        b.iter(|| {
            let msg = Message::parse(black_box(&check)).expect("valid");
            let user = msg.ice_username().expect("username");
            msg.verify_integrity(black_box(&key)).expect("authentic");
            black_box(user.server.len())
        })
    });
    g.bench_function("parse_verify_password", |b| {
        // Without a stored key the pads are re-derived per packet: the cost a session that
        // keeps only the password string would pay.
        b.iter(|| {
            let msg = Message::parse(black_box(&check)).expect("valid");
            msg.verify_password(black_box(SERVER_PWD.as_bytes()))
                .expect("authentic");
        })
    });
    g.bench_function("parse_verify_integrity_fingerprint", |b| {
        b.iter(|| {
            let msg = Message::parse(black_box(&check)).expect("valid");
            msg.verify_integrity(black_box(&key)).expect("authentic");
            msg.verify_fingerprint().expect("fingerprint");
        })
    });
    g.finish();
}

fn demux(c: &mut Criterion) {
    // A realistic mix on a media port: mostly SRTP, some SRTCP, DTLS, STUN, junk.
    let packets: Vec<Bytes> = [0x90u8, 0x80, 0x80, 0x90, 0x81, 0x16, 0x17, 0x00, 0x01, 0xff]
        .iter()
        .map(|&b| Bytes::from(vec![b; 64]))
        .collect();
    let mut g = c.benchmark_group("demux");
    g.throughput(Throughput::Elements(packets.len() as u64));
    g.bench_function("classify_mix_of_10", |b| {
        b.iter(|| {
            for p in &packets {
                black_box(classify(black_box(p)));
            }
        })
    });
    g.finish();
}

/// A router with `sessions` sessions, each opened by a check from its own address and
/// consented; the addresses, in session order.
fn live_router(sessions: u16) -> (Router<u16>, Vec<SocketAddr>) {
    let now = Instant::now();
    let config = Config {
        idle_timeout: std::time::Duration::from_secs(30),
        known_ttl: std::time::Duration::from_secs(120),
        renew_every: std::time::Duration::from_secs(40),
        max_sessions: 100_000,
    };
    let mut n = 0u8;
    let random = Box::new(move |buf: &mut [u8]| {
        n = n.wrapping_add(1);
        buf.fill(n);
    });
    let mut router = Router::new(config, random, now);
    let key = IntegrityKey::new(SERVER_PWD.as_bytes());
    let client_key = IntegrityKey::new(b"client-password-0123456789");
    let mut addrs = Vec::new();
    for i in 0..sessions {
        let ufrag = format!("srv{i}");
        router.prime(
            now,
            Known {
                server_ufrag: ufrag.clone(),
                server_pwd: SERVER_PWD.into(),
                client_ufrag: "EsAw".into(),
                client_pwd: "client-password-0123456789".into(),
                data: i,
            },
        );
        let from = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 40_000));
        let mut buf = [0u8; 256];
        let check = BindingRequest {
            transaction_id: TransactionId([1; 12]),
            server_ufrag: &ufrag,
            client_ufrag: "EsAw",
            priority: 1,
            role: IceRole::Controlling(1),
            use_candidate: true,
            network_info: None,
        }
        .encode(&key, &mut buf)
        .expect("fits");
        let Action::Open(_) = router.handle_datagram(now, from, check) else {
            panic!("opens");
        };
        while let Some(t) = router.poll_transmit() {
            let request = Message::parse(&t.datagram).expect("request");
            let mut out = [0u8; 256];
            let answer =
                binding_success_response(&request, from, &client_key, &mut out).expect("fits");
            router.handle_datagram(now, from, answer);
        }
        while router.poll_event().is_some() {}
        addrs.push(from);
    }
    (router, addrs)
}

fn router(c: &mut Criterion) {
    let (mut router, addrs) = live_router(1000);
    let mut rtp = vec![0x55u8; 1200];
    rtp[0] = 0x90;
    rtp[1] = 0x60;
    let now = Instant::now();
    let from = addrs[500];
    let Action::ToOrigin(id) = router.handle_datagram(now, from, &rtp) else {
        panic!("bound");
    };
    let downlink = router.downlink(id).expect("open").clone();
    let mut g = c.benchmark_group("router");
    g.throughput(Throughput::Elements(1));
    g.bench_function("media_to_origin_1000_sessions", |b| {
        b.iter(|| {
            let action = router.handle_datagram(now, black_box(from), black_box(&rtp));
            while router.poll_event().is_some() {}
            black_box(action)
        })
    });
    g.bench_function("media_to_client", |b| {
        b.iter(|| black_box(downlink.route(black_box(&rtp))))
    });
    g.finish();
}

fn sdp_rewrite(c: &mut Criterion) {
    let answer = srs_answer();
    let public = CandidateAddr::new([203, 0, 113, 10].into(), 18000);
    let mut g = c.benchmark_group("sdp");
    g.throughput(Throughput::Bytes(answer.len() as u64));
    g.bench_function("rewrite_candidates_srs_answer", |b| {
        b.iter(|| sdp::rewrite_candidates(black_box(&answer), &public, TcpCandidates::Drop))
    });
    g.bench_function("ice_credentials_srs_answer", |b| {
        b.iter(|| sdp::ice_credentials(black_box(&answer)).map(|c| c.ufrag.len()))
    });
    g.finish();
}

criterion_group!(benches, stun, demux, router, sdp_rewrite);
criterion_main!(benches);
