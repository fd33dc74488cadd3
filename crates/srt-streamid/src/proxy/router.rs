//! The client-facing side of an SRT proxy: every datagram that arrives on the listening
//! socket goes through [`Router::handle_datagram`], which decides what it is.
//!
//! - A packet to one of the proxy's live socket ids, from the client the id was given
//!   to, is readdressed in place for the origin ([`Action::Forward`]): one hash lookup,
//!   no allocation.
//! - An induction is answered from the stateless [`Listener`].
//! - A conclusion whose cookie checks out and that names a stream opens a connection: the
//!   router allocates the proxy's socket id and hands out a [`Session`]
//!   ([`Action::Open`]) for the caller to dial an origin with. The session comes back,
//!   decided, through [`Router::answered`]: the answer goes to the client, the route is
//!   installed, and the session is kept for a while to answer the client's retransmitted
//!   conclusions ([`Session::answer_retransmit`]).
//! - Everything else is dropped, and nothing is said to an address that has not shown it
//!   holds a cookie (the proxy must not reflect packets at spoofed victims).
//!
//! Answers wait in [`Router::poll_transmit`]; [`Router::poll_timeout`] says when to call
//! [`Router::handle_timeout`] to forget old answers. The caller owns the sockets, the
//! clock, and the per-route value `T` (the origin-side socket, counters...).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::time::Duration;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Listener, Outcome, Relay, Session, SessionIds, Verdict};
use crate::cookie::SynCookies;
use crate::handshake::{Handshake, HandshakeType};
use crate::packet::{classify, dest_socket_id, PacketKind};
use crate::reject::RejectReason;
use crate::Error;

/// Socket ids stay below the bit libsrt reserves for groups (`SRTGROUP_MASK`), and 0
/// means "to the listener".
const ID_SPACE: u32 = (1 << 30) - 1;

/// How many connections a router holds, and how long it remembers an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once, live or still handshaking with an origin.
    pub max_sessions: usize,
    /// Connections still handshaking with an origin.
    pub max_pending: usize,
    /// How long an answer is kept for retransmitted conclusions (a caller retransmits
    /// for as long as its own connect timeout).
    pub answer_ttl: Duration,
}

/// A datagram to send to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The client.
    pub to: SocketAddr,
    /// The bytes.
    pub payload: Vec<u8>,
}

/// A connection to open: dial an origin with `session`, then give it back to
/// [`Router::answered`] (or to [`Router::refuse`] before dialing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    /// The client's handshake, with the proxy's ids allocated.
    pub session: Session,
    /// The streamid the client sent.
    pub streamid: String,
}

/// Why the router turned a conclusion away itself (a rejection is queued).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The SID block does not decode.
    BadStreamId(Error),
    /// There is no SID block: no stream named.
    NoStreamId,
    /// [`Router::stop_accepting`] was called.
    NotAccepting,
    /// At [`Limits::max_sessions`] or [`Limits::max_pending`].
    Full {
        /// Connections open.
        open: usize,
        /// Of which handshaking with an origin.
        pending: usize,
    },
}

impl Refusal {
    /// The reason the client is given.
    pub fn reason(&self) -> RejectReason {
        match self {
            Refusal::BadStreamId(_) | Refusal::NoStreamId => RejectReason::BadRequest,
            Refusal::NotAccepting => RejectReason::Unavailable,
            Refusal::Full { .. } => RejectReason::Overload,
        }
    }
}

/// What became of a datagram.
#[derive(Debug)]
pub enum Action<'a, T> {
    /// Readdressed in place: send it on the route's origin leg. `last` is set for the
    /// first SHUTDOWN from the client: the connection is over once it is sent.
    Forward {
        /// The route's value.
        to: &'a T,
        /// The client said SHUTDOWN.
        last: bool,
    },
    /// A new connection (boxed: the forwarding path should not carry its size).
    Open(Box<Opening>),
    /// A handshake answered, or one to wait on: see [`Router::poll_transmit`].
    Handshake,
    /// A conclusion turned away; the rejection waits in [`Router::poll_transmit`].
    Refused(Refusal),
    /// Dropped without an answer; the error says why, when it is a malformed or
    /// unexpected handshake.
    Dropped(Option<Error>),
}

/// Hashes the proxy's own socket ids (unpredictable already) with one multiplication.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

enum Slot<T> {
    /// Handed out in an [`Opening`], not answered yet.
    Pending,
    Live(Route<T>),
}

struct Route<T> {
    client: SocketAddr,
    relay: Relay,
    closing: bool,
    leg: T,
}

/// A client's conclusion being handled, or answered.
enum Handshaking {
    Pending { id: u32 },
    Answered(Box<Session>),
}

/// A client connection as its handshake names it: its address and its own socket id.
type ClientKey = (SocketAddr, u32);

/// The client-facing state machine of an SRT proxy (see the module docs). `T` is what
/// the caller keeps per live route.
pub struct Router<T> {
    listener: Listener,
    ids: Hmac<Sha256>,
    drawn: u64,
    limits: Limits,
    routes: HashMap<u32, Slot<T>, BuildHasherDefault<IdHasher>>,
    handshakes: HashMap<ClientKey, Handshaking>,
    /// When each answer is forgotten, in order (the TTL is fixed), with its session id.
    expiries: VecDeque<(Duration, ClientKey, u32)>,
    pending: usize,
    accepting: bool,
    transmits: VecDeque<Transmit>,
}

impl<T> Router<T> {
    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Changes the limits while sessions run (a configuration reload). Open sessions are
    /// not closed by a lower cap: new ones are refused until the count is below it.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// A router keyed by `key` (from a CSPRNG, at start): it keys the SYN cookies and
    /// draws the proxy's socket ids, so that neither can be predicted.
    pub fn new(key: [u8; 32], limits: Limits) -> Self {
        // HMAC zero-pads a short key; padding here uses the infallible constructor.
        let mut block = [0u8; 64];
        for (dst, src) in block.iter_mut().zip(key) {
            *dst = src;
        }
        let mut router = Router {
            listener: Listener::new(SynCookies::new(key), 0),
            ids: <Hmac<Sha256> as KeyInit>::new(&block.into()),
            drawn: 0,
            limits,
            routes: HashMap::default(),
            handshakes: HashMap::new(),
            expiries: VecDeque::new(),
            pending: 0,
            accepting: true,
            transmits: VecDeque::new(),
        };
        let listener_id = router.draw_id();
        router.listener = Listener::new(SynCookies::new(key), listener_id);
        router
    }

    /// The socket id the proxy gives in its induction answers.
    pub fn listener_id(&self) -> u32 {
        self.listener.socket_id()
    }

    /// Connections open (live or handshaking) and, of those, handshaking.
    pub fn open(&self) -> (usize, usize) {
        (self.routes.len(), self.pending)
    }

    /// From now on, new connections are refused with [`RejectReason::Unavailable`].
    pub fn stop_accepting(&mut self) {
        self.accepting = false;
    }

    /// Decides what a datagram from `from` is (see [`Action`]); a packet forwarded is
    /// readdressed in place.
    pub fn handle_datagram(
        &mut self,
        now: Duration,
        from: SocketAddr,
        datagram: &mut [u8],
    ) -> Action<'_, T> {
        let Some(dest) = dest_socket_id(datagram) else {
            return Action::Dropped(None);
        };
        if dest != 0 && matches!(self.routes.get(&dest), Some(Slot::Live(_))) {
            return self.forward(dest, from, datagram);
        }
        if classify(datagram) != Some(PacketKind::Handshake) {
            return Action::Dropped(None);
        }
        match Handshake::parse(datagram) {
            Ok(hs) if hs.kind == HandshakeType::Induction => {
                match self.listener.answer_induction(&hs, from, now) {
                    Ok(answer) => {
                        self.send(from, answer.to_vec());
                        Action::Handshake
                    }
                    Err(e) => Action::Dropped(Some(e)),
                }
            }
            Ok(hs) if hs.kind == HandshakeType::Conclusion => self.conclusion(now, from, hs),
            Ok(hs) => Action::Dropped(Some(Error::UnexpectedHandshake {
                expected: "induction or conclusion",
                got: hs.kind,
            })),
            Err(e) => Action::Dropped(Some(e)),
        }
    }

    #[inline]
    fn forward(&mut self, dest: u32, from: SocketAddr, datagram: &mut [u8]) -> Action<'_, T> {
        let Some(Slot::Live(route)) = self.routes.get_mut(&dest) else {
            return Action::Dropped(None);
        };
        // Only the client the id was given to may use it.
        if from != route.client {
            return Action::Dropped(None);
        }
        match route.relay.from_client(datagram) {
            Verdict::Forward => Action::Forward {
                to: &route.leg,
                last: false,
            },
            Verdict::Last => {
                let last = !route.closing;
                route.closing = true;
                Action::Forward {
                    to: &route.leg,
                    last,
                }
            }
            Verdict::Drop => Action::Dropped(None),
        }
    }

    fn conclusion(&mut self, now: Duration, from: SocketAddr, hs: Handshake<'_>) -> Action<'_, T> {
        let key = (from, hs.socket_id);
        match self.handshakes.get(&key) {
            // A retransmission: the stored answer again, or nothing while the origin has
            // not answered (the answer goes out when it comes).
            Some(Handshaking::Answered(session)) => {
                if let Some(reply) = session.answer_retransmit(&hs) {
                    let reply = reply.to_vec();
                    self.send(from, reply);
                }
                return Action::Handshake;
            }
            Some(Handshaking::Pending { .. }) => return Action::Handshake,
            None => {}
        }
        let accepted = match self.listener.accept_conclusion(hs, from, now) {
            Ok(accepted) => accepted,
            // Not from the address the cookie was issued to (or no cookie at all): an
            // answer could be reflected at a spoofed victim, so say nothing.
            Err(e @ (Error::BadCookie { .. } | Error::UnsupportedVersion(_))) => {
                return Action::Dropped(Some(e))
            }
            Err(e) => return self.refuse_now(now, from, &hs, Refusal::BadStreamId(e)),
        };
        let Some(streamid) = accepted.streamid.clone() else {
            return self.refuse_now(now, from, &hs, Refusal::NoStreamId);
        };
        if !self.accepting {
            return self.refuse_now(now, from, &hs, Refusal::NotAccepting);
        }
        let l = self.limits;
        if self.routes.len() >= l.max_sessions
            || self.pending >= l.max_pending
            || self.handshakes.len() >= l.max_sessions + l.max_pending
        {
            let (open, pending) = self.open();
            return self.refuse_now(now, from, &hs, Refusal::Full { open, pending });
        }
        let id = self.free_id();
        let ids = SessionIds {
            toward_client: id,
            toward_origin: id,
        };
        let session = Session::new(&accepted, from, ids, now);
        self.routes.insert(id, Slot::Pending);
        self.handshakes.insert(key, Handshaking::Pending { id });
        self.pending += 1;
        Action::Open(Box::new(Opening { session, streamid }))
    }

    fn refuse_now(
        &mut self,
        now: Duration,
        to: SocketAddr,
        hs: &Handshake<'_>,
        refusal: Refusal,
    ) -> Action<'_, T> {
        let rejection = self.listener.reject(hs, to, refusal.reason(), now);
        self.send(to, rejection.to_vec());
        Action::Refused(refusal)
    }

    /// Turns away a connection handed out by [`Action::Open`] before an origin was
    /// dialed (a limit of the caller's own): the rejection is queued, the id freed, and
    /// nothing is kept (a flood of refused conclusions must not fill the table).
    pub fn refuse(&mut self, mut session: Session, reason: RejectReason, now: Duration) {
        self.release(&session);
        session.refuse(reason, now);
        if let Some(reply) = session.reply() {
            self.send(session.client_addr(), reply.to_vec());
        }
    }

    /// Takes back a session handed out by [`Action::Open`], decided (one without an
    /// outcome is refused as unavailable). Its answer is queued for the client; if it is
    /// connected and `leg` is given, the route is installed first, so that the client's
    /// first packets find it. The session is kept for [`Limits::answer_ttl`] to answer
    /// retransmitted conclusions.
    pub fn answered(&mut self, mut session: Session, leg: Option<T>, now: Duration) {
        self.release(&session);
        session.refuse(RejectReason::Unavailable, now);
        let id = session.ids().toward_client;
        let client = session.client_addr();
        if let (Some(Outcome::Connected(relay)), Some(leg)) = (session.outcome(), leg) {
            let route = Route {
                client,
                relay,
                closing: false,
                leg,
            };
            self.routes.insert(id, Slot::Live(route));
        }
        if let Some(reply) = session.reply() {
            self.send(client, reply.to_vec());
        }
        let key = (client, session.client_socket_id());
        self.handshakes
            .insert(key, Handshaking::Answered(Box::new(session)));
        self.expiries
            .push_back((now + self.limits.answer_ttl, key, id));
    }

    /// The value of the live route with the proxy's socket id `id`.
    pub fn route(&self, id: u32) -> Option<&T> {
        match self.routes.get(&id) {
            Some(Slot::Live(route)) => Some(&route.leg),
            _ => None,
        }
    }

    /// The connection with the proxy's socket id `id` is over: its route goes, and the
    /// id can be given out again.
    pub fn ended(&mut self, id: u32) {
        match self.routes.remove(&id) {
            Some(Slot::Pending) => {
                self.pending -= 1;
                self.handshakes
                    .retain(|_, h| !matches!(h, Handshaking::Pending { id: p } if *p == id));
            }
            Some(Slot::Live(_)) | None => {}
        }
    }

    /// The next datagram to send a client.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When the oldest kept answer is to be forgotten.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.expiries.front().map(|(at, _, _)| *at)
    }

    /// Forgets the answers kept long enough.
    pub fn handle_timeout(&mut self, now: Duration) {
        while let Some(&(at, key, id)) = self.expiries.front() {
            if at > now {
                break;
            }
            self.expiries.pop_front();
            if let Some(Handshaking::Answered(s)) = self.handshakes.get(&key) {
                if s.ids().toward_client == id {
                    self.handshakes.remove(&key);
                }
            }
        }
    }

    /// Frees the pending slot of a session coming back.
    fn release(&mut self, session: &Session) {
        let id = session.ids().toward_client;
        if let Some(Slot::Pending) = self.routes.get(&id) {
            self.routes.remove(&id);
            self.pending -= 1;
        }
        let key = (session.client_addr(), session.client_socket_id());
        if let Some(Handshaking::Pending { id: p }) = self.handshakes.get(&key) {
            if *p == id {
                self.handshakes.remove(&key);
            }
        }
    }

    fn send(&mut self, to: SocketAddr, payload: Vec<u8>) {
        self.transmits.push_back(Transmit { to, payload });
    }

    /// A socket id in use neither by the listener nor by a connection.
    fn free_id(&mut self) -> u32 {
        loop {
            let id = self.draw_id();
            if id != self.listener.socket_id() && !self.routes.contains_key(&id) {
                return id;
            }
        }
    }

    /// The next id of an HMAC-keyed sequence: unpredictable without the key.
    fn draw_id(&mut self) -> u32 {
        let mut mac = self.ids.clone();
        mac.update(b"srt socket id");
        mac.update(&self.drawn.to_be_bytes());
        self.drawn += 1;
        let out = mac.finalize().into_bytes();
        let mut word = [0u8; 4];
        for (dst, src) in word.iter_mut().zip(out.iter()) {
            *dst = *src;
        }
        u32::from_be_bytes(word) % ID_SPACE + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{set_dest_socket_id, ControlHeader};

    const INDUCTION: &[u8] = include_bytes!("../../tests/data/ffmpeg_induction.bin");
    const CONCLUSION: &[u8] = include_bytes!("../../tests/data/ffmpeg_conclusion.bin");
    const DATA: &[u8] = include_bytes!("../../tests/data/session_c2o_data_0.bin");
    const SHUTDOWN: &[u8] = include_bytes!("../../tests/data/session_c2o_shutdown_0.bin");
    const ORIGIN_INDUCTION: &[u8] =
        include_bytes!("../../tests/data/libsrt_listener_induction_response.bin");
    const ORIGIN_CONCLUSION: &[u8] =
        include_bytes!("../../tests/data/libsrt_listener_conclusion_response.bin");
    const FFMPEG_ID: u32 = 0x1547_7ebe;
    const NOW: Duration = Duration::from_secs(1_000);
    const TTL: Duration = Duration::from_secs(10);

    fn client() -> SocketAddr {
        "192.0.2.7:40000".parse().unwrap()
    }

    fn origin() -> SocketAddr {
        "198.51.100.9:10080".parse().unwrap()
    }

    /// Routes carry a name here; the proxy keeps its origin socket there.
    fn router(max_sessions: usize) -> Router<&'static str> {
        Router::new(
            [7; 32],
            Limits {
                max_sessions,
                max_pending: 2,
                answer_ttl: TTL,
            },
        )
    }

    fn forwarded<T: Copy>(action: Action<'_, T>) -> Option<(T, bool)> {
        match action {
            Action::Forward { to, last } => Some((*to, last)),
            _ => None,
        }
    }

    /// ffmpeg's conclusion with the cookie the router gives `from` (asked for with
    /// ffmpeg's induction).
    fn conclusion_from(r: &mut Router<&'static str>, from: SocketAddr) -> Vec<u8> {
        let mut induction = INDUCTION.to_vec();
        assert!(matches!(
            r.handle_datagram(NOW, from, &mut induction),
            Action::Handshake
        ));
        let answer = r.poll_transmit().unwrap();
        assert_eq!(answer.to, from);
        let answer = Handshake::parse(&answer.payload).unwrap();
        assert_eq!(answer.socket_id, r.listener_id());
        let mut c = CONCLUSION.to_vec();
        c.get_mut(44..48)
            .unwrap()
            .copy_from_slice(&answer.cookie.to_be_bytes());
        c
    }

    fn open(r: &mut Router<&'static str>, from: SocketAddr) -> (Opening, Vec<u8>) {
        let c = conclusion_from(r, from);
        match r.handle_datagram(NOW, from, &mut c.clone()) {
            Action::Open(opening) => (*opening, c),
            other => panic!("{other:?}"),
        }
    }

    /// The session driven by the captured libsrt answers (made for ffmpeg's id, so the
    /// origin side uses it here).
    fn connect(opening: &Opening) -> Session {
        let mut s = opening.session.clone();
        let ids = s.ids();
        s.dial(origin(), NOW, NOW + Duration::from_secs(5));
        let mut answer = ORIGIN_INDUCTION.to_vec();
        set_dest_socket_id(&mut answer, ids.toward_origin).unwrap();
        s.handle_datagram(NOW, &answer).unwrap();
        let mut answer = ORIGIN_CONCLUSION.to_vec();
        set_dest_socket_id(&mut answer, ids.toward_origin).unwrap();
        s.handle_datagram(NOW, &answer).unwrap();
        assert!(matches!(s.outcome(), Some(Outcome::Connected(_))));
        s
    }

    #[test]
    fn a_publish_from_induction_to_shutdown() {
        let mut r = router(10);
        let (opening, conclusion) = open(&mut r, client());
        assert_eq!(opening.streamid, "#!::r=live/livestream,m=publish");
        let id = opening.session.ids().toward_client;
        assert!((1..1 << 30).contains(&id) && id != r.listener_id());
        assert_eq!(r.open(), (1, 1));
        assert_eq!(
            r.poll_transmit(),
            None,
            "nothing to say while the origin is asked"
        );
        assert!(matches!(
            r.handle_datagram(NOW, client(), &mut conclusion.clone()),
            Action::Handshake
        ));
        assert_eq!(
            r.poll_transmit(),
            None,
            "a retransmission while pending: nothing"
        );

        let session = connect(&opening);
        let reply = session.reply().unwrap().to_vec();
        r.answered(session, Some("origin-leg"), NOW);
        assert_eq!(
            r.poll_transmit(),
            Some(Transmit {
                to: client(),
                payload: reply.clone()
            })
        );
        assert_eq!((r.open(), r.route(id)), ((1, 0), Some(&"origin-leg")));
        assert!(matches!(
            r.handle_datagram(NOW, client(), &mut conclusion.clone()),
            Action::Handshake
        ));
        assert_eq!(
            r.poll_transmit().map(|t| t.payload),
            Some(reply),
            "a retransmission gets the answer again"
        );

        // Data to the proxy's id is readdressed to the origin's.
        let origin_id = Handshake::parse(ORIGIN_CONCLUSION).unwrap().socket_id;
        let mut data = DATA.to_vec();
        set_dest_socket_id(&mut data, id).unwrap();
        assert_eq!(
            forwarded(r.handle_datagram(NOW, client(), &mut data)),
            Some(("origin-leg", false))
        );
        assert_eq!(dest_socket_id(&data), Some(origin_id));
        // From anyone else, it is not.
        let mut spoofed = DATA.to_vec();
        set_dest_socket_id(&mut spoofed, id).unwrap();
        let other: SocketAddr = "192.0.2.8:40000".parse().unwrap();
        assert!(matches!(
            r.handle_datagram(NOW, other, &mut spoofed),
            Action::Dropped(None)
        ));
        assert_eq!(dest_socket_id(&spoofed), Some(id));

        // The client's SHUTDOWN is forwarded, and ends the connection once.
        let mut bye = SHUTDOWN.to_vec();
        set_dest_socket_id(&mut bye, id).unwrap();
        assert_eq!(
            forwarded(r.handle_datagram(NOW, client(), &mut bye.clone())),
            Some(("origin-leg", true))
        );
        assert_eq!(
            forwarded(r.handle_datagram(NOW, client(), &mut bye)),
            Some(("origin-leg", false))
        );
        r.ended(id);
        assert_eq!((r.open(), r.route(id)), ((0, 0), None));
        assert!(matches!(
            r.handle_datagram(NOW, client(), &mut data),
            Action::Dropped(None)
        ));

        // The answer is forgotten after its time; a late conclusion is then a new one.
        assert_eq!(r.poll_timeout(), Some(NOW + TTL));
        r.handle_timeout(NOW + TTL - Duration::from_millis(1));
        assert!(matches!(
            r.handle_datagram(NOW, client(), &mut conclusion.clone()),
            Action::Handshake
        ));
        assert!(r.poll_transmit().is_some());
        r.handle_timeout(NOW + TTL);
        assert_eq!(r.poll_timeout(), None);
        assert!(matches!(
            r.handle_datagram(NOW, client(), &mut conclusion.clone()),
            Action::Open(_)
        ));
    }

    #[test]
    fn a_cap_changed_live_applies_to_the_next_connection() {
        let mut r = router(1);
        let a: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:1".parse().unwrap();
        let _first = open(&mut r, a);
        let mut c = conclusion_from(&mut r, b);
        assert!(matches!(
            r.handle_datagram(NOW, b, &mut c.clone()),
            Action::Refused(Refusal::Full { .. })
        ));
        while r.poll_transmit().is_some() {}
        r.set_limits(Limits {
            max_sessions: 2,
            ..r.limits()
        });
        assert_eq!(r.limits().max_sessions, 2);
        assert!(matches!(r.handle_datagram(NOW, b, &mut c), Action::Open(_)));
    }

    #[test]
    fn refusals_and_silence() {
        let mut r = router(2);
        // A conclusion without our cookie, and an old version: not a word.
        let mut forged = CONCLUSION.to_vec();
        assert!(matches!(
            r.handle_datagram(NOW, client(), &mut forged),
            Action::Dropped(Some(Error::BadCookie { .. }))
        ));
        let mut v3 = INDUCTION.to_vec();
        v3.get_mut(16..20)
            .unwrap()
            .copy_from_slice(&3u32.to_be_bytes());
        assert!(matches!(
            r.handle_datagram(NOW, client(), &mut v3),
            Action::Dropped(Some(Error::UnsupportedVersion(3)))
        ));
        for mut junk in [vec![0u8; 3], DATA.to_vec(), INDUCTION[..40].to_vec()] {
            assert!(matches!(
                r.handle_datagram(NOW, client(), &mut junk),
                Action::Dropped(_)
            ));
        }
        assert_eq!(r.poll_transmit(), None);

        // Without a streamid: 1400.
        let mut no_sid = conclusion_from(&mut r, client());
        no_sid.truncate(64);
        match r.handle_datagram(NOW, client(), &mut no_sid) {
            Action::Refused(Refusal::NoStreamId) => {}
            other => panic!("{other:?}"),
        }
        let answer = r.poll_transmit().unwrap();
        let hs = Handshake::parse(&answer.payload).unwrap();
        assert_eq!(
            (hs.kind.to_wire(), hs.header.dest_socket_id),
            (2400, FFMPEG_ID)
        );

        // Full: 1402 (the first two are still pending; max_pending is 2 too).
        let a: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:1".parse().unwrap();
        let (first, _) = open(&mut r, a);
        let (second, _) = open(&mut r, b);
        let mut c = conclusion_from(&mut r, client());
        match r.handle_datagram(NOW, client(), &mut c.clone()) {
            Action::Refused(Refusal::Full {
                open: 2,
                pending: 2,
            }) => {}
            other => panic!("{other:?}"),
        }
        let sent = r.poll_transmit().unwrap().payload;
        let hs = Handshake::parse(&sent).unwrap();
        assert_eq!(hs.kind, HandshakeType::Rejection(RejectReason::Overload));

        // One refused by the caller frees its slot at once and is not kept.
        r.refuse(first.session, RejectReason::Overload, NOW);
        assert_eq!(r.poll_transmit().unwrap().to, a);
        assert_eq!(r.open(), (1, 1));
        // One refused by the origin's side is kept to answer retransmissions.
        let mut s = second.session;
        s.dial(origin(), NOW, NOW + Duration::from_secs(1));
        s.handle_timeout(NOW + Duration::from_secs(1));
        r.answered(s, Some("unused"), NOW);
        let sent = r.poll_transmit().unwrap().payload;
        let hs = Handshake::parse(&sent).unwrap();
        assert_eq!(hs.kind, HandshakeType::Rejection(RejectReason::BadGateway));
        assert_eq!(r.open(), (0, 0));
        assert_eq!(r.poll_timeout(), Some(NOW + TTL));

        // After SIGTERM: 1503.
        r.stop_accepting();
        match r.handle_datagram(NOW, client(), &mut c) {
            Action::Refused(Refusal::NotAccepting) => {}
            other => panic!("{other:?}"),
        }
        let sent = r.poll_transmit().unwrap().payload;
        let hs = Handshake::parse(&sent).unwrap();
        assert_eq!(hs.kind.to_wire(), 2503);

        // Other handshake kinds are not answered.
        let mut agreement = INDUCTION.to_vec();
        agreement
            .get_mut(36..40)
            .unwrap()
            .copy_from_slice(&HandshakeType::Agreement.to_wire().to_be_bytes());
        assert!(matches!(
            r.handle_datagram(NOW, client(), &mut agreement),
            Action::Dropped(Some(Error::UnexpectedHandshake { .. }))
        ));
        let mut keepalive = ControlHeader {
            dest_socket_id: 0,
            ..ControlHeader::new(crate::packet::control_type::KEEPALIVE)
        }
        .encode();
        assert!(matches!(
            r.handle_datagram(NOW, client(), &mut keepalive),
            Action::Dropped(None)
        ));
        assert_eq!(r.poll_transmit(), None);
    }

    #[test]
    fn a_pending_connection_that_ends_frees_its_id() {
        let mut r = router(10);
        let (opening, conclusion) = open(&mut r, client());
        let id = opening.session.ids().toward_client;
        r.ended(id);
        assert_eq!(r.open(), (0, 0));
        assert!(matches!(
            r.handle_datagram(NOW, client(), &mut conclusion.clone()),
            Action::Open(_)
        ));
    }

    #[test]
    fn socket_ids_are_distinct_and_keyed() {
        let mut r = router(10_000);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1_000 {
            let id = r.free_id();
            assert!((1..1 << 30).contains(&id));
            assert!(seen.insert(id));
        }
        let mut other: Router<()> = Router::new([8; 32], r.limits);
        assert_ne!(other.listener_id(), r.listener_id());
        assert_ne!(other.free_id(), router(1).free_id());
    }
}
