//! Cross-checks against real SRT: libsrt packets captured from ffmpeg and srt-live-transmit
//! (tests/data, see its README), the `srt-protocol` crate as an independent codec, ffmpeg
//! and srt-live-transmit run live on loopback, and the fuzz corpus replayed.

#[path = "../fuzz/drive.rs"]
mod drive;

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use srt_protocol::options::{KeySize, PacketCount, PacketSize, SrtVersion};
use srt_protocol::packet as oracle;
use srt_streamid::extension::ExtensionType;
use srt_streamid::*;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

// ---------------------------------------------------------------- captured libsrt packets

#[test]
fn every_captured_packet_parses_and_handshakes_reencode_exactly() {
    let captured: Vec<_> = files(&crate_dir().join("tests/data"))
        .into_iter()
        .filter(|(n, _)| n.ends_with(".bin"))
        .collect();
    assert!(captured.len() >= 20, "tests/data holds the captures");
    for (name, bytes) in captured {
        let p = Packet::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        if p.kind() == PacketKind::Handshake {
            let hs = Handshake::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(hs.to_vec(), bytes, "{name}");
        }
        // The oracle agrees on what every captured packet is and where it goes.
        let o = oracle::Packet::parse(&mut &bytes[..], false)
            .unwrap_or_else(|e| panic!("oracle on {name}: {e:?}"));
        assert_eq!(o.dest_sockid().0, p.dest_socket_id(), "{name}");
        assert_eq!(o.timestamp().as_micros(), p.timestamp(), "{name}");
        assert_eq!(
            o.is_handshake(),
            p.kind() == PacketKind::Handshake,
            "{name}"
        );
    }
}

#[test]
fn session_capture_streamid_with_host_and_custom_key() {
    let bytes = fs::read(crate_dir().join("tests/data/session_c2o_handshake_1.bin")).unwrap();
    let hs = Handshake::parse(&bytes).unwrap();
    let sid = StreamId::parse(&hs.streamid().unwrap().unwrap()).unwrap();
    assert_eq!(sid.host.as_deref(), Some("example.com"));
    assert_eq!(sid.resource.as_deref(), Some("live/livestream"));
    assert_eq!(sid.mode, Mode::Publish);
    assert_eq!(sid.custom("secret"), Some("abc"));
    let hsreq = hs
        .extensions
        .find(ExtensionType::HsReq)
        .unwrap()
        .srt_hs()
        .unwrap()
        .unwrap();
    assert_eq!(hsreq.recv_latency_ms, 200, "ffmpeg's latency=200000 (us)");
}

// ---------------------------------------------------------------- srt-protocol as oracle

fn oracle_bytes(p: oracle::Packet) -> Vec<u8> {
    let mut out = Vec::new();
    p.serialize(&mut out);
    out
}

fn oracle_handshake(dest: u32, info: oracle::HandshakeControlInfo) -> Vec<u8> {
    oracle_bytes(oracle::Packet::Control(oracle::ControlPacket {
        timestamp: oracle::TimeStamp::from_micros(4242),
        dest_sockid: oracle::SocketId(dest),
        control_type: oracle::ControlTypes::Handshake(info),
    }))
}

fn oracle_km() -> oracle::KeyingMaterialMessage {
    oracle::KeyingMaterialMessage {
        pt: oracle::PacketType::KeyingMaterial,
        key_flags: oracle::KeyFlags::EVEN,
        keki: 0,
        cipher: oracle::CipherType::Ctr,
        auth: oracle::Auth::None,
        salt: vec![7; 16],
        wrapped_keys: vec![9; 24],
    }
}

fn oracle_info(
    shake_type: oracle::ShakeType,
    info: oracle::HandshakeVsInfo,
) -> oracle::HandshakeControlInfo {
    oracle::HandshakeControlInfo {
        init_seq_num: oracle::SeqNumber::new_truncate(0x1234_5678),
        max_packet_size: PacketSize(1500),
        max_flow_size: PacketCount(8192),
        shake_type,
        socket_id: oracle::SocketId(0xABCD_0001),
        syn_cookie: 0x1122_3344,
        peer_addr: [10, 1, 2, 3].into(),
        info,
    }
}

#[test]
fn oracle_handshakes_parse_with_ours() {
    let v5 = oracle::HandshakeVsInfo::V5(oracle::HsV5Info {
        key_size: KeySize::AES128,
        ext_hs: Some(oracle::SrtControlPacket::HandshakeRequest(
            oracle::SrtHandshake {
                version: SrtVersion::new(1, 5, 1),
                flags: oracle::SrtShakeFlags::TSBPDSND
                    | oracle::SrtShakeFlags::TSBPDRCV
                    | oracle::SrtShakeFlags::HAICRYPT,
                send_latency: Duration::from_millis(120),
                recv_latency: Duration::from_millis(80),
            },
        )),
        ext_km: Some(oracle::SrtControlPacket::KeyRefreshRequest(oracle_km())),
        ext_group: None,
        sid: Some("#!::r=live/a,m=publish".into()),
    });
    let bytes = oracle_handshake(0, oracle_info(oracle::ShakeType::Conclusion, v5));
    let hs = Handshake::parse(&bytes).unwrap();
    assert_eq!(hs.to_vec(), bytes);
    assert_eq!(
        (hs.version, hs.encryption, hs.kind),
        (5, 2, HandshakeType::Conclusion)
    );
    assert_eq!(
        hs.extension_field,
        handshake::ext_flags::HSREQ | handshake::ext_flags::KMREQ | handshake::ext_flags::CONFIG
    );
    assert_eq!(
        (hs.initial_seq, hs.mtu, hs.flow_window),
        (0x1234_5678, 1500, 8192)
    );
    assert_eq!(
        (hs.socket_id, hs.cookie, hs.header.timestamp),
        (0xABCD_0001, 0x1122_3344, 4242)
    );
    assert_eq!(hs.peer_ip.to_ip(), std::net::IpAddr::from([10, 1, 2, 3]));
    assert_eq!(
        hs.streamid().unwrap().as_deref(),
        Some("#!::r=live/a,m=publish")
    );
    let srt = hs
        .extensions
        .find(ExtensionType::HsReq)
        .unwrap()
        .srt_hs()
        .unwrap()
        .unwrap();
    assert_eq!((srt.srt_version, srt.flags), (0x010501, 0b111));
    // srt-protocol names the upper half "send_latency"; libsrt (and we) call it the
    // receiver latency (SRT_HS_LATENCY_RCV = Bits<31,16>). Same bits either way.
    assert_eq!((srt.recv_latency_ms, srt.send_latency_ms), (120, 80));
    let km = hs
        .extensions
        .find(ExtensionType::KmReq)
        .unwrap()
        .key_material()
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (km.version, km.packet_type, km.sign, km.key_flags),
        (1, 2, 0x2029, 1)
    );
    // 24 wrapped bytes: a 16-byte key plus the 8 that AES key wrap adds.
    assert_eq!((km.cipher, km.salt_len, km.key_len), (2, 16, 16));

    let induction = oracle_handshake(
        0,
        oracle_info(
            oracle::ShakeType::Induction,
            oracle::HandshakeVsInfo::V4(oracle::SocketType::Datagram),
        ),
    );
    let hs = Handshake::parse(&induction).unwrap();
    assert_eq!(
        (hs.version, hs.extension_field, hs.kind),
        (4, handshake::UDT_DGRAM, HandshakeType::Induction)
    );
    assert_eq!(hs.to_vec(), induction);

    for (oracle_reason, ours, wire) in [
        (
            oracle::RejectReason::Server(oracle::ServerRejectReason::Forbidden),
            RejectReason::Forbidden,
            2403,
        ),
        (
            oracle::RejectReason::Server(oracle::ServerRejectReason::Down),
            RejectReason::Unavailable,
            2503,
        ),
        (
            oracle::RejectReason::Core(oracle::CoreRejectReason::BadSecret),
            RejectReason::BadSecret,
            1010,
        ),
        (
            oracle::RejectReason::User(3042),
            RejectReason::Other(2042),
            3042,
        ),
    ] {
        let info = oracle_info(
            oracle::ShakeType::Rejection(oracle_reason),
            oracle::HandshakeVsInfo::V5(oracle::HsV5Info::default()),
        );
        let bytes = oracle_handshake(7, info);
        let hs = Handshake::parse(&bytes).unwrap();
        assert_eq!(hs.kind, HandshakeType::Rejection(ours));
        assert_eq!(ours.wire(), wire);
    }
}

#[test]
fn our_handshakes_parse_with_the_oracle() {
    let client: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let now = Duration::from_secs(1_700_000_000);
    let listener = Listener::new(SynCookies::new([3; 32]), 0x0101_0101);
    let induction =
        fs::read(crate_dir().join("tests/data/ffmpeg_passphrase_induction.bin")).unwrap();
    let answer = listener
        .answer_induction(&Handshake::parse(&induction).unwrap(), client, now)
        .unwrap();
    let oracle::Packet::Control(c) = oracle::Packet::parse(&mut &answer[..], false).unwrap() else {
        panic!("control")
    };
    let info = c.handshake().unwrap();
    assert_eq!(info.shake_type, oracle::ShakeType::Induction);
    assert_eq!(info.info.version(), 5);
    assert_eq!(info.socket_id.0, 0x0101_0101);
    assert_eq!(
        info.syn_cookie as u32,
        SynCookies::new([3; 32]).generate(client, now)
    );
    assert_eq!(
        info.peer_addr,
        client.ip(),
        "same peer-address byte order as srt-protocol"
    );

    // The conclusion we replay to an origin (client's KMREQ included).
    let conclusion =
        fs::read(crate_dir().join("tests/data/ffmpeg_passphrase_conclusion.bin")).unwrap();
    let accepted = Accepted {
        handshake: Handshake::parse(&conclusion).unwrap(),
        streamid: None,
    };
    let origin: SocketAddr = "127.0.0.2:10080".parse().unwrap();
    let ids = SessionIds {
        toward_client: 5,
        toward_origin: 6,
    };
    let mut session = Session::new(&accepted, client, ids, now);
    session.dial(origin, now, now + Duration::from_secs(3));
    let ours = session.poll_transmit().unwrap();
    let oracle::Packet::Control(c) = oracle::Packet::parse(&mut &ours[..], false).unwrap() else {
        panic!("control")
    };
    assert_eq!(c.handshake().unwrap().socket_id.0, 6);
    assert_eq!(c.handshake().unwrap().peer_addr, origin.ip());
    let origin_answer = Handshake {
        header: ControlHeader {
            dest_socket_id: 6,
            ..ControlHeader::new(0)
        },
        version: 5,
        extension_field: handshake::SRT_MAGIC,
        cookie: 0x5555,
        ..Handshake::parse(&ours).unwrap()
    };
    session
        .handle_datagram(now, &origin_answer.to_vec())
        .unwrap();
    let replayed = session.poll_transmit().unwrap();
    let oracle::Packet::Control(c) = oracle::Packet::parse(&mut &replayed[..], false).unwrap()
    else {
        panic!("control")
    };
    let info = c.handshake().unwrap();
    assert_eq!(
        (info.shake_type, info.syn_cookie, info.socket_id.0),
        (oracle::ShakeType::Conclusion, 0x5555, 6)
    );
    let oracle::HandshakeVsInfo::V5(v5) = &info.info else {
        panic!("v5")
    };
    assert_eq!(v5.sid.as_deref(), Some("#!::r=live/livestream,m=publish"));
    assert!(v5.ext_hs.is_some() && v5.ext_km.is_some());

    let rejection = listener.reject(&accepted.handshake, client, RejectReason::Forbidden, now);
    let oracle::Packet::Control(c) = oracle::Packet::parse(&mut &rejection[..], false).unwrap()
    else {
        panic!("control")
    };
    assert_eq!(
        c.handshake().unwrap().shake_type,
        oracle::ShakeType::Rejection(oracle::RejectReason::Server(
            oracle::ServerRejectReason::Forbidden
        ))
    );
}

#[test]
fn oracle_data_and_control_packets_classify() {
    for (loc, pos) in [
        (oracle::PacketLocation::ONLY, PacketPosition::Only),
        (oracle::PacketLocation::FIRST, PacketPosition::First),
        (oracle::PacketLocation::LAST, PacketPosition::Last),
        (oracle::PacketLocation::MIDDLE, PacketPosition::Middle),
    ] {
        let bytes = oracle_bytes(oracle::Packet::Data(oracle::DataPacket {
            seq_number: oracle::SeqNumber::new_truncate(0x7FFF_FFFE),
            message_loc: loc,
            in_order_delivery: true,
            encryption: oracle::DataEncryption::Odd,
            retransmitted: true,
            message_number: oracle::MsgNumber::new_truncate(0x3FF_FFFF),
            timestamp: oracle::TimeStamp::from_micros(99),
            dest_sockid: oracle::SocketId(0xFEED),
            payload: Bytes::from_static(&[0x47; 188]),
        }));
        let p = Packet::parse(&bytes).unwrap();
        let d = p.data_header().unwrap();
        assert_eq!(
            (d.seq_number, d.msg_number, d.position),
            (0x7FFF_FFFE, 0x3FF_FFFF, pos)
        );
        assert!(d.in_order && d.retransmitted);
        assert_eq!(
            (d.key, d.timestamp, d.dest_socket_id),
            (KeyFlags::Odd, 99, 0xFEED)
        );
        assert_eq!(p.payload(), &[0x47; 188][..]);
        // And back: our header in front of the payload parses with the oracle.
        let mut ours = d.encode().to_vec();
        ours.extend_from_slice(p.payload());
        assert_eq!(ours, bytes);
    }

    let control = |t: oracle::ControlTypes| {
        oracle_bytes(oracle::Packet::Control(oracle::ControlPacket {
            timestamp: oracle::TimeStamp::from_micros(1),
            dest_sockid: oracle::SocketId(0xD00D),
            control_type: t,
        }))
    };
    let ack = oracle::Acknowledgement::Lite(oracle::SeqNumber::new_truncate(5));
    let nak =
        oracle::CompressedLossList::try_from_iter([oracle::SeqNumber::new_truncate(3)].into_iter())
            .unwrap();
    for (t, kind) in [
        (oracle::ControlTypes::KeepAlive, PacketKind::KeepAlive),
        (oracle::ControlTypes::Ack(ack), PacketKind::Ack),
        (oracle::ControlTypes::Nak(nak), PacketKind::Nak),
        (oracle::ControlTypes::Shutdown, PacketKind::Shutdown),
        (
            oracle::ControlTypes::Ack2(oracle::FullAckSeqNumber::new(1).unwrap()),
            PacketKind::AckAck,
        ),
        (
            oracle::ControlTypes::PeerError(1),
            PacketKind::Other(packet::control_type::PEER_ERROR),
        ),
        (
            oracle::ControlTypes::Srt(oracle::SrtControlPacket::KeyRefreshRequest(oracle_km())),
            PacketKind::Other(packet::control_type::USER_DEFINED),
        ),
    ] {
        let mut bytes = control(t);
        assert_eq!(classify(&bytes), Some(kind));
        assert_eq!(dest_socket_id(&bytes), Some(0xD00D));
        set_dest_socket_id(&mut bytes, 0xBEEF).unwrap();
        assert_eq!(
            oracle::Packet::parse(&mut &bytes[..], false)
                .unwrap()
                .dest_sockid()
                .0,
            0xBEEF
        );
    }
}

// ---------------------------------------------------------------- fuzz corpus replay

#[test]
fn fuzz_corpus_replays() {
    for (target, run) in [
        ("packet_handshake", drive::packet_and_handshake as fn(&[u8])),
        ("streamid", drive::streamid),
        ("extensions", drive::extensions),
    ] {
        let corpus = files(&crate_dir().join("fuzz/corpus").join(target));
        assert!(!corpus.is_empty(), "fuzz/corpus/{target} has seeds");
        for (_, bytes) in corpus {
            run(&bytes);
        }
    }
    let outcomes: Vec<_> = files(&crate_dir().join("fuzz/corpus/proxy_session"))
        .iter()
        .filter_map(|(_, bytes)| drive::proxy_session(bytes))
        .collect();
    assert!(
        outcomes.iter().any(|o| matches!(o, Outcome::Connected(_)))
            && outcomes.iter().any(|o| matches!(o, Outcome::Rejected(_))),
        "the proxy_session corpus reaches both verdicts: {outcomes:?}"
    );
}

// ---------------------------------------------------------------- live: real programs

/// Kills the child when the test ends, whichever way it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn require(program: &str, package: &str) {
    let found = Command::new(program)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(found, "{program} is required for this test and was not found: install it with `apt-get install {package}`");
}

fn ffmpeg(url: &str, seconds: u32) -> Running {
    require("ffmpeg", "ffmpeg");
    let child = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
        ])
        .args(["-t", &seconds.to_string(), "-f", "mpegts", url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ffmpeg");
    Running(child)
}

/// Waits for the child to exit (killing it after `limit`); its exit success and stderr.
fn finish(mut child: Running, limit: Duration) -> (bool, String) {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    if status.is_none() {
        let _ = child.0.kill();
    }
    if let Some(mut e) = child.0.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status.is_some_and(|s| s.success()), err)
}

fn loopback() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    s
}

fn clock() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
}

/// Our listener answers ffmpeg's induction; ffmpeg must come back with a conclusion that
/// echoes our cookie and carries the streamid; we then refuse it with 1403 (wire 2403).
fn live_listener_handshake(extra: &str, expect_km: bool) {
    let sock = loopback();
    let port = sock.local_addr().unwrap().port();
    let url = format!("srt://127.0.0.1:{port}?streamid=#!::r=live/livestream,m=publish&connect_timeout=3000{extra}");
    let child = ffmpeg(&url, 1);
    let listener = Listener::new(SynCookies::new([0x5A; 32]), 0x00DD_BA11);
    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut answered, mut accepted) = (0, None);
    while accepted.is_none() {
        assert!(
            Instant::now() < deadline,
            "ffmpeg sent no conclusion (inductions answered: {answered})"
        );
        let Ok((n, peer)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let hs = Handshake::parse(&buf[..n]).expect("ffmpeg sends handshakes");
        match hs.kind {
            HandshakeType::Induction => {
                sock.send_to(
                    &listener.answer_induction(&hs, peer, clock()).unwrap(),
                    peer,
                )
                .unwrap();
                answered += 1;
            }
            HandshakeType::Conclusion => {
                let ok = listener
                    .accept_conclusion(hs, peer, clock())
                    .expect("ffmpeg echoes our cookie");
                assert_eq!(
                    ok.handshake.extensions.find(ExtensionType::KmReq).is_some(),
                    expect_km
                );
                let sid = ok.parse_streamid().expect("SID block").unwrap();
                assert_eq!(
                    (sid.resource.as_deref(), sid.mode),
                    (Some("live/livestream"), Mode::Publish)
                );
                sock.send_to(
                    &listener.reject(&ok.handshake, peer, RejectReason::Forbidden, clock()),
                    peer,
                )
                .unwrap();
                accepted = Some(sid);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let (success, err) = finish(child, Duration::from_secs(10));
    assert!(!success, "ffmpeg must fail after a rejection");
    // libsrt names the reason it decoded: 2403 on the wire is reason 1403, an
    // application-defined one; 1403 on the wire would read as "Unknown or erroneous".
    assert!(
        err.contains("Application-defined rejection reason"),
        "ffmpeg's log: {err}"
    );
}

#[test]
fn live_ffmpeg_caller_against_our_listener() {
    live_listener_handshake("", false);
}

#[test]
fn live_ffmpeg_caller_with_passphrase_sends_kmreq() {
    live_listener_handshake("&passphrase=0123456789abcdef", true);
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn origin(port: u16, opts: &str) -> Running {
    require("srt-live-transmit", "srt-tools");
    let child = Command::new("srt-live-transmit")
        .args([
            "-q",
            &format!("srt://127.0.0.1:{port}?mode=listener{opts}"),
            "file://con",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn srt-live-transmit");
    Running(child)
}

#[derive(Default, Debug)]
struct ProxyRun {
    streamid: Option<String>,
    outcome: Option<Outcome>,
    client_to_origin: usize,
    origin_to_client: usize,
    retransmits_answered: usize,
}

/// A whole proxy in one loop, written the way the front-end is meant to use the crate:
/// ffmpeg -> [`Router`] (this) [`Session`] -> srt-live-transmit. Runs until ffmpeg exits.
fn run_proxy(
    mut client_proc: Running,
    origin_addr: SocketAddr,
    limit: Duration,
    front: UdpSocket,
) -> (ProxyRun, bool, String) {
    let back = loopback();
    let started = Instant::now();
    let clock = || started.elapsed();
    let mut router: Router<()> = Router::new(
        [0x11; 32],
        Limits {
            max_sessions: 1,
            max_pending: 1,
            answer_ttl: Duration::from_secs(10),
        },
    );
    let mut session: Option<Session> = None;
    let (mut client, mut relay): (Option<SocketAddr>, Option<Relay>) = (None, None);
    let mut run = ProxyRun::default();
    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && client_proc.0.try_wait().unwrap().is_none() {
        if let Ok((n, from)) = front.recv_from(&mut buf) {
            let pkt = &mut buf[..n];
            let repeated = Handshake::parse(pkt).is_ok_and(|hs| {
                hs.kind == HandshakeType::Conclusion
                    && relay.is_some()
                    && dest_socket_id(pkt) == Some(0)
            });
            match router.handle_datagram(clock(), from, pkt) {
                Action::Forward { .. } => {
                    let r = relay.expect("forwarded on a live route");
                    assert_eq!(dest_socket_id(pkt), Some(r.origin_socket_id));
                    back.send_to(pkt, origin_addr).unwrap();
                    run.client_to_origin += 1;
                }
                Action::Open(opening) => {
                    run.streamid = Some(opening.streamid);
                    let mut s = opening.session;
                    let now = clock();
                    s.dial(origin_addr, now, now + Duration::from_secs(5));
                    session = Some(s);
                    client = Some(from);
                }
                Action::Handshake => run.retransmits_answered += usize::from(repeated),
                other => panic!("unexpected client datagram: {other:?}"),
            }
            while let Some(t) = router.poll_transmit() {
                front.send_to(&t.payload, t.to).unwrap();
            }
        }
        if let Ok((n, _)) = back.recv_from(&mut buf) {
            let pkt = &mut buf[..n];
            if let (Some(r), Some(c)) = (relay, client) {
                assert_eq!(dest_socket_id(pkt), Some(r.ids.toward_origin));
                if r.from_origin(pkt) != Verdict::Drop {
                    front.send_to(pkt, c).unwrap();
                    run.origin_to_client += 1;
                }
            } else if let Some(s) = session.as_mut() {
                s.handle_datagram(clock(), pkt).unwrap();
            }
        }
        // The origin may not be listening yet: the session repeats its last handshake.
        if let Some(s) = session.as_mut() {
            if s.poll_timeout().is_some_and(|at| at <= clock()) {
                s.handle_timeout(clock());
            }
            if let Some(packet) = s.poll_transmit() {
                back.send_to(&packet, origin_addr).unwrap();
            }
            if let Some(outcome) = s.outcome() {
                run.outcome = Some(outcome);
                if let Outcome::Connected(r) = outcome {
                    relay = Some(r);
                }
                let decided = session.take().unwrap();
                router.answered(decided, Some(()), clock());
                while let Some(t) = router.poll_transmit() {
                    front.send_to(&t.payload, t.to).unwrap();
                }
            }
        }
    }
    let (success, err) = finish(client_proc, Duration::from_secs(5));
    (run, success, err)
}

#[test]
fn live_proxy_relays_ffmpeg_to_a_libsrt_origin() {
    let port = free_udp_port();
    let mut origin_proc = origin(port, "");
    let mut out = origin_proc.0.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        let _ = out.read_to_end(&mut got);
        got
    });
    let front = loopback();
    let url = format!(
        "srt://127.0.0.1:{}?streamid=#!::h=example.com,r=live/livestream,m=publish&connect_timeout=5000",
        front.local_addr().unwrap().port()
    );
    let (run, success, err) = run_proxy(
        ffmpeg(&url, 2),
        ([127, 0, 0, 1], port).into(),
        Duration::from_secs(20),
        front,
    );
    thread::sleep(Duration::from_millis(300));
    drop(origin_proc);
    let received = reader.join().unwrap();
    assert!(success, "ffmpeg failed through the proxy: {run:?}\n{err}");
    assert_eq!(
        run.streamid.as_deref(),
        Some("#!::h=example.com,r=live/livestream,m=publish")
    );
    assert!(
        matches!(run.outcome, Some(Outcome::Connected(_))),
        "{run:?}"
    );
    assert!(
        run.client_to_origin > 20 && run.origin_to_client > 5,
        "{run:?}"
    );
    assert!(
        received.len() > 20_000,
        "origin wrote {} bytes: {run:?}",
        received.len()
    );
    assert_eq!(
        received.first(),
        Some(&0x47),
        "MPEG-TS came out of the origin"
    );
}

#[test]
fn live_origin_rejection_reaches_ffmpeg() {
    let port = free_udp_port();
    let _origin = origin(port, "&passphrase=0123456789abcdef");
    let front = loopback();
    let url = format!(
        "srt://127.0.0.1:{}?streamid=live/livestream&connect_timeout=5000",
        front.local_addr().unwrap().port()
    );
    let (run, success, err) = run_proxy(
        ffmpeg(&url, 1),
        ([127, 0, 0, 1], port).into(),
        Duration::from_secs(15),
        front,
    );
    assert!(!success, "ffmpeg must fail: {run:?}");
    assert_eq!(
        run.outcome,
        Some(Outcome::Rejected(RejectReason::Unsecure)),
        "{run:?}"
    );
    assert!(
        err.contains("Password required or unexpected"),
        "ffmpeg's log: {err}"
    );
}
