//! The router's decisions with datagrams built and parsed by this crate, and a clock only
//! the test moves: no sockets, no sleeping.

use super::*;
use crate::consent::{BURST, LIFETIME, REFRESH, RTO};
use crate::stun::binding_success_response;
use crate::{BindingRequest, IceRole};

const SRV: &str = "srvU";
const SRV_PWD: &str = "server-password-0123456789";
const CLI: &str = "cliU";
const CLI_PWD: &str = "client-password-0123456789";

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

fn config() -> Config {
    Config {
        idle_timeout: Duration::from_secs(30),
        known_ttl: Duration::from_secs(60),
        renew_every: Duration::from_secs(20),
        max_sessions: 100,
    }
}

/// Predictable "random" bytes: a counter (the proxy uses the system's CSPRNG).
fn counter() -> Random {
    let mut n = 0u8;
    Box::new(move |buf: &mut [u8]| {
        n = n.wrapping_add(1);
        buf.fill(n);
    })
}

fn router(clock: &Clock) -> Router<&'static str> {
    Router::new(config(), counter(), clock.0)
}

fn known(server: &str, data: &'static str) -> Known<&'static str> {
    Known {
        server_ufrag: server.into(),
        server_pwd: SRV_PWD.into(),
        client_ufrag: CLI.into(),
        client_pwd: CLI_PWD.into(),
        data,
    }
}

/// A client's connectivity check, as a browser signs it.
fn check_with(server: &str, client: &str, pwd: &str, nominate: bool, tid: u8) -> Vec<u8> {
    let mut buf = [0u8; 512];
    BindingRequest {
        transaction_id: TransactionId([tid; 12]),
        server_ufrag: server,
        client_ufrag: client,
        priority: 1_853_824_767,
        role: IceRole::Controlling(7),
        use_candidate: nominate,
        network_info: None,
    }
    .encode(&IntegrityKey::new(pwd.as_bytes()), &mut buf)
    .unwrap()
    .to_vec()
}

fn check(tid: u8) -> Vec<u8> {
    check_with(SRV, CLI, SRV_PWD, true, tid)
}

/// What the client's ICE agent answers to the router's request, keyed with `pwd`.
fn answer(request: &[u8], pwd: &str, from: SocketAddr) -> Vec<u8> {
    let req = Message::parse(request).unwrap();
    let mut buf = [0u8; 256];
    binding_success_response(&req, from, &IntegrityKey::new(pwd.as_bytes()), &mut buf)
        .unwrap()
        .to_vec()
}

/// The origin's answer to a client's check (the router does not look inside).
fn origin_answer(tid: u8) -> Vec<u8> {
    let mut d = vec![0x01, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42];
    d.extend_from_slice(&[tid; 12]);
    d
}

const RTP: &[u8] = &[0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];

fn transmits<T>(r: &mut Router<T>) -> Vec<Transmit> {
    std::iter::from_fn(|| r.poll_transmit()).collect()
}

fn events<T>(r: &mut Router<T>) -> Vec<Event<T>> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

/// The one consent request queued, to `to`.
fn request_to<T>(r: &mut Router<T>, to: SocketAddr) -> Vec<u8> {
    let out = transmits(r);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].to, Target::Client(to));
    out[0].datagram.clone()
}

/// A primed session opened by a check from `a` whose consent `a` gave.
fn live(clock: &Clock, a: SocketAddr) -> (Router<&'static str>, SessionId) {
    let mut r = router(clock);
    r.prime(clock.0, known(SRV, "cam"));
    let Action::Open(id) = r.handle_datagram(clock.0, a, &check(1)) else {
        panic!("the check opens the session");
    };
    let request = request_to(&mut r, a);
    assert_eq!(
        r.handle_datagram(clock.0, a, &answer(&request, CLI_PWD, a)),
        Action::Consumed
    );
    events(&mut r);
    (r, id)
}

#[test]
fn a_primed_session_opens_on_its_first_authentic_check_and_asks_for_consent() {
    let clock = Clock(Instant::now());
    let mut r = router(&clock);
    r.prime(clock.0, known(SRV, "cam"));
    let a = addr(1);
    let first = check(1);
    let Action::Open(id) = r.handle_datagram(clock.0, a, &first) else {
        panic!("opens");
    };
    assert_eq!(r.session(id), Some(&"cam"));
    assert_eq!(r.len(), 1);
    // The router's own request: USERNAME <client>:<server>, keyed with the client's pwd.
    let request = request_to(&mut r, a);
    let msg = Message::parse(&request).unwrap();
    assert!(msg.is_binding_request());
    assert_eq!(msg.username_bytes(), Some(&b"cliU:srvU"[..]));
    msg.verify_password(CLI_PWD.as_bytes()).unwrap();
    msg.verify_fingerprint().unwrap();
    // Until then the origin's media is held; its answers to checks and DTLS pass.
    let held = Action::Drop(DropReason::HeldForConsent);
    assert_eq!(r.handle_origin_datagram(id, RTP), held);
    assert_eq!(
        r.handle_origin_datagram(id, &[22, 0xfe, 0xfd]),
        Action::ToClient(a)
    );
    assert_eq!(
        r.handle_origin_datagram(id, &origin_answer(1)),
        Action::ToClient(a)
    );
    // Media and DTLS from the client go to the origin at once.
    assert_eq!(r.handle_datagram(clock.0, a, RTP), Action::ToOrigin(id));
    assert_eq!(
        r.handle_datagram(clock.0, a, &[22, 0xfe, 0xfd]),
        Action::ToOrigin(id)
    );
    // An answer keyed with the server's password (which the whole answer SDP gives away)
    // is the router's, grants nothing, and is not relayed.
    let wrong = answer(&request, SRV_PWD, a);
    assert_eq!(r.handle_datagram(clock.at(10), a, &wrong), Action::Consumed);
    assert_eq!(r.handle_origin_datagram(id, RTP), held);
    assert!(events(&mut r).is_empty(), "nothing changed");
    // The client checks again and is asked again; its own answer grants consent.
    assert_eq!(
        r.handle_datagram(clock.at(20), a, &first),
        Action::ToOrigin(id)
    );
    let request = request_to(&mut r, a);
    let right = answer(&request, CLI_PWD, a);
    assert_eq!(r.handle_datagram(clock.at(30), a, &right), Action::Consumed);
    assert_eq!(r.handle_origin_datagram(id, RTP), Action::ToClient(a));
    let ev = events(&mut r);
    assert!(
        matches!(&ev[..], [Event::Downlink { session, downlink, previous }]
            if *session == id && downlink.destination().consented && !previous.consented),
        "{ev:?}"
    );
    // A retransmitted answer is swallowed too.
    assert_eq!(r.handle_datagram(clock.at(40), a, &right), Action::Consumed);
}

#[test]
fn bad_checks_and_strangers_are_dropped_and_change_nothing() {
    let clock = Clock(Instant::now());
    let a = addr(1);
    let (mut r, id) = live(&clock, a);
    let b = addr(2);
    let valid = check(2);
    let mut tampered = valid.clone();
    let at = tampered.len() - 8 - 24 - 1;
    tampered[at] ^= 0xff;
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (vec![0x00; 3], DropReason::BadStun),
        (
            b"\x00\x01\x00\x08\x21\x12\xa4\x42not-a-stun-message!!".to_vec(),
            DropReason::BadStun,
        ),
        (valid[..30].to_vec(), DropReason::BadStun),
        (
            check_with(SRV, CLI, "wrong-password-0123456789", true, 3),
            DropReason::FailedIntegrity,
        ),
        (
            check_with(SRV, "someoneelse", SRV_PWD, true, 4),
            DropReason::FailedIntegrity,
        ),
        (tampered, DropReason::FailedIntegrity),
        (vec![0x17, 0xfe, 0xfd, 0, 1], DropReason::UnknownSender),
        (RTP.to_vec(), DropReason::UnknownSender),
        (origin_answer(9), DropReason::BadStun),
        (vec![], DropReason::UnknownSender),
    ];
    for (datagram, reason) in &cases {
        assert_eq!(
            r.handle_datagram(clock.at(10), b, datagram),
            Action::Drop(*reason),
            "{datagram:?}"
        );
    }
    assert!(
        transmits(&mut r).is_empty(),
        "nothing goes back to the sender"
    );
    assert!(events(&mut r).is_empty());
    assert_eq!(r.addrs(id).collect::<Vec<_>>(), [a]);
    assert_eq!(r.handle_origin_datagram(id, RTP), Action::ToClient(a));
    // From a bound address, what RFC 7983 does not name is dropped too.
    assert_eq!(
        r.handle_datagram(clock.at(10), a, &[0x50, 1]),
        Action::Drop(DropReason::UnknownSender)
    );
    assert_eq!(
        r.handle_datagram(clock.at(10), a, &[0x00, 0x01, 0x00]),
        Action::Drop(DropReason::BadStun)
    );
    // Counted, and reported once the period is over.
    r.handle_timeout(clock.0 + REPORT_EVERY);
    let reports: Vec<DropCounts> = events(&mut r)
        .into_iter()
        .filter_map(|e| match e {
            Event::Report(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(
        reports,
        [DropCounts {
            unknown_sender: 4,
            bad_stun: 5,
            failed_integrity: 3,
            ..DropCounts::default()
        }]
    );
}

#[test]
fn a_new_address_gets_media_only_once_it_consents_then_is_followed() {
    let clock = Clock(Instant::now());
    let a = addr(1);
    let (mut r, id) = live(&clock, a);
    let b = addr(2);
    // A valid nominating check from B: the origin hears it; B is asked; media stays at A.
    assert_eq!(
        r.handle_datagram(clock.at(100), b, &check(2)),
        Action::ToOrigin(id)
    );
    let request = request_to(&mut r, b);
    assert_eq!(r.handle_origin_datagram(id, RTP), Action::ToClient(a));
    // Two addresses: the origin's answer to B's check goes to B, the rest to A.
    let ev = events(&mut r);
    let Some(Event::Downlink { downlink, .. }) = ev.last() else {
        panic!("{ev:?}");
    };
    assert_eq!(downlink.route(&origin_answer(2)), Action::ToClient(b));
    assert_eq!(
        r.handle_origin_datagram(id, &origin_answer(2)),
        Action::ToClient(b)
    );
    assert_eq!(
        r.handle_origin_datagram(id, &origin_answer(1)),
        Action::ToClient(a)
    );
    // B answers: the session moves there.
    let answered = answer(&request, CLI_PWD, b);
    assert_eq!(
        r.handle_datagram(clock.at(150), b, &answered),
        Action::Consumed
    );
    assert_eq!(r.handle_origin_datagram(id, RTP), Action::ToClient(b));
    let ev = events(&mut r);
    assert!(
        matches!(&ev[..], [Event::Downlink { downlink, previous, .. }]
            if downlink.destination().addr == b && previous.addr == a),
        "{ev:?}"
    );
    // A stays bound (its late packets still reach the origin).
    assert_eq!(
        r.handle_datagram(clock.at(160), a, RTP),
        Action::ToOrigin(id)
    );
}

#[test]
fn forged_sources_cost_a_bounded_number_of_requests_and_never_get_media() {
    let clock = Clock(Instant::now());
    let a = addr(1);
    let (mut r, id) = live(&clock, a);
    let victim = addr(666);
    let mut asked = 0;
    for i in 0..15u64 {
        let now = clock.at(100 + 200 * i);
        assert_eq!(
            r.handle_datagram(now, victim, &check(50 + i as u8)),
            Action::ToOrigin(id)
        );
        // The client goes on sending media from A.
        assert_eq!(r.handle_datagram(now, a, RTP), Action::ToOrigin(id));
        r.handle_timeout(now);
        asked += transmits(&mut r)
            .iter()
            .filter(|t| t.to == Target::Client(victim))
            .count();
        assert_eq!(r.handle_origin_datagram(id, RTP), Action::ToClient(a));
    }
    assert!((1..=10).contains(&asked), "asked {asked} times");
    assert!(events(&mut r).iter().all(|e| match e {
        Event::Downlink { downlink, .. } => downlink.destination().addr == a,
        _ => true,
    }));
}

#[test]
fn unknown_ufrags_are_looked_up_once_and_the_latest_check_replayed() {
    let clock = Clock(Instant::now());
    let mut r = router(&clock);
    let (a, a2) = (addr(1), addr(3));
    assert_eq!(
        r.handle_datagram(clock.0, a, &check(1)),
        Action::Lookup(SRV.into())
    );
    // A retransmission (from a new address, say) while the lookup runs: kept instead.
    assert_eq!(
        r.handle_datagram(clock.at(50), a2, &check(2)),
        Action::Consumed
    );
    let Action::Open(id) = r.handle_lookup(clock.at(100), SRV, Some(known(SRV, "found"))) else {
        panic!("the replayed check opens the session");
    };
    assert_eq!(r.session(id), Some(&"found"));
    let out = transmits(&mut r);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out.contains(&Transmit {
        session: id,
        to: Target::Origin,
        datagram: check(2)
    }));
    assert!(
        out.iter().any(|t| t.to == Target::Client(a2)),
        "consent request"
    );
    assert_eq!(r.addrs(id).collect::<Vec<_>>(), [a2]);
    // A lookup nobody asked for (or answered twice) is ignored.
    assert_eq!(r.handle_lookup(clock.at(100), SRV, None), Action::Consumed);
}

#[test]
fn missing_ufrags_are_not_looked_up_again_for_a_while() {
    let clock = Clock(Instant::now());
    let mut r = router(&clock);
    let a = addr(1);
    assert_eq!(
        r.handle_datagram(clock.0, a, &check(1)),
        Action::Lookup(SRV.into())
    );
    assert_eq!(
        r.handle_lookup(clock.at(10), SRV, None),
        Action::Drop(DropReason::UnknownUfrag)
    );
    assert_eq!(
        r.handle_datagram(clock.at(20), a, &check(2)),
        Action::Drop(DropReason::UnknownUfrag)
    );
    let later = clock.at(10) + MISSING_FOR + SWEEP_EVERY;
    r.handle_timeout(later);
    assert_eq!(
        r.handle_datagram(later, a, &check(3)),
        Action::Lookup(SRV.into())
    );
    // Priming takes a ufrag off the missing list at once.
    let mut r = router(&clock);
    r.handle_datagram(clock.0, a, &check(1));
    r.handle_lookup(clock.0, SRV, None);
    r.prime(clock.0, known(SRV, "signalled"));
    assert!(matches!(
        r.handle_datagram(clock.0, a, &check(2)),
        Action::Open(_)
    ));
}

#[test]
fn lookups_are_rate_limited_and_bounded() {
    let clock = Clock(Instant::now());
    let mut r = router(&clock);
    let ufrag = |i: usize| format!("u{i}");
    let mut started = 0;
    for i in 0..100 {
        let c = check_with(&ufrag(i), CLI, SRV_PWD, true, 1);
        match r.handle_datagram(clock.0, addr(1), &c) {
            Action::Lookup(u) => {
                assert_eq!(u, ufrag(i));
                started += 1;
            }
            Action::Drop(DropReason::UnknownUfrag) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(started, LOOKUPS_PER_WINDOW as usize, "per window");
    // Later windows start more, up to MAX_PENDING in flight.
    let mut now = clock.0;
    let mut i = 100;
    while started < MAX_PENDING + 10 && i < 10_000 {
        now += LOOKUP_WINDOW;
        for _ in 0..LOOKUPS_PER_WINDOW {
            let c = check_with(&ufrag(i), CLI, SRV_PWD, true, 1);
            if let Action::Lookup(_) = r.handle_datagram(now, addr(1), &c) {
                started += 1;
            }
            i += 1;
        }
    }
    assert_eq!(started, MAX_PENDING, "no more than MAX_PENDING in flight");
    // An answer frees a place.
    r.handle_lookup(now, &ufrag(0), None);
    now += LOOKUP_WINDOW;
    let c = check_with("fresh", CLI, SRV_PWD, true, 1);
    assert_eq!(
        r.handle_datagram(now, addr(1), &c),
        Action::Lookup("fresh".into())
    );
    // An oversized check is not kept.
    let mut big = check_with("big", CLI, SRV_PWD, true, 1);
    big.resize(MAX_QUEUED_CHECK + 4, 0);
    assert!(matches!(
        r.handle_datagram(now, addr(2), &big),
        Action::Drop(_)
    ));
}

#[test]
fn idle_sessions_close_and_forget_their_addresses() {
    let clock = Clock(Instant::now());
    let a = addr(1);
    let (mut r, id) = live(&clock, a);
    let idle = config().idle_timeout;
    // Traffic keeps it open.
    assert_eq!(
        r.handle_datagram(clock.0 + idle / 2, a, RTP),
        Action::ToOrigin(id)
    );
    r.handle_timeout(clock.0 + idle);
    assert!(!events(&mut r)
        .iter()
        .any(|e| matches!(e, Event::Closed { .. })));
    let deadline = clock.0 + idle / 2 + idle;
    assert!(r.poll_timeout().is_some_and(|t| t <= clock.0 + idle + TICK));
    r.handle_timeout(deadline);
    let ev = events(&mut r);
    assert!(
        ev.contains(&Event::Closed {
            session: id,
            reason: CloseReason::Idle,
            data: "cam"
        }),
        "{ev:?}"
    );
    assert!(r.is_empty());
    assert_eq!(r.session(id), None);
    assert_eq!(
        r.handle_datagram(deadline, a, RTP),
        Action::Drop(DropReason::UnknownSender)
    );
    // Its ufrag is no longer known here: the next check is looked up again.
    assert_eq!(
        r.handle_datagram(deadline, a, &check(9)),
        Action::Lookup(SRV.into())
    );
}

#[test]
fn consent_is_refreshed_and_lapses_without_answers() {
    let clock = Clock(Instant::now());
    let a = addr(1);
    let (mut r, id) = live(&clock, a);
    let mut now = clock.0;
    let mut refreshes = 0;
    // The client keeps sending media, and never answers again.
    while now < clock.0 + LIFETIME + TICK {
        now += TICK;
        r.handle_datagram(now, a, RTP);
        r.handle_timeout(now);
        refreshes += transmits(&mut r).len();
    }
    assert!(refreshes >= 2, "asked again every {REFRESH:?}: {refreshes}");
    assert_eq!(
        r.handle_origin_datagram(id, RTP),
        Action::Drop(DropReason::HeldForConsent),
        "consent lapsed {LIFETIME:?} after the last answer"
    );
    assert!(events(&mut r).iter().any(|e| matches!(e,
        Event::Downlink { downlink, .. } if !downlink.destination().consented)));
}

#[test]
fn consent_requests_are_retransmitted_with_backoff() {
    let clock = Clock(Instant::now());
    let mut r = router(&clock);
    r.prime(clock.0, known(SRV, "cam"));
    let a = addr(1);
    assert!(matches!(
        r.handle_datagram(clock.0, a, &check(1)),
        Action::Open(_)
    ));
    let first = request_to(&mut r, a);
    let mut sent = vec![first];
    let mut now = clock.0;
    while now < clock.0 + Duration::from_secs(4) {
        now += TICK;
        r.handle_datagram(now, a, RTP);
        r.handle_timeout(now);
        sent.extend(transmits(&mut r).into_iter().map(|t| t.datagram));
    }
    // 0, 0.5, 1.5, 3.5 s: the same transaction each time.
    assert_eq!(sent.len(), 4, "{}", sent.len());
    assert!(sent.windows(2).all(|w| w[0] == w[1]));
    assert!(sent.len() <= BURST as usize + 4);
    let _ = RTO;
}

#[test]
fn forget_and_cut_close_sessions_and_abort_undoes_an_open() {
    let clock = Clock(Instant::now());
    let a = addr(1);
    let (mut r, id) = live(&clock, a);
    r.forget(SRV);
    assert_eq!(
        events(&mut r),
        [Event::Closed {
            session: id,
            reason: CloseReason::Deleted,
            data: "cam"
        }]
    );
    assert_eq!(
        r.handle_datagram(clock.0, a, RTP),
        Action::Drop(DropReason::UnknownSender)
    );
    assert!(!r.close(id, CloseReason::Closed("again")), "already closed");
    // A forgotten primed ufrag does not open either.
    r.prime(clock.0, known("other", "x"));
    r.forget("other");
    let c = check_with("other", CLI, SRV_PWD, true, 1);
    assert_eq!(
        r.handle_datagram(clock.0, a, &c),
        Action::Lookup("other".into())
    );

    // Closed by the caller (its origin went down).
    let (mut r, id) = live(&clock, a);
    assert!(r.close(id, CloseReason::Closed("origin marked down")));
    let ev = events(&mut r);
    assert!(matches!(&ev[..], [Event::Closed { reason, .. }]
        if reason.as_str() == "origin marked down"));

    // The caller could not set the session up: it goes without an event, with its
    // consent requests.
    let mut r = router(&clock);
    r.prime(clock.0, known(SRV, "cam"));
    let Action::Open(id) = r.handle_datagram(clock.0, a, &check(1)) else {
        panic!("opens");
    };
    assert_eq!(r.abort(id), Some("cam"));
    assert!(transmits(&mut r).is_empty());
    assert!(events(&mut r).is_empty());
    assert!(r.is_empty());
    // The slot is reused by the next session; the old id names nothing.
    r.prime(clock.0, known("next", "next"));
    let Action::Open(next) =
        r.handle_datagram(clock.0, a, &check_with("next", CLI, SRV_PWD, true, 2))
    else {
        panic!("opens");
    };
    assert_eq!(next.slot(), id.slot());
    assert_ne!(next, id);
    assert_eq!(r.session(id), None);
    assert!(!r.close(id, CloseReason::Idle));
}

#[test]
fn an_address_moves_to_the_session_its_authentic_check_names() {
    let clock = Clock(Instant::now());
    let a = addr(1);
    let (mut r, first) = live(&clock, a);
    r.prime(clock.0, known("second", "two"));
    let c = check_with("second", CLI, SRV_PWD, true, 5);
    let Action::Open(second) = r.handle_datagram(clock.at(10), a, &c) else {
        panic!("an ICE restart from the same address opens the new session");
    };
    assert_eq!(
        r.handle_datagram(clock.at(20), a, RTP),
        Action::ToOrigin(second)
    );
    assert_eq!(
        r.addrs(first).collect::<Vec<_>>(),
        [a],
        "the current address stays"
    );
    assert_eq!(r.addrs(second).collect::<Vec<_>>(), [a]);
}

#[test]
fn limits_shutdown_renewals_and_expiry() {
    let clock = Clock(Instant::now());
    let a = addr(1);
    let mut r: Router<&str> = Router::new(
        Config {
            max_sessions: 1,
            ..config()
        },
        counter(),
        clock.0,
    );
    r.prime(clock.0, known(SRV, "one"));
    r.prime(clock.0, known("two", "two"));
    assert!(matches!(
        r.handle_datagram(clock.0, a, &check(1)),
        Action::Open(_)
    ));
    let c2 = check_with("two", CLI, SRV_PWD, true, 2);
    assert_eq!(
        r.handle_datagram(clock.0, addr(2), &c2),
        Action::Drop(DropReason::TooManySessions)
    );
    // Renewals name the live sessions.
    r.handle_timeout(clock.0 + config().renew_every);
    assert!(events(&mut r).contains(&Event::Renew(vec![SRV.to_owned()])));
    // Room again: the primed session still opens.
    r.forget(SRV);
    assert!(matches!(
        r.handle_datagram(clock.at(10), addr(2), &c2),
        Action::Open(_)
    ));

    // Shutting down: no new session, open ones go on.
    let (mut r, id) = live(&clock, a);
    r.prime(clock.0, known("late", "late"));
    r.stop_accepting();
    let late = check_with("late", CLI, SRV_PWD, true, 3);
    assert_eq!(
        r.handle_datagram(clock.0, addr(2), &late),
        Action::Drop(DropReason::NotAccepting)
    );
    let unknown = check_with("unknown", CLI, SRV_PWD, true, 3);
    assert_eq!(
        r.handle_datagram(clock.0, addr(2), &unknown),
        Action::Drop(DropReason::UnknownUfrag)
    );
    assert_eq!(r.handle_datagram(clock.0, a, RTP), Action::ToOrigin(id));

    // A primed ufrag no check came for is forgotten after known_ttl.
    let mut r = router(&clock);
    r.prime(clock.0, known(SRV, "cam"));
    let expired = clock.0 + config().known_ttl + SWEEP_EVERY;
    r.handle_timeout(expired);
    assert_eq!(
        r.handle_datagram(expired, a, &check(1)),
        Action::Lookup(SRV.into())
    );
}

#[test]
fn a_lower_cap_set_live_refuses_new_sessions_and_keeps_open_ones() {
    let clock = Clock(Instant::now());
    let (mut r, id) = live(&clock, addr(1));
    r.set_limits(Duration::ZERO, 1);
    assert_eq!(r.config().max_sessions, 1);
    assert_eq!(r.config().idle_timeout, TICK, "the floor still applies");
    r.prime(clock.0, known("two", "two"));
    let c2 = check_with("two", CLI, SRV_PWD, true, 2);
    assert_eq!(
        r.handle_datagram(clock.0, addr(2), &c2),
        Action::Drop(DropReason::TooManySessions)
    );
    assert_eq!(
        r.handle_datagram(clock.0, addr(1), RTP),
        Action::ToOrigin(id)
    );
    r.set_limits(Duration::from_secs(30), 2);
    assert!(matches!(
        r.handle_datagram(clock.0, addr(2), &c2),
        Action::Open(_)
    ));
}

#[test]
fn timers_are_polled_not_read() {
    let clock = Clock(Instant::now());
    let (mut r, _) = live(&clock, addr(1));
    let first = r.poll_timeout().expect("a live session has timers");
    assert!(first <= clock.0 + TICK, "{first:?}");
    r.handle_timeout(clock.0);
    assert_eq!(r.poll_timeout(), Some(first), "not due yet: nothing moves");
    r.handle_timeout(first);
    assert_eq!(r.poll_timeout(), Some(first + TICK));
}

#[test]
fn an_idle_router_wants_no_wake_up_until_it_has_something_to_do() {
    let clock = Clock(Instant::now());
    let mut r = router(&clock);
    assert_eq!(
        r.poll_timeout(),
        None,
        "no session, nothing primed or dropped"
    );
    // Long idle: nothing ran its timers.
    let later = clock.at(3_600_000);
    r.prime(later, known(SRV, "cam"));
    assert!(
        r.poll_timeout().is_some(),
        "a primed ufrag must be swept when it expires"
    );
    let Action::Open(id) = r.handle_datagram(later, addr(1), &check(1)) else {
        panic!("the check opens the session");
    };
    let due = r.poll_timeout().expect("a live session has timers");
    assert!(
        due > later && due <= later + TICK,
        "the first tick counts from the opening, not from the router's start: {due:?}"
    );
    r.handle_timeout(due);
    assert!(
        !events(&mut r).iter().any(|e| matches!(e, Event::Renew(_))),
        "a session just opened is not renewed at once"
    );
    assert!(r.close(id, CloseReason::Deleted));
    events(&mut r);
    assert_eq!(r.poll_timeout(), None, "the last session closed");
    // A dropped datagram is reported: its report brings a deadline back.
    assert_eq!(
        r.handle_datagram(due, addr(9), RTP),
        Action::Drop(DropReason::UnknownSender)
    );
    let report = r.poll_timeout().expect("a drop to report");
    r.handle_timeout(report.max(due));
    assert!(events(&mut r)
        .iter()
        .any(|e| matches!(e, Event::Report(d) if d.unknown_sender == 1)));
    assert_eq!(r.poll_timeout(), None, "reported: idle again");
}
