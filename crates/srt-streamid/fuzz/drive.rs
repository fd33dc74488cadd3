//! What the fuzz targets run on each input. `tests/interop.rs` includes this file too and
//! replays the corpus through it, so the corpus is checked by a plain `cargo test`.
//! Panics here are findings: they assert the invariants parsers promise.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use srt_streamid::extension::{decode_text, encode_text};
use srt_streamid::*;

/// Packet header view, socket id rewrite, handshake parse/re-encode, and the proxy steps
/// fed with whatever parsed.
pub fn packet_and_handshake(data: &[u8]) {
    if let Ok(p) = Packet::parse(data) {
        let again = match p.header() {
            Header::Data(d) => d.encode(),
            Header::Control(c) => c.encode(),
        };
        assert_eq!(&again, p.header_bytes(), "header re-encodes exactly");
        assert_eq!(Some(p.kind()), classify(data));
        assert_eq!(Some(p.dest_socket_id()), dest_socket_id(data));
    }
    let mut copy = data.to_vec();
    if set_dest_socket_id(&mut copy, 0x1234_5678).is_ok() {
        assert_eq!(dest_socket_id(&copy), Some(0x1234_5678));
    }

    let Ok(hs) = Handshake::parse(data) else {
        return;
    };
    assert_eq!(hs.to_vec(), data, "handshake re-encodes exactly");
    for e in hs.extensions {
        let _ = (e.srt_hs(), e.key_material(), e.group(), e.text());
    }
    let _ = hs.streamid();

    let peer: SocketAddr = ([127, 0, 0, 1], 4000).into();
    let now = Duration::from_secs(1_000_000);
    let listener = Listener::new(SynCookies::new([9; 32]), 7);
    if let Ok(answer) = listener.answer_induction(&hs, peer, now) {
        let answer = Handshake::parse(&answer).expect("induction answer parses");
        let echo = Handshake {
            kind: HandshakeType::Conclusion,
            version: 5,
            ..answer
        };
        assert!(
            listener.accept_conclusion(echo, peer, now).is_ok(),
            "our own cookie verifies"
        );
    }
    let _ = listener.accept_conclusion(hs, peer, now);
    Handshake::parse(&listener.reject(&hs, peer, RejectReason::NotFound, now))
        .expect("rejection parses");

    // The same bytes play the client's conclusion and then every origin answer.
    let accepted = Accepted {
        handshake: hs,
        streamid: None,
    };
    let ids = SessionIds {
        toward_client: 1,
        toward_origin: hs.header.dest_socket_id,
    };
    let mut session = Session::new(&accepted, peer, ids, now);
    session.dial(peer, now, now + Duration::from_secs(1));
    if let Some(first) = session.poll_transmit() {
        Handshake::parse(&first).expect("our induction parses");
    }
    for _ in 0..3 {
        let decided = session.outcome().is_some();
        let _ = session.handle_datagram(now, data);
        if let Some(b) = session.poll_transmit() {
            let out = Handshake::parse(&b).expect("what we send parses");
            assert_eq!(out.extensions.as_bytes(), hs.extensions.as_bytes());
        }
        if let (false, Some(Outcome::Connected(_) | Outcome::Rejected(_))) =
            (decided, session.outcome())
        {
            let reply = session.reply().expect("a verdict has an answer");
            let out = Handshake::parse(reply).expect("what we send parses");
            assert_eq!(
                out.extensions.as_bytes(),
                hs.extensions.as_bytes(),
                "extensions pass untouched"
            );
        }
    }
    let _ = session.answer_retransmit(&hs);

    // And the router, fed the same bytes from one address.
    let mut router: Router<()> = Router::new(
        [3; 32],
        Limits {
            max_sessions: 4,
            max_pending: 4,
            answer_ttl: Duration::from_secs(10),
        },
    );
    let mut copy = data.to_vec();
    let _ = router.handle_datagram(now, peer, &mut copy);
    while let Some(t) = router.poll_transmit() {
        assert_eq!(t.to, peer);
        Handshake::parse(&t.payload).expect("the router's answers parse");
    }
}

/// The streamid grammar on any UTF-8 text, and the SID word packing round trip.
pub fn streamid(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(sid) = StreamId::parse(text) {
        assert!(text.len() <= MAX_STREAMID_LEN);
        let _ = sid.custom("secret");
    }
    if let Ok(packed) = encode_text(text) {
        assert_eq!(packed.len() % 4, 0);
        let back = decode_text(&packed, "SID").expect("packed text decodes");
        assert_eq!(back, text.trim_end_matches('\0'));
    }
}

/// The extension area alone: whatever validates is a sequence of whole blocks that
/// re-encode to the same bytes, and each view agrees with the block's length.
pub fn extensions(data: &[u8]) {
    use srt_streamid::extension::push_extension;

    let Ok(exts) = Extensions::parse(data) else {
        return;
    };
    assert_eq!(exts.as_bytes(), data);
    let mut again = Vec::with_capacity(data.len());
    let mut count = 0;
    for e in exts.iter() {
        count += 1;
        assert_eq!(e.raw.len(), 4 + e.contents.len());
        assert_eq!(e.raw.get(4..), Some(e.contents));
        assert_eq!(ExtensionType::from_u16(e.ext_type.to_u16()), e.ext_type);
        push_extension(&mut again, e.ext_type, e.contents).expect("a parsed block re-encodes");
        let len = e.contents.len();
        if let Some(hs) = e.srt_hs() {
            assert_eq!(hs.is_ok(), len >= 12);
        }
        if let Some(km) = e.key_material() {
            assert_eq!(km.is_ok(), len == 4 || len >= 16);
        }
        if let Some(group) = e.group() {
            assert_eq!(group.is_ok(), len >= 8);
        }
        if let Some(Ok(text)) = e.text() {
            let packed = encode_text(&text).expect("decoded text fits");
            assert_eq!(decode_text(&packed, "SID").as_deref(), Ok(text.as_str()));
        }
    }
    assert!(count <= srt_streamid::extension::MAX_EXTENSIONS);
    assert_eq!(again, data, "blocks re-encode to the same bytes");
    assert_eq!(
        exts.streamid().ok().flatten(),
        exts.find(ExtensionType::Sid)
            .and_then(|e| e.text())
            .and_then(Result::ok)
    );
}

/// ffmpeg's conclusion (streamid `#!::r=live/livestream,m=publish`), the client side of
/// every session the proxy_session target drives.
const CLIENT_CONCLUSION: &[u8] = include_bytes!("../tests/data/ffmpeg_conclusion.bin");

/// The proxy's session toward an origin fed a sequence of origin datagrams (each a
/// big-endian u16 length, high bit set to keep the datagram's own destination id, then the
/// bytes): steps follow the handshake's order, a verdict is final, what goes to the client
/// is addressed to it and carries the origin's extensions untouched, and after a
/// connection the relay readdresses packets both ways. Returns the outcome.
pub fn proxy_session(data: &[u8]) -> Option<Outcome> {
    let client: SocketAddr = ([127, 0, 0, 1], 40000).into();
    let origin: SocketAddr = ([127, 0, 0, 1], 10080).into();
    let now = Duration::from_secs(1_700_000_000);
    let hs = Handshake::parse(CLIENT_CONCLUSION).expect("captured conclusion");
    let accepted = Accepted {
        handshake: hs,
        streamid: hs.streamid().expect("captured streamid"),
    };
    let ids = SessionIds {
        toward_client: 0x0C11_E000,
        toward_origin: 0x0021_6100,
    };
    let mut session = Session::new(&accepted, client, ids, now);
    session.dial(origin, now, now + Duration::from_secs(5));
    let induction = session.poll_transmit().expect("our induction");
    assert_eq!(
        Handshake::parse(&induction).expect("parses").kind,
        HandshakeType::Induction
    );
    let mut conclusion_sent = false;

    let mut rest = data;
    while let [hi, lo, tail @ ..] = rest {
        let keep_dest = hi & 0x80 != 0;
        let len = usize::from(u16::from_be_bytes([hi & 0x7F, *lo])).min(tail.len());
        let (datagram, after) = tail.split_at(len);
        rest = after;
        let mut datagram = datagram.to_vec();
        if !keep_dest {
            let _ = set_dest_socket_id(&mut datagram, ids.toward_origin);
        }

        let before = session.outcome();
        assert_eq!(session.poll_timeout().is_none(), before.is_some());
        if let Ok(answer) = Handshake::parse(&datagram) {
            let step = session.handle_datagram(now, &datagram);
            let sent = session.poll_transmit();
            if before.is_some() {
                assert!(
                    matches!(step, Ok(()) | Err(Error::WrongSocketId { .. })),
                    "a step after the verdict: {step:?}"
                );
                assert_eq!(session.outcome(), before, "a verdict is final");
                assert_eq!(sent, None);
                continue;
            }
            if let Some(b) = sent {
                let out = Handshake::parse(&b).expect("our conclusion parses");
                assert_eq!(out.kind, HandshakeType::Conclusion);
                assert_eq!(
                    out.header.timestamp, hs.header.timestamp,
                    "no time passed: the client's own timestamp (the origin's TSBPD base)"
                );
                assert_eq!(out.extensions.as_bytes(), hs.extensions.as_bytes());
                assert_eq!(out.socket_id, ids.toward_origin);
                conclusion_sent = true;
            }
            match session.outcome() {
                Some(Outcome::Connected(relay)) => {
                    assert!(conclusion_sent, "connected before our conclusion went out");
                    let to_client = session.reply().expect("an answer");
                    check_to_client(to_client, &answer, &hs, ids);
                    assert_eq!(
                        session.answer_retransmit(&hs),
                        Some(to_client),
                        "a repeated conclusion gets the same answer"
                    );
                    assert_eq!(relay.ids, ids);
                }
                Some(Outcome::Rejected(_)) => {
                    check_to_client(session.reply().expect("an answer"), &answer, &hs, ids);
                }
                Some(Outcome::Refused(reason)) => panic!("refused {reason:?} without a timer"),
                None => {}
            }
            if step.is_err() {
                assert_eq!(session.outcome(), None);
            }
        } else if let Some(Outcome::Connected(relay)) = before {
            let mut copy = datagram.clone();
            if relay.origin_to_client(&mut copy).is_ok() {
                assert_eq!(dest_socket_id(&copy), Some(relay.client_socket_id));
                relay
                    .client_to_origin(&mut copy)
                    .expect("a packet readdressed once readdresses again");
                assert_eq!(dest_socket_id(&copy), Some(relay.origin_socket_id));
                assert_eq!(copy.get(HEADER_LEN..), datagram.get(HEADER_LEN..));
            }
            let mut copy = datagram.clone();
            match relay.from_origin(&mut copy) {
                Verdict::Forward | Verdict::Last => {
                    assert_eq!(dest_socket_id(&datagram), Some(ids.toward_origin));
                    assert_eq!(dest_socket_id(&copy), Some(relay.client_socket_id));
                }
                Verdict::Drop => assert_eq!(copy, datagram),
            }
        }
    }
    if session.outcome().is_none() {
        assert_eq!(session.answer_retransmit(&hs), None);
        session.handle_timeout(now + Duration::from_secs(5));
        assert_eq!(
            session.outcome(),
            Some(Outcome::Refused(RejectReason::BadGateway)),
            "silence until the deadline"
        );
        return None;
    }
    session.outcome()
}

/// The origin's answer as relayed to the client: the client's ids, cookie and address,
/// the origin's kind and extensions.
fn check_to_client(
    to_client: &[u8],
    answer: &Handshake<'_>,
    client: &Handshake<'_>,
    ids: SessionIds,
) {
    let out = Handshake::parse(to_client).expect("what we send the client parses");
    assert_eq!(out.header.dest_socket_id, client.socket_id);
    assert_eq!(out.socket_id, ids.toward_client);
    assert_eq!(out.cookie, client.cookie);
    assert_eq!(out.kind, answer.kind);
    assert_eq!(out.extensions.as_bytes(), answer.extensions.as_bytes());
}
