//! Cross-checks against an independent STUN implementation (`stun_codec`, the oracle), the
//! proxy's per-packet flow end to end, and the fuzz corpus replayed through the fuzz
//! targets' own harness.

use std::net::SocketAddr;

use bytecodec::{DecodeExt, EncodeExt};
use proptest::prelude::*;
use stun_codec::rfc5245::attributes::{IceControlled, IceControlling, Priority, UseCandidate};
use stun_codec::rfc5389::attributes::{
    ErrorCode, Fingerprint, MessageIntegrity, Software, Username, XorMappedAddress,
};
use stun_codec::rfc5389::methods::BINDING;
use stun_codec::{define_attribute_enums, MessageClass, MessageDecoder, MessageEncoder};

use stun_ufrag::sdp::{self, CandidateAddr, TcpCandidates};
use stun_ufrag::stun::{binding_error_response, binding_success_response};
use stun_ufrag::{
    attr_type, classify, BindingRequest, Error, IceRole, IntegrityKey, Message, MessageType,
    PacketKind, TransactionId,
};

#[path = "../fuzz/fuzz_targets/harness.rs"]
mod harness;

define_attribute_enums!(
    OracleAttr,
    OracleAttrDecoder,
    OracleAttrEncoder,
    [
        Username,
        MessageIntegrity,
        ErrorCode,
        XorMappedAddress,
        Software,
        Fingerprint,
        Priority,
        UseCandidate,
        IceControlled,
        IceControlling
    ]
);

type OracleMessage = stun_codec::Message<OracleAttr>;

fn oracle_decode(bytes: &[u8]) -> OracleMessage {
    // The oracle checks FINGERPRINT while decoding and fails on a mismatch.
    MessageDecoder::<OracleAttr>::new()
        .decode_from_bytes(bytes)
        .expect("oracle decodes")
        .expect("oracle accepts the message (FINGERPRINT included)")
}

fn oracle_encode(msg: OracleMessage) -> Vec<u8> {
    MessageEncoder::<OracleAttr>::new()
        .encode_into_bytes(msg)
        .expect("oracle encodes")
}

fn oracle_sign(mut msg: OracleMessage, password: &str) -> Vec<u8> {
    let mi = MessageIntegrity::new_short_term_credential(&msg, password).expect("oracle MI");
    msg.add_attribute(mi);
    let fp = Fingerprint::new(&msg).expect("oracle FP");
    msg.add_attribute(fp);
    oracle_encode(msg)
}

fn oracle_tid(tid: [u8; 12]) -> stun_codec::TransactionId {
    stun_codec::TransactionId::new(tid)
}

const CHROME_CHECK_HEX: &str =
    "000100542112a44271374b78326d50397642346e0006000d326d3875366230353a4573417700\
    0000c05700040001000a802a00085c3a9e1f0b7d246800250000002400046e7f1eff00080014d396610af4\
    fa5edd235d20454199233c4d5570ab80280004effb11d1";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A connectivity check as Chrome sends it to an ICE-lite server: USERNAME,
/// GOOG-NETWORK-INFO, ICE-CONTROLLING, USE-CANDIDATE, PRIORITY, MESSAGE-INTEGRITY,
/// FINGERPRINT.
fn chrome_check<'b>(server: &str, client: &str, pwd: &[u8], buf: &'b mut [u8]) -> &'b [u8] {
    BindingRequest {
        transaction_id: TransactionId(*b"q7Kx2mP9vB4n"),
        server_ufrag: server,
        client_ufrag: client,
        priority: 1_853_824_767,
        role: IceRole::Controlling(0x5c3a_9e1f_0b7d_2468),
        use_candidate: true,
        network_info: Some((1, 10)),
    }
    .encode(&IntegrityKey::new(pwd), buf)
    .expect("fits")
}

#[test]
fn chrome_style_check_is_verified_by_us_and_by_the_oracle() {
    let pwd = "c5i0u0e2o38k2t4i9q0x8m5k0g9d9fyx";
    let mut buf = [0u8; 256];
    let bytes = chrome_check("2m8u6b05", "EsAw", pwd.as_bytes(), &mut buf);

    let m = Message::parse(bytes).unwrap();
    let order: Vec<u16> = m.attributes().map(|a| a.attr_type).collect();
    assert_eq!(
        order,
        [
            attr_type::USERNAME,
            attr_type::GOOG_NETWORK_INFO,
            attr_type::ICE_CONTROLLING,
            attr_type::USE_CANDIDATE,
            attr_type::PRIORITY,
            attr_type::MESSAGE_INTEGRITY,
            attr_type::FINGERPRINT
        ]
    );
    // 20 header + 20 USERNAME (13 bytes padded to 16) + 8 + 12 + 4 + 8 + 24 + 8.
    assert_eq!(bytes.len(), 104);
    // Byte for byte what a third implementation (Python's hmac and zlib) wrote for the
    // same check.
    assert_eq!(bytes, &hex(CHROME_CHECK_HEX)[..]);
    let user = m.ice_username().unwrap();
    assert_eq!((user.server, user.client), ("2m8u6b05", "EsAw"));
    assert_eq!(m.ice_controlling().unwrap(), Some(0x5c3a_9e1f_0b7d_2468));
    assert!(m.use_candidate());
    m.verify_password(pwd.as_bytes()).unwrap();
    m.verify_fingerprint().unwrap();

    let o = oracle_decode(bytes);
    assert_eq!(o.class(), MessageClass::Request);
    assert_eq!(o.method(), BINDING);
    assert_eq!(
        o.get_attribute::<Username>().unwrap().name(),
        "2m8u6b05:EsAw"
    );
    assert_eq!(o.get_attribute::<Priority>().unwrap().prio(), 1_853_824_767);
    assert!(o.get_attribute::<UseCandidate>().is_some());
    o.get_attribute::<MessageIntegrity>()
        .unwrap()
        .check_short_term_credential(pwd)
        .expect("oracle verifies our MESSAGE-INTEGRITY");
    assert!(o
        .get_attribute::<MessageIntegrity>()
        .unwrap()
        .check_short_term_credential("wrong")
        .is_err());
}

#[test]
fn oracle_request_is_parsed_and_verified_by_us() {
    let mut msg = OracleMessage::new(MessageClass::Request, BINDING, oracle_tid([9; 12]));
    msg.add_attribute(Username::new("srvufrag:cliu".to_owned()).unwrap());
    msg.add_attribute(Priority::new(2_130_706_431));
    msg.add_attribute(IceControlled::new(42));
    msg.add_attribute(Software::new("oracle".to_owned()).unwrap());
    let bytes = oracle_sign(msg, "the-server-password-123");

    let m = Message::parse(&bytes).unwrap();
    assert!(m.is_binding_request());
    assert_eq!(m.transaction_id(), TransactionId([9; 12]));
    let user = m.ice_username().unwrap();
    assert_eq!((user.server, user.client), ("srvufrag", "cliu"));
    assert_eq!(m.priority().unwrap(), Some(2_130_706_431));
    assert_eq!(m.ice_controlled().unwrap(), Some(42));
    assert_eq!(m.software().unwrap(), Some("oracle"));
    m.verify_password(b"the-server-password-123").unwrap();
    m.verify_fingerprint().unwrap();
    assert_eq!(
        m.verify_password(b"the-server-password-124"),
        Err(Error::IntegrityMismatch)
    );
}

#[test]
fn responses_cross_check() {
    let mut buf = [0u8; 256];
    let req_bytes = chrome_check("srv1", "cli1", b"pw", &mut buf).to_vec();
    let req = Message::parse(&req_bytes).unwrap();

    // Our error response, read by the oracle.
    let mut out = [0u8; 128];
    let resp = binding_error_response(&req, 401, "Unauthorized", &mut out).unwrap();
    let o = oracle_decode(resp);
    assert_eq!(o.class(), MessageClass::ErrorResponse);
    assert_eq!(o.transaction_id(), oracle_tid(*b"q7Kx2mP9vB4n"));
    let ec = o.get_attribute::<ErrorCode>().unwrap();
    assert_eq!((ec.code(), ec.reason_phrase()), (401, "Unauthorized"));

    // Our success responses (IPv4 and IPv6), read by the oracle.
    let key = IntegrityKey::new(b"pw");
    for addr in ["198.51.100.7:54321", "[2001:db8::1234]:61000"] {
        let addr: SocketAddr = addr.parse().unwrap();
        let resp = binding_success_response(&req, addr, &key, &mut out).unwrap();
        let o = oracle_decode(resp);
        assert_eq!(o.class(), MessageClass::SuccessResponse);
        assert_eq!(
            o.get_attribute::<XorMappedAddress>().unwrap().address(),
            addr
        );
        o.get_attribute::<MessageIntegrity>()
            .unwrap()
            .check_short_term_credential("pw")
            .unwrap();
    }

    // The oracle's responses, read by us.
    let mut o = OracleMessage::new(MessageClass::ErrorResponse, BINDING, oracle_tid([4; 12]));
    o.add_attribute(ErrorCode::new(487, "Role Conflict".to_owned()).unwrap());
    let bytes = oracle_sign(o, "pw");
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.message_type(), MessageType::BINDING_ERROR);
    let ec = m.error_code().unwrap().unwrap();
    assert_eq!((ec.code, ec.reason), (487, "Role Conflict"));
    m.verify_password(b"pw").unwrap();
    m.verify_fingerprint().unwrap();

    let v6: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
        .parse()
        .unwrap();
    let mut o = OracleMessage::new(MessageClass::SuccessResponse, BINDING, oracle_tid([5; 12]));
    o.add_attribute(XorMappedAddress::new(v6));
    let bytes = oracle_sign(o, "pw");
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.xor_mapped_address().unwrap(), Some(v6));
    m.verify_password(b"pw").unwrap();
}

proptest! {
    #[test]
    fn ours_to_oracle(
        tid in any::<[u8; 12]>(),
        server in "[A-Za-z0-9+/]{4,32}",
        client in "[A-Za-z0-9+/]{4,32}",
        pwd in "[A-Za-z0-9+/]{22,48}",
        prio in any::<u32>(),
        tie in any::<u64>(),
        controlling in any::<bool>(),
        nominate in any::<bool>(),
    ) {
        let mut buf = [0u8; 512];
        let bytes = BindingRequest {
            transaction_id: TransactionId(tid),
            server_ufrag: &server,
            client_ufrag: &client,
            priority: prio,
            role: if controlling { IceRole::Controlling(tie) } else { IceRole::Controlled(tie) },
            use_candidate: nominate,
            network_info: None,
        }
        .encode(&IntegrityKey::new(pwd.as_bytes()), &mut buf)
        .unwrap();
        let o = oracle_decode(bytes);
        prop_assert_eq!(o.transaction_id(), oracle_tid(tid));
        prop_assert_eq!(o.get_attribute::<Username>().unwrap().name(), format!("{server}:{client}"));
        prop_assert_eq!(o.get_attribute::<Priority>().unwrap().prio(), prio);
        prop_assert_eq!(o.get_attribute::<UseCandidate>().is_some(), nominate);
        if controlling {
            prop_assert_eq!(o.get_attribute::<IceControlling>().unwrap().prio(), tie);
        } else {
            prop_assert_eq!(o.get_attribute::<IceControlled>().unwrap().prio(), tie);
        }
        prop_assert!(o.get_attribute::<MessageIntegrity>().unwrap().check_short_term_credential(&pwd).is_ok());
    }

    #[test]
    fn oracle_to_ours(
        tid in any::<[u8; 12]>(),
        server in "[A-Za-z0-9+/]{4,32}",
        client in "[A-Za-z0-9+/]{4,32}",
        pwd in "[A-Za-z0-9+/]{22,48}",
        other in "[A-Za-z0-9+/]{22,48}",
        prio in any::<u32>(),
        software in "[ -~]{0,40}",
    ) {
        let mut o = OracleMessage::new(MessageClass::Request, BINDING, oracle_tid(tid));
        o.add_attribute(Username::new(format!("{server}:{client}")).unwrap());
        if !software.is_empty() {
            o.add_attribute(Software::new(software.clone()).unwrap());
        }
        o.add_attribute(Priority::new(prio));
        o.add_attribute(IceControlling::new(7));
        o.add_attribute(UseCandidate::new());
        let bytes = oracle_sign(o, &pwd);
        let m = Message::parse(&bytes).unwrap();
        let u = m.ice_username().unwrap();
        prop_assert_eq!((u.server, u.client), (server.as_str(), client.as_str()));
        prop_assert_eq!(m.priority().unwrap(), Some(prio));
        prop_assert!(m.use_candidate());
        prop_assert!(m.verify_password(pwd.as_bytes()).is_ok());
        prop_assert_eq!(m.verify_password(other.as_bytes()).is_ok(), other == pwd);
        prop_assert!(m.verify_fingerprint().is_ok());
    }
}

/// The origin's answer as SRS writes it, trimmed to one section.
const ANSWER: &str = "v=0\r\n\
o=SRS/6.0.145(Bee) 107783412304512 2 IN IP4 0.0.0.0\r\n\
s=SRSPlaySession\r\n\
t=0 0\r\n\
a=ice-lite\r\n\
a=group:BUNDLE 0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 106\r\n\
c=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:0a9n3c2f\r\n\
a=ice-pwd:4w81q8tw35z8g2r7y7y3s1p46o1xu7g2\r\n\
a=setup:passive\r\n\
a=mid:0\r\n\
a=sendonly\r\n\
a=rtcp-mux\r\n\
a=rtpmap:106 H264/90000\r\n\
a=candidate:0 1 udp 2130706431 192.168.3.6 8000 typ host generation 0\r\n";

const OFFER_UFRAG_LINE: &str = "a=ice-ufrag:Hq3e\r\n";

/// The front-end's hot path, as documented on the crate: classify, parse, look up by server
/// ufrag, verify with the server's password, and only then trust the sender's address.
#[test]
fn proxy_flow_routes_authentic_checks_only() {
    let offer = format!("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 106\r\n{OFFER_UFRAG_LINE}a=ice-pwd:ZXhhbXBsZXBhc3N3b3JkMTIz\r\n");
    let client_ufrag = sdp::ice_credentials(&offer).unwrap().ufrag;
    let server = sdp::ice_credentials(ANSWER).unwrap();
    let origin = sdp::candidates(ANSWER).unwrap()[0].1.socket_addr().unwrap();
    assert_eq!(origin, "192.168.3.6:8000".parse().unwrap());
    let public = CandidateAddr::new([203, 0, 113, 10].into(), 8000);
    let answer_for_client = sdp::rewrite_candidates(ANSWER, &public, TcpCandidates::Drop).unwrap();
    assert!(answer_for_client
        .contains("a=candidate:0 1 udp 2130706431 203.0.113.10 8000 typ host generation 0\r\n"));

    let sessions = [(server.ufrag, IntegrityKey::new(server.pwd.as_bytes()))];
    let route = |datagram: &[u8]| -> Result<&str, Error> {
        assert_eq!(classify(datagram), PacketKind::Stun);
        let msg = Message::parse(datagram)?;
        let user = msg.ice_username()?;
        let (ufrag, key) = sessions
            .iter()
            .find(|(u, _)| *u == user.server)
            .ok_or(Error::BadUsername)?;
        msg.verify_integrity(key)?;
        Ok(ufrag)
    };

    let mut buf = [0u8; 256];
    let good = chrome_check(server.ufrag, client_ufrag, server.pwd.as_bytes(), &mut buf).to_vec();
    assert_eq!(route(&good), Ok("0a9n3c2f"));

    // A spoofer who knows the ufrags (they are not secret on the path) but not the password.
    let spoof = chrome_check(server.ufrag, client_ufrag, b"guess", &mut buf).to_vec();
    assert_eq!(route(&spoof), Err(Error::IntegrityMismatch));

    // The proxy can answer an unauthenticated check with 401.
    let msg = Message::parse(&spoof).unwrap();
    let mut out = [0u8; 64];
    let resp = binding_error_response(&msg, 401, "Unauthorized", &mut out).unwrap();
    assert_eq!(
        Message::parse(resp)
            .unwrap()
            .error_code()
            .unwrap()
            .map(|e| e.code),
        Some(401)
    );
}

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_file() {
            run(&std::fs::read(&path).unwrap());
            n += 1;
        }
    }
    n
}

#[test]
fn fuzz_corpus_replays_cleanly() {
    assert!(replay("stun_parse", harness::stun) > 0);
    assert!(replay("sdp_rewrite", harness::sdp) > 0);
    assert!(replay("candidate", harness::candidate) > 0);
    assert!(replay("router", harness::router) > 0);
}

/// The relay's consent request is a check the oracle accepts, keyed with the CLIENT's
/// password; a success the oracle writes (as the client's agent would) grants consent, and
/// one keyed with the server's password does not.
#[test]
fn consent_request_and_answer_cross_check() {
    use std::time::Instant;
    use stun_ufrag::consent::Consent;

    let (client, at) = (
        "client-pwd-from-the-offer-0123",
        SocketAddr::from(([198, 51, 100, 7], 40_000)),
    );
    let now = Instant::now();
    let mut c = Consent::new("EsAw", "2m8u6b05", client, 77, at, now).unwrap();
    let t = c
        .on_check(at, true, now, || TransactionId([5; 12]))
        .transmit
        .unwrap();
    let o = oracle_decode(&t.datagram);
    assert_eq!((o.class(), o.method()), (MessageClass::Request, BINDING));
    assert_eq!(
        o.get_attribute::<Username>().unwrap().name(),
        "EsAw:2m8u6b05"
    );
    assert_eq!(o.get_attribute::<IceControlled>().unwrap().prio(), 77);
    assert!(o.get_attribute::<IceControlling>().is_none());
    o.get_attribute::<MessageIntegrity>()
        .unwrap()
        .check_short_term_credential(client)
        .expect("the client's agent verifies the request with its own password");

    let answer = |pwd: &str, tid: u8| {
        let mut msg = OracleMessage::new(
            MessageClass::SuccessResponse,
            BINDING,
            oracle_tid([tid; 12]),
        );
        msg.add_attribute(XorMappedAddress::new(SocketAddr::from(([127, 0, 0, 1], 9))));
        oracle_sign(msg, pwd)
    };
    let wrong = answer("the-server-password-is-not-it", 5);
    assert!(c.on_response(at, &Message::parse(&wrong).unwrap(), now));
    assert!(!c.destination().consented);
    let t = c.poll(now + std::time::Duration::from_secs(5), || {
        TransactionId([6; 12])
    });
    assert_eq!(t.len(), 1);
    let right = answer(client, 6);
    assert!(c.on_response(at, &Message::parse(&right).unwrap(), now));
    assert!(c.destination().consented);
}
