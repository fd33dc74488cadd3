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
    if let Some(media) = sdp::media_candidate(text) {
        assert!(sdp::candidates(text)
            .is_ok_and(|all| all.iter().any(|(_, c)| c.socket_addr() == Some(media))));
    }
    if let Some(restart) = sdp::ice_restart(text, text) {
        assert_eq!(restart.client, restart.server);
    }
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
            // The relay's view of an answer agrees with the pieces it is made of.
            if let Ok(relayed) = sdp::relay_answer(text, Some(public), tcp) {
                assert_eq!(Ok(relayed.server), sdp::ice_credentials(text));
                assert_eq!(full.as_deref(), Ok(relayed.body.as_ref()));
            }
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

/// The media router driven by a script of client datagrams (valid checks, consent answers,
/// media, raw bytes), origin datagrams, lookups and clock moves. Whatever the order:
/// consent requests go only to addresses that sent an authentic check, media from an
/// origin only to an address that answered one with the client's password, and the
/// session limit holds.
pub fn router(data: &[u8]) {
    use std::collections::{HashMap, HashSet};
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};
    use stun_ufrag::router::{Action, Config, Event, Known, Router, SessionId, Target};
    use stun_ufrag::stun::binding_success_response;
    use stun_ufrag::TransactionId;

    const SERVER_PWD: &str = "fuzz-server-password-0123";
    const CLIENT_PWD: &str = "fuzz-client-password-0123";
    const MAX_SESSIONS: usize = 2;
    let ufrags = ["s0", "s1", "s2"];
    let addrs: Vec<SocketAddr> = (1..=4)
        .map(|p| SocketAddr::from(([192, 0, 2, 1], p)))
        .collect();
    let known = |ufrag: &str| Known {
        server_ufrag: ufrag.to_owned(),
        server_pwd: SERVER_PWD.to_owned(),
        client_ufrag: "cli".to_owned(),
        client_pwd: CLIENT_PWD.to_owned(),
        data: (),
    };
    let start = Instant::now();
    let mut now = start;
    let config = Config {
        idle_timeout: Duration::from_secs(3),
        known_ttl: Duration::from_secs(10),
        renew_every: Duration::from_secs(1),
        max_sessions: MAX_SESSIONS,
    };
    let mut n = 0u8;
    let random = Box::new(move |buf: &mut [u8]| {
        n = n.wrapping_add(1);
        buf.fill(n);
    });
    let mut router: Router<()> = Router::new(config, random, now);
    router.prime(now, known(ufrags[0]));
    router.prime(now, known(ufrags[1]));
    // What the script did: addresses that sent authentic checks, that answered, and the
    // latest request each address got.
    let mut checked: HashSet<SocketAddr> = HashSet::new();
    let mut answered: HashSet<SocketAddr> = HashSet::new();
    let mut requests: HashMap<SocketAddr, Vec<u8>> = HashMap::new();
    let mut sessions: Vec<SessionId> = Vec::new();
    let mut lookups: Vec<String> = Vec::new();
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    while let Some(op) = next() {
        let arg = next().unwrap_or(0);
        let from = addrs[usize::from(arg) % addrs.len()];
        let action = match op % 8 {
            0 => {
                let ufrag = ufrags[usize::from(arg >> 2) % ufrags.len()];
                let mut buf = [0u8; 256];
                let check = BindingRequest {
                    transaction_id: TransactionId([next().unwrap_or(0); 12]),
                    server_ufrag: ufrag,
                    client_ufrag: "cli",
                    priority: 1,
                    role: IceRole::Controlling(1),
                    use_candidate: arg & 0x80 != 0,
                    network_info: None,
                }
                .encode(&IntegrityKey::new(SERVER_PWD.as_bytes()), &mut buf)
                .expect("fits");
                checked.insert(from);
                router.handle_datagram(now, from, check)
            }
            1 => {
                let Some(request) = requests.get(&from) else {
                    continue;
                };
                let Ok(request) = Message::parse(request) else {
                    continue;
                };
                let right = arg & 0x80 == 0;
                let pwd = if right { CLIENT_PWD } else { SERVER_PWD };
                let mut buf = [0u8; 256];
                let answer = binding_success_response(
                    &request,
                    from,
                    &IntegrityKey::new(pwd.as_bytes()),
                    &mut buf,
                )
                .expect("fits");
                if right {
                    answered.insert(from);
                }
                router.handle_datagram(now, from, answer)
            }
            2 => {
                let len = usize::from(next().unwrap_or(0) % 64);
                let raw: Vec<u8> = (0..len).map(|_| next().unwrap_or(0)).collect();
                router.handle_datagram(now, from, &raw)
            }
            3 => router.handle_datagram(now, from, &[0x80, 0x60, arg, 0, 0, 0, 0, 1]),
            4 => {
                now += Duration::from_millis(u64::from(arg) * 20);
                router.handle_timeout(now);
                Action::Consumed
            }
            5 => {
                let Some(ufrag) = lookups.pop() else { continue };
                let found = (arg & 1 == 1).then(|| known(&ufrag));
                router.handle_lookup(now, &ufrag, found)
            }
            6 => {
                let Some(&id) = sessions.get(usize::from(arg) % sessions.len().max(1)) else {
                    continue;
                };
                let media = [0x80, 0x60, 0, 1];
                if let Action::ToClient(to) = router.handle_origin_datagram(id, &media) {
                    assert!(
                        answered.contains(&to),
                        "media to {to}, which never consented"
                    );
                    assert!(router.addrs(id).any(|a| a == to));
                }
                Action::Consumed
            }
            _ => {
                match sessions.get(usize::from(arg) % sessions.len().max(1)) {
                    Some(&id) if arg & 1 == 0 => {
                        router.close(id, stun_ufrag::router::CloseReason::Closed("fuzz"));
                    }
                    _ => router.forget(ufrags[usize::from(arg) % ufrags.len()]),
                }
                Action::Consumed
            }
        };
        match action {
            Action::Open(id) => sessions.push(id),
            Action::Lookup(ufrag) => lookups.push(ufrag),
            _ => {}
        }
        while let Some(t) = router.poll_transmit() {
            if let Target::Client(to) = t.to {
                assert!(
                    checked.contains(&to),
                    "a request to {to}, which never checked"
                );
                requests.insert(to, t.datagram);
            }
        }
        while let Some(event) = router.poll_event() {
            if let Event::Downlink {
                session, downlink, ..
            } = event
            {
                let dest = downlink.destination();
                assert!(router.addrs(session).any(|a| a == dest.addr));
                assert!(!dest.consented || answered.contains(&dest.addr));
            }
        }
        assert!(router.len() <= MAX_SESSIONS);
    }
}
