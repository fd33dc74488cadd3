//! The code the fuzz targets run, shared with the crate's corpus replay test
//! (`tests/interop.rs` includes this file) so a corpus file exercises the same path in both.
//!
//! Beyond "no panic", each entry point asserts invariants that must hold for any input.

#![allow(dead_code)]

use stun_ufrag::sdp::{self, CandidateAddr, TcpCandidates, Transport};
use stun_ufrag::stun::{binding_error_response, MAX_ATTRIBUTES};
use stun_ufrag::{classify, BindingRequest, IceRole, IntegrityKey, Message, PacketKind};

/// STUN parse and verify on an arbitrary datagram.
pub fn stun(data: &[u8]) {
    let kind = classify(data);
    let Ok(msg) = Message::parse(data) else {
        return;
    };
    // Whatever parses is a well-formed message: header, aligned length, whole TLVs.
    assert!(data.len() >= 20 && data.len() % 4 == 0);
    assert!(data.first().is_some_and(|&b| b < 64));
    if data.first().is_some_and(|&b| b < 4) {
        assert_eq!(kind, PacketKind::Stun);
    }
    let mut covered = 20;
    let mut count = 0;
    for a in msg.attributes() {
        assert_eq!(a.offset, covered);
        covered += 4 + a.value.len().div_ceil(4) * 4;
        count += 1;
        let _ = (
            a.as_u32(),
            a.as_u64(),
            a.as_str(),
            a.as_address(),
            a.as_error_code(),
        );
    }
    assert_eq!(covered, data.len());
    assert!(count <= MAX_ATTRIBUTES);

    let _ = (
        msg.priority(),
        msg.ice_controlling(),
        msg.ice_controlled(),
        msg.use_candidate(),
    );
    let _ = (
        msg.error_code(),
        msg.xor_mapped_address(),
        msg.mapped_address(),
        msg.software(),
    );
    let key = IntegrityKey::new(b"fuzzpassword0123456789");
    let verified = msg.verify_integrity(&key).is_ok();
    assert_eq!(
        verified,
        msg.verify_password(b"fuzzpassword0123456789").is_ok()
    );
    let _ = msg.verify_fingerprint();

    let mut buf = [0u8; 1024];
    if let Ok(user) = msg.ice_username() {
        assert!(!user.server.is_empty() && !user.client.is_empty());
        assert!(!user.server.contains(':'));
        // Re-signing the same username must produce a message that verifies.
        let req = BindingRequest {
            transaction_id: msg.transaction_id(),
            server_ufrag: user.server,
            client_ufrag: user.client,
            priority: msg.priority().ok().flatten().unwrap_or(1),
            role: IceRole::Controlling(msg.ice_controlling().ok().flatten().unwrap_or(0)),
            use_candidate: msg.use_candidate(),
            network_info: Some((1, 10)),
        };
        let signed = req
            .encode(&key, &mut buf)
            .expect("a parsed username always fits");
        let again = Message::parse(signed).expect("our own request parses");
        assert_eq!(again.ice_username(), Ok(user));
        assert!(again.verify_integrity(&key).is_ok());
        assert!(again.verify_fingerprint().is_ok());
    }

    let resp = binding_error_response(&msg, 400, "Bad Request", &mut buf).expect("fits");
    let resp = Message::parse(resp).expect("our own response parses");
    assert_eq!(resp.transaction_id(), msg.transaction_id());
    assert!(resp.verify_fingerprint().is_ok());
}

fn non_candidate_lines(s: &str) -> impl Iterator<Item = &str> {
    s.split_inclusive('\n')
        .filter(|l| !l.starts_with("a=candidate:"))
}

/// SDP credential reading and candidate rewriting on arbitrary text.
pub fn sdp(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let _ = sdp::ice_credentials(text);
    let _ = sdp::sdpfrag_ice_credentials(text);
    let _ = sdp::section_credentials(text);
    let _ = sdp::candidates(text);
    let publics = [
        CandidateAddr::new([203, 0, 113, 10].into(), 18000),
        CandidateAddr::new("2001:db8::10".parse().expect("literal"), 8000),
        CandidateAddr::named("rtc.example.com", 443),
    ];
    for public in &publics {
        for tcp in [
            TcpCandidates::Drop,
            TcpCandidates::Keep,
            TcpCandidates::Rewrite(443),
        ] {
            let full = sdp::rewrite_candidates(text, public, tcp);
            let frag = sdp::rewrite_sdpfrag_candidates(text, public, tcp);
            if let Ok(out) = &full {
                assert_eq!(frag.as_ref().ok(), Some(out));
            }
            let Ok(out) = frag else { continue };
            assert!(non_candidate_lines(&out).eq(non_candidate_lines(text)));
            for line in out
                .split_inclusive('\n')
                .filter(|l| l.starts_with("a=candidate:"))
            {
                let content = line.strip_suffix('\n').unwrap_or(line);
                let content = content.strip_suffix('\r').unwrap_or(content);
                let c = sdp::Candidate::parse(content).expect("rewritten candidates parse");
                if c.transport == Transport::Udp {
                    assert_eq!(c.port, public.port);
                }
            }
        }
    }
}

/// One candidate line: whatever parses borrows from the line, stays within the grammar's
/// bounds, and parses the same in its SDP (`a=candidate:`) and trickle (`candidate:`) forms.
pub fn candidate(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let Ok(c) = sdp::Candidate::parse(text) else {
        return;
    };
    let within = |s: &str| {
        let (start, end) = (text.as_ptr() as usize, text.as_ptr() as usize + text.len());
        s.as_ptr() as usize >= start && s.as_ptr() as usize + s.len() <= end
    };
    for field in [
        Some(c.foundation),
        Some(c.address),
        c.tcp_type,
        c.related_address,
    ]
    .into_iter()
    .flatten()
    {
        assert!(within(field), "{field:?} does not borrow from the line");
        assert!(!field.contains([' ', '\t']), "{field:?} holds a separator");
    }
    assert!(!c.address.is_empty() && c.address.len() <= 255);
    assert!(c.foundation.len() <= 32 && (1..=256).contains(&c.component));
    let _ = (c.ip(), c.socket_addr(), c.is_mdns());
    if let Some(ip) = c.ip() {
        assert_eq!(c.socket_addr(), Some(std::net::SocketAddr::new(ip, c.port)));
    }
    let other = match text.strip_prefix("a=") {
        Some(trickle) => trickle.to_owned(),
        None => format!("a={text}"),
    };
    let again = sdp::Candidate::parse(&other).expect("the other form parses too");
    assert_eq!(
        (
            again.foundation,
            again.component,
            again.transport,
            again.priority
        ),
        (c.foundation, c.component, c.transport, c.priority)
    );
    assert_eq!(
        (again.address, again.port, again.kind, again.tcp_type),
        (c.address, c.port, c.kind, c.tcp_type)
    );
    assert_eq!(
        (again.related_address, again.related_port),
        (c.related_address, c.related_port)
    );
}
