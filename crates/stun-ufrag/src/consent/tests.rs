//! The consent policy with datagrams built and parsed by this crate, and a clock that is
//! only ever moved by the test.

use super::*;
use crate::stun::{binding_error_response, binding_success_response};

const CLIENT_UFRAG: &str = "cliU";
const SERVER_UFRAG: &str = "srvU";
const CLIENT_PWD: &str = "client-password-0123456789";
const SERVER_PWD: &str = "server-password-0123456789";

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], port))
}

/// A fake clock: a fixed origin plus what the test adds.
struct Clock(Instant);

impl Clock {
    fn at(&self, millis: u64) -> Instant {
        self.0 + Duration::from_millis(millis)
    }
}

/// Transaction ids 1, 2, 3... (the proxy uses random ones; predictability is what the
/// tests want here).
fn tids() -> impl FnMut() -> TransactionId {
    let mut n = 0u8;
    move || {
        n += 1;
        TransactionId([n; 12])
    }
}

fn session(first: SocketAddr, clock: &Clock) -> Consent {
    Consent::new(
        CLIENT_UFRAG,
        SERVER_UFRAG,
        CLIENT_PWD,
        0x0102_0304_0506_0708,
        first,
        clock.0,
    )
    .unwrap()
}

/// What the client's ICE agent answers to a request: a success keyed with its own pwd.
fn answer(request: &[u8], pwd: &str, from: SocketAddr) -> Vec<u8> {
    let req = Message::parse(request).unwrap();
    let mut buf = [0u8; 256];
    binding_success_response(&req, from, &IntegrityKey::new(pwd.as_bytes()), &mut buf)
        .unwrap()
        .to_vec()
}

/// Feeds `answer` to the session as coming from `from`.
fn respond(c: &mut Consent, from: SocketAddr, datagram: &[u8], now: Instant) -> bool {
    c.on_response(from, &Message::parse(datagram).unwrap(), now)
}

/// Makes `first` current and consented.
fn consented(first: SocketAddr, clock: &Clock, tid: &mut impl FnMut() -> TransactionId) -> Consent {
    let mut c = session(first, clock);
    let t = c.on_check(first, true, clock.0, tid).transmit.unwrap();
    assert!(respond(
        &mut c,
        first,
        &answer(&t.datagram, CLIENT_PWD, first),
        clock.0
    ));
    assert_eq!(
        c.destination(),
        Destination {
            addr: first,
            consented: true
        }
    );
    c
}

#[test]
fn the_request_is_what_an_ice_agent_expects() {
    let clock = Clock(Instant::now());
    let mut c = session(addr(1), &clock);
    let t = c
        .on_check(addr(1), false, clock.0, || TransactionId([0xab; 12]))
        .transmit
        .expect("the first address is asked");
    assert_eq!(t.to, addr(1));
    let m = Message::parse(&t.datagram).unwrap();
    assert!(m.is_binding_request());
    assert_eq!(m.transaction_id(), TransactionId([0xab; 12]));
    // The client's agent reads USERNAME as <its ufrag>:<the server's ufrag>.
    assert_eq!(m.username_bytes(), Some(&b"cliU:srvU"[..]));
    assert_eq!(m.ice_controlled().unwrap(), Some(0x0102_0304_0506_0708));
    assert_eq!(m.ice_controlling().unwrap(), None);
    assert_eq!(m.priority().unwrap(), Some(PRIORITY));
    assert!(!m.use_candidate());
    m.verify_password(CLIENT_PWD.as_bytes()).unwrap();
    assert_eq!(
        m.verify_password(SERVER_PWD.as_bytes()),
        Err(Error::IntegrityMismatch)
    );
    m.verify_fingerprint().unwrap();
    let types: Vec<u16> = m.attributes().map(|a| a.attr_type).collect();
    assert_eq!(types, [0x0006, 0x8029, 0x0024, 0x0008, 0x8028]);
    // The header, byte for byte: Binding request, length, cookie, transaction id.
    assert_eq!(
        &t.datagram[..20],
        &[
            0x00, 0x01, 0x00, 0x44, 0x21, 0x12, 0xa4, 0x42, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
            0xab, 0xab, 0xab, 0xab, 0xab, 0xab
        ]
    );
    assert_eq!(t.datagram.len(), 20 + 0x44);
}

#[test]
fn the_first_address_gets_media_only_once_it_answers() {
    let clock = Clock(Instant::now());
    let mut tid = tids();
    let mut c = session(addr(1), &clock);
    assert_eq!(
        c.destination(),
        Destination {
            addr: addr(1),
            consented: false
        }
    );
    let t = c
        .on_check(addr(1), true, clock.0, &mut tid)
        .transmit
        .unwrap();
    // Retransmissions of the check do not send another request while one is in flight.
    assert_eq!(
        c.on_check(addr(1), true, clock.at(10), &mut tid),
        CheckOutcome::default()
    );
    // An answer keyed with the server's password, or from another address, proves nothing.
    let forged = answer(&t.datagram, SERVER_PWD, addr(1));
    assert!(
        respond(&mut c, addr(1), &forged, clock.at(20)),
        "ours to consume"
    );
    assert!(!c.destination().consented);
    let t = c.poll(clock.at(5_000), &mut tid);
    assert_eq!(t.len(), 1, "asked again: {t:?}");
    let good = answer(&t[0].datagram, CLIENT_PWD, addr(1));
    assert!(
        !respond(&mut c, addr(9), &good, clock.at(5_010)),
        "not from the address asked"
    );
    assert!(!c.destination().consented);
    assert!(respond(&mut c, addr(1), &good, clock.at(5_020)));
    assert!(c.destination().consented);
    // A retransmitted answer is swallowed too; the server never asked.
    assert!(respond(&mut c, addr(1), &good, clock.at(5_030)));
}

#[test]
fn forged_checks_never_move_media_to_an_address_that_does_not_answer() {
    let clock = Clock(Instant::now());
    let mut tid = tids();
    let mut c = consented(addr(1), &clock, &mut tid);
    let victim = addr(666);
    // A valid, nominating check with the victim's address as its source.
    let out = c.on_check(victim, true, clock.at(100), &mut tid);
    let asked = out.transmit.expect("the victim's address is asked");
    assert_eq!(asked.to, victim);
    assert_eq!(c.destination().addr, addr(1), "media stays with the client");
    // More forged checks while the request is in flight send nothing more.
    for ms in (200..1_000).step_by(50) {
        assert_eq!(
            c.on_check(victim, true, clock.at(ms), &mut tid).transmit,
            None
        );
    }
    // The forger, at its real address, answers the victim's request: it is not the address
    // asked, so this is not the relay's answer, and nothing moves.
    let forged = answer(&asked.datagram, CLIENT_PWD, victim);
    assert!(!respond(&mut c, addr(1), &forged, clock.at(300)));
    // A guessed transaction id from the victim's address: not ours either.
    let guess = {
        let req = {
            let mut r = asked.datagram.clone();
            r[8] ^= 1;
            r
        };
        answer(&req, CLIENT_PWD, victim)
    };
    assert!(!respond(&mut c, victim, &guess, clock.at(400)));
    // Retransmissions, then the request is given up; the victim got five small requests.
    let mut to_victim = 1;
    for ms in (0..20_000).step_by(250) {
        to_victim += c
            .poll(clock.at(ms), &mut tid)
            .iter()
            .filter(|t| t.to == victim)
            .count();
        // The client keeps using its address.
        c.on_traffic(addr(1), clock.at(ms), &mut tid);
        if ms % 5_000 == 0 {
            for t in c.poll(clock.at(ms), &mut tid) {
                assert_eq!(t.to, addr(1));
            }
        }
    }
    assert_eq!(to_victim, usize::from(MAX_TRANSMITS));
    assert_eq!(c.destination().addr, addr(1));
}

#[test]
fn a_client_that_moves_is_followed_once_its_new_address_answers() {
    let clock = Clock(Instant::now());
    let mut tid = tids();
    let mut c = consented(addr(1), &clock, &mut tid);
    let t = c
        .on_check(addr(2), true, clock.at(100), &mut tid)
        .transmit
        .unwrap();
    assert_eq!(c.destination().addr, addr(1));
    assert!(respond(
        &mut c,
        addr(2),
        &answer(&t.datagram, CLIENT_PWD, addr(2)),
        clock.at(120)
    ));
    assert_eq!(
        c.destination(),
        Destination {
            addr: addr(2),
            consented: true
        }
    );
    // Back to the first address: it still has consent, a nominating check is enough.
    assert_eq!(
        c.on_check(addr(1), true, clock.at(200), &mut tid).transmit,
        None
    );
    assert_eq!(c.destination().addr, addr(1));
    // Media from the consented second address takes it back at once.
    assert_eq!(c.on_traffic(addr(2), clock.at(300), &mut tid), None);
    assert_eq!(c.destination().addr, addr(2));
}

#[test]
fn a_rebinding_seen_in_media_first_is_asked_and_followed() {
    let clock = Clock(Instant::now());
    let mut tid = tids();
    let mut c = consented(addr(1), &clock, &mut tid);
    // The address is the session's (a valid check came from it) but has not consented;
    // a non-nominating check while the current one is busy does not want it yet.
    let t = c
        .on_check(addr(2), false, clock.at(100), &mut tid)
        .transmit
        .unwrap();
    c.on_traffic(addr(1), clock.at(150), &mut tid);
    assert!(respond(
        &mut c,
        addr(2),
        &answer(&t.datagram, CLIENT_PWD, addr(2)),
        clock.at(160)
    ));
    assert_eq!(c.destination().addr, addr(1), "consented, but not wanted");
    // Then media comes from it: the client is there now.
    assert_eq!(c.on_traffic(addr(2), clock.at(200), &mut tid), None);
    assert_eq!(c.destination().addr, addr(2));
    // A third address sending media (and a check before it) is asked, then followed.
    let _ = c.on_check(addr(3), false, clock.at(300), &mut tid);
    let Some(Transmit { datagram, .. }) = c
        .poll(clock.at(900), &mut tid)
        .into_iter()
        .find(|t| t.to == addr(3))
    else {
        panic!("the retransmission to the third address");
    };
    assert_eq!(
        c.on_traffic(addr(3), clock.at(950), &mut tid),
        None,
        "in flight"
    );
    assert!(respond(
        &mut c,
        addr(3),
        &answer(&datagram, CLIENT_PWD, addr(3)),
        clock.at(960)
    ));
    assert_eq!(c.destination().addr, addr(3));
}

#[test]
fn a_silent_current_address_gives_way_to_any_consented_check() {
    let clock = Clock(Instant::now());
    let mut tid = tids();
    let mut c = consented(addr(1), &clock, &mut tid);
    let t = c
        .on_check(addr(2), false, clock.at(100), &mut tid)
        .transmit
        .unwrap();
    c.on_traffic(addr(1), clock.at(500), &mut tid);
    assert!(respond(
        &mut c,
        addr(2),
        &answer(&t.datagram, CLIENT_PWD, addr(2)),
        clock.at(510)
    ));
    assert_eq!(c.destination().addr, addr(1));
    c.on_traffic(addr(1), clock.at(900), &mut tid);
    assert_eq!(
        c.on_check(addr(2), false, clock.at(1_500), &mut tid)
            .transmit,
        None
    );
    assert_eq!(
        c.destination().addr,
        addr(1),
        "the current one spoke 0.6 s ago"
    );
    assert_eq!(
        c.on_check(addr(2), false, clock.at(1_900), &mut tid)
            .transmit,
        None
    );
    assert_eq!(c.destination().addr, addr(2), "silent for 1 s");
}

#[test]
fn consent_is_refreshed_and_runs_out_thirty_seconds_after_the_last_answer() {
    let clock = Clock(Instant::now());
    let mut tid = tids();
    let mut c = consented(addr(1), &clock, &mut tid);
    let mut refreshes = Vec::new();
    for ms in (250..=4_750).step_by(250) {
        assert!(c.poll(clock.at(ms), &mut tid).is_empty(), "{ms}");
    }
    let t = c.poll(clock.at(5_000), &mut tid);
    assert_eq!(t.len(), 1);
    refreshes.push(t[0].clone());
    // Answered late, at 20 s: consent now lasts until 50 s.
    assert!(respond(
        &mut c,
        addr(1),
        &answer(&t[0].datagram, CLIENT_PWD, addr(1)),
        clock.at(20_000)
    ));
    for ms in (5_250..50_000).step_by(250) {
        let _ = c.poll(clock.at(ms), &mut tid);
        assert!(c.destination().consented, "{ms}");
    }
    let _ = c.poll(clock.at(50_000), &mut tid);
    assert_eq!(
        c.destination(),
        Destination {
            addr: addr(1),
            consented: false
        },
        "no answer for 30 s: media stops"
    );
    // The next answer restores it.
    let t = c.poll(clock.at(60_000), &mut tid);
    let t = t.first().expect("still asking");
    assert!(respond(
        &mut c,
        addr(1),
        &answer(&t.datagram, CLIENT_PWD, addr(1)),
        clock.at(60_010)
    ));
    assert!(c.destination().consented);
}

#[test]
fn an_error_answer_is_consumed_and_grants_nothing() {
    let clock = Clock(Instant::now());
    let mut tid = tids();
    let mut c = session(addr(1), &clock);
    let t = c
        .on_check(addr(1), true, clock.0, &mut tid)
        .transmit
        .unwrap();
    let req = Message::parse(&t.datagram).unwrap();
    let mut buf = [0u8; 128];
    let error = binding_error_response(&req, 487, "Role Conflict", &mut buf).unwrap();
    assert!(respond(&mut c, addr(1), error, clock.at(10)));
    assert!(!c.destination().consented);
    // A response to a request the relay never sent (the server's own checks) is the
    // server's.
    let other = answer(
        &BindingRequestBytes::new(TransactionId([0x77; 12])).0,
        CLIENT_PWD,
        addr(1),
    );
    assert!(!respond(&mut c, addr(1), &other, clock.at(20)));
}

/// A request with the given transaction id (whatever it says).
struct BindingRequestBytes(Vec<u8>);

impl BindingRequestBytes {
    fn new(tid: TransactionId) -> Self {
        let mut buf = [0u8; 64];
        let b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, tid).unwrap();
        BindingRequestBytes(b.finish().to_vec())
    }
}

#[test]
fn requests_are_rate_limited_per_session() {
    let clock = Clock(Instant::now());
    let mut tid = tids();
    let mut c = consented(addr(1), &clock, &mut tid);
    // A flood of forged checks from ever new addresses, 1000 a second for 2 s.
    let mut sent = 0;
    for i in 0..2_000u16 {
        let out = c.on_check(addr(1_000 + i), true, clock.at(u64::from(i)), &mut tid);
        sent += usize::from(out.transmit.is_some());
        if let Some(gone) = out.evicted {
            assert_ne!(gone, addr(1), "the current address is never dropped");
        }
        assert!(c.len() <= MAX_PATHS);
    }
    // The burst (less the one the first address used), then one per REFILL.
    let most = BURST as usize - 1 + 2_000 / REFILL.as_millis() as usize;
    assert!(sent <= most, "{sent} requests, at most {most}");
    assert!(sent >= most - 1, "the budget refills: {sent}");
    assert_eq!(c.destination().addr, addr(1));
}

#[test]
fn the_oldest_other_address_makes_room_and_forget_keeps_the_current_one() {
    let clock = Clock(Instant::now());
    let mut tid = tids();
    let mut c = consented(addr(1), &clock, &mut tid);
    for (i, port) in [2u16, 3, 4].into_iter().enumerate() {
        let out = c.on_check(addr(port), false, clock.at(i as u64 * 300), &mut tid);
        assert_eq!(out.evicted, None);
    }
    assert_eq!(c.len(), MAX_PATHS);
    let out = c.on_check(addr(5), false, clock.at(2_000), &mut tid);
    assert_eq!(out.evicted, Some(addr(2)));
    assert_eq!(
        c.addrs().collect::<Vec<_>>(),
        [addr(1), addr(3), addr(4), addr(5)]
    );
    c.forget(addr(1));
    c.forget(addr(4));
    assert_eq!(c.addrs().collect::<Vec<_>>(), [addr(1), addr(3), addr(5)]);
    assert!(c.contains(addr(5)) && !c.contains(addr(4)));
    // Traffic from an address the session does not have changes nothing.
    assert_eq!(c.on_traffic(addr(4), clock.at(2_100), &mut tid), None);
    assert_eq!(c.len(), 3);
}

#[test]
fn over_long_ufrags_are_refused() {
    let long = "u".repeat(400);
    assert!(Consent::new(&long, &long, CLIENT_PWD, 0, addr(1), Instant::now()).is_err());
}

#[test]
fn only_stun_and_dtls_handshake_precede_consent() {
    let mut stun = [0u8; 64];
    let stun = MessageBuilder::new(
        &mut stun,
        MessageType::BINDING_SUCCESS,
        TransactionId([1; 12]),
    )
    .unwrap()
    .finish()
    .to_vec();
    assert!(may_precede_consent(&stun));
    for handshake in [20u8, 21, 22] {
        assert!(
            may_precede_consent(&[handshake, 0xfe, 0xfd, 0, 0]),
            "{handshake}"
        );
    }
    // DTLS application data (data channels), DTLS 1.3 ciphertext, SRTP, SRTCP, junk.
    for media in [
        &[23u8, 0xfe, 0xfd, 0, 0][..],
        &[0x2c, 0, 0, 0],
        &[0x80, 0x60, 0, 1],
        &[0x80, 0xc8, 0, 6],
        &[0xff, 0],
        &[],
    ] {
        assert!(!may_precede_consent(media), "{media:?}");
    }
}
