//! Per-packet costs of the WebRTC UDP path (`stun-ufrag`): first-byte demultiplexing, STUN
//! parse with USERNAME extraction, parse with MESSAGE-INTEGRITY verification, and the
//! signalling-time SDP candidate rewrite.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use stun_ufrag::sdp::{self, CandidateAddr, TcpCandidates};
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

criterion_group!(benches, stun, demux, sdp_rewrite);
criterion_main!(benches);
