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
    let mut session = Session::new(&accepted, peer, peer, ids);
    if let Some(first) = session.to_origin(now) {
        Handshake::parse(&first).expect("our induction parses");
    }
    for _ in 0..3 {
        match session.on_origin(&hs, now) {
            Ok(OriginStep::SendToOrigin(b))
            | Ok(OriginStep::Connected { to_client: b, .. })
            | Ok(OriginStep::Rejected { to_client: b, .. }) => {
                let out = Handshake::parse(&b).expect("what we send parses");
                assert_eq!(
                    out.extensions.as_bytes(),
                    hs.extensions.as_bytes(),
                    "extensions pass untouched"
                );
            }
            Ok(OriginStep::Nothing) | Err(_) => {}
        }
    }
    let _ = session.answer_retransmit(&hs);
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
