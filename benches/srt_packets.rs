//! Costs of the SRT path (`srt-streamid`): per relayed packet (header view, socket id
//! rewrite), per handshake (parse, SID, the listener's answers, the origin replay), and
//! per SYN cookie (what a flood of inductions costs). Inputs are libsrt packets captured
//! from ffmpeg (see crates/srt-streamid/tests/data/README.md).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use srt_streamid::{
    classify, dest_socket_id, set_dest_socket_id, Accepted, Action, Handshake, Limits, Listener,
    Outcome, Packet, PacketKind, Relay, Router, Session, SessionIds, StreamId, SynCookies,
};

const DATA: &[u8] = include_bytes!("../crates/srt-streamid/tests/data/session_c2o_data_0.bin");
const ACK: &[u8] = include_bytes!("../crates/srt-streamid/tests/data/session_o2c_ack_0.bin");
const INDUCTION: &[u8] = include_bytes!("../crates/srt-streamid/tests/data/ffmpeg_induction.bin");
const KM_CONCLUSION: &[u8] =
    include_bytes!("../crates/srt-streamid/tests/data/ffmpeg_passphrase_conclusion.bin");
const ORIGIN_INDUCTION: &[u8] =
    include_bytes!("../crates/srt-streamid/tests/data/libsrt_listener_induction_response.bin");
const ORIGIN_CONCLUSION: &[u8] =
    include_bytes!("../crates/srt-streamid/tests/data/libsrt_listener_conclusion_response.bin");

const NOW: Duration = Duration::from_secs(1_700_000_000);

fn client() -> SocketAddr {
    "192.0.2.7:40000".parse().expect("address")
}

fn per_packet(c: &mut Criterion) {
    let mut g = c.benchmark_group("srt/packet");
    g.throughput(Throughput::Elements(1));
    g.bench_function("data header view (kind, dest id)", |b| {
        b.iter(|| {
            let p = Packet::parse(black_box(DATA)).expect("packet");
            black_box((p.kind(), p.dest_socket_id()))
        })
    });
    g.bench_function("data header decode (all fields)", |b| {
        b.iter(|| {
            black_box(
                Packet::parse(black_box(DATA))
                    .expect("packet")
                    .data_header(),
            )
        })
    });
    let relay = Relay {
        client_socket_id: 0x1111,
        origin_socket_id: 0x2222,
        ids: SessionIds {
            toward_client: 0x3333,
            toward_origin: 0x4444,
        },
    };
    let mut buf = DATA.to_vec();
    g.bench_function("relay: classify + dest id lookup + rewrite", |b| {
        b.iter(|| {
            let pkt = black_box(buf.as_mut_slice());
            let kind = classify(pkt);
            let id = dest_socket_id(pkt);
            if kind != Some(PacketKind::Handshake) {
                relay.client_to_origin(pkt).expect("header");
            }
            black_box(id)
        })
    });
    g.bench_function("relay: Relay::from_client (classify + rewrite)", |b| {
        b.iter(|| black_box(relay.from_client(black_box(buf.as_mut_slice()))))
    });
    g.bench_function(
        "relay: Relay::from_origin (id check + classify + rewrite)",
        |b| {
            let mut ack = ACK.to_vec();
            b.iter(|| {
                let pkt = black_box(ack.as_mut_slice());
                set_dest_socket_id(pkt, 0x4444).expect("header");
                black_box(relay.from_origin(pkt))
            })
        },
    );
    g.bench_function("control (ACK) header decode", |b| {
        b.iter(|| {
            black_box(
                Packet::parse(black_box(ACK))
                    .expect("packet")
                    .control_header(),
            )
        })
    });
    g.finish();
}

fn per_handshake(c: &mut Criterion) {
    let mut g = c.benchmark_group("srt/handshake");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse conclusion (HSREQ+SID+KMREQ)", |b| {
        b.iter(|| black_box(Handshake::parse(black_box(KM_CONCLUSION)).expect("handshake")))
    });
    g.bench_function("parse conclusion + SID + streamid grammar", |b| {
        b.iter(|| {
            let hs = Handshake::parse(black_box(KM_CONCLUSION)).expect("handshake");
            let sid = hs.streamid().expect("sid").expect("present");
            black_box(StreamId::parse(&sid).expect("streamid"))
        })
    });
    g.bench_function("re-encode conclusion", |b| {
        let hs = Handshake::parse(KM_CONCLUSION).expect("handshake");
        b.iter(|| black_box(hs.to_vec()))
    });

    let listener = Listener::new(SynCookies::new([42; 32]), 0x1000_0001);
    let induction = Handshake::parse(INDUCTION).expect("induction");
    g.bench_function("listener: answer induction", |b| {
        b.iter(|| {
            black_box(
                listener
                    .answer_induction(black_box(&induction), client(), NOW)
                    .expect("answer"),
            )
        })
    });
    let mut conclusion = KM_CONCLUSION.to_vec();
    let cookie = SynCookies::new([42; 32]).generate(client(), NOW);
    conclusion[44..48].copy_from_slice(&cookie.to_be_bytes());
    g.bench_function("listener: accept conclusion (cookie + SID)", |b| {
        b.iter(|| {
            let hs = Handshake::parse(black_box(&conclusion)).expect("handshake");
            black_box(
                listener
                    .accept_conclusion(hs, client(), NOW)
                    .expect("accepted"),
            )
        })
    });

    // The libsrt origin answers were addressed to ffmpeg's socket id, so use it toward the origin.
    let accepted = Accepted {
        handshake: Handshake::parse(KM_CONCLUSION).expect("handshake"),
        streamid: None,
    };
    let ids = SessionIds {
        toward_client: 0x2000_0002,
        toward_origin: induction.socket_id,
    };
    g.bench_function("session: replay to origin and translate answer", |b| {
        b.iter(|| {
            let mut s = Session::new(&accepted, client(), ids, NOW);
            s.dial(
                "198.51.100.9:10080".parse().expect("addr"),
                NOW,
                NOW + Duration::from_secs(5),
            );
            let first = s.poll_transmit();
            s.handle_datagram(NOW, ORIGIN_INDUCTION)
                .expect("induction answer");
            let second = s.poll_transmit();
            s.handle_datagram(NOW, ORIGIN_CONCLUSION)
                .expect("conclusion answer");
            assert!(matches!(s.outcome(), Some(Outcome::Connected(_))));
            black_box((first, second, s.reply().map(<[u8]>::len)))
        })
    });
    g.finish();
}

/// The router's per-packet path: one datagram of a live session, routed by its
/// destination id among `sessions` others and readdressed.
fn per_routed_packet(c: &mut Criterion) {
    let mut g = c.benchmark_group("srt/router");
    g.throughput(Throughput::Elements(1));
    for sessions in [1usize, 1_000] {
        let mut router: Router<u32> = Router::new(
            [42; 32],
            Limits {
                max_sessions: sessions + 1,
                max_pending: sessions + 1,
                answer_ttl: Duration::from_secs(10),
            },
        );
        let mut last = None;
        for i in 0..sessions {
            let peer: SocketAddr = ([192, 0, 2, 7], 1024 + i as u16).into();
            // The client's conclusion, with the cookie the router gives this peer.
            let mut induction = INDUCTION.to_vec();
            let _ = router.handle_datagram(NOW, peer, &mut induction);
            let answer = router.poll_transmit().expect("induction answer");
            let cookie = Handshake::parse(&answer.payload).expect("hs").cookie;
            let mut conclusion = KM_CONCLUSION.to_vec();
            conclusion[44..48].copy_from_slice(&cookie.to_be_bytes());
            let Action::Open(opening) = router.handle_datagram(NOW, peer, &mut conclusion) else {
                panic!("not opened")
            };
            let mut s = opening.session;
            let id = s.ids().toward_client;
            s.dial(
                "198.51.100.9:10080".parse().expect("addr"),
                NOW,
                NOW + Duration::from_secs(5),
            );
            for answer in [ORIGIN_INDUCTION, ORIGIN_CONCLUSION] {
                let mut answer = answer.to_vec();
                set_dest_socket_id(&mut answer, id).expect("header");
                s.handle_datagram(NOW, &answer).expect("origin answer");
            }
            router.answered(s, Some(i as u32), NOW);
            while router.poll_transmit().is_some() {}
            last = Some((peer, id));
        }
        let (peer, id) = last.expect("a session");
        let mut data = DATA.to_vec();
        g.bench_function(
            format!("forward a data packet ({sessions} sessions)"),
            |b| {
                b.iter(|| {
                    let pkt = black_box(data.as_mut_slice());
                    set_dest_socket_id(pkt, id).expect("header");
                    match router.handle_datagram(NOW, peer, pkt) {
                        Action::Forward { to, last } => black_box((*to, last)),
                        _ => panic!("not forwarded"),
                    };
                })
            },
        );
    }
    g.finish();
}

fn per_cookie(c: &mut Criterion) {
    let mut g = c.benchmark_group("srt/cookie");
    g.throughput(Throughput::Elements(1));
    let cookies = SynCookies::new([42; 32]);
    let good = cookies.generate(client(), NOW);
    let previous = cookies.generate(client(), NOW - Duration::from_secs(60));
    g.bench_function("generate (HMAC-SHA256)", |b| {
        b.iter(|| black_box(cookies.generate(black_box(client()), NOW)))
    });
    g.bench_function("verify, current bucket", |b| {
        b.iter(|| black_box(cookies.verify(client(), black_box(good), NOW)))
    });
    g.bench_function("verify, previous bucket", |b| {
        b.iter(|| black_box(cookies.verify(client(), black_box(previous), NOW)))
    });
    g.bench_function("verify, forged (worst case: two MACs)", |b| {
        b.iter(|| black_box(cookies.verify(client(), black_box(good ^ 1), NOW)))
    });
    g.finish();
}

criterion_group!(
    benches,
    per_packet,
    per_handshake,
    per_routed_packet,
    per_cookie
);
criterion_main!(benches);
