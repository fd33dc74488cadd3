//! One client's handshake replayed to an origin, as a caller: our induction, the origin's
//! cookie, the client's conclusion with it, the origin's verdict translated for the client.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::{micros, timestamp, Accepted, Relay};
use crate::extension::Extensions;
use crate::handshake::{Handshake, HandshakeType, PeerIp, BASE_LEN};
use crate::packet::ControlHeader;
use crate::reject::RejectReason;
use crate::Error;

/// How often a handshake packet the origin has not answered is sent again (libsrt's own
/// pace as a caller).
pub const RESEND_INTERVAL: Duration = Duration::from_millis(250);

/// The socket ids the proxy uses for one connection: the client sends to
/// `toward_client`, the origin to `toward_origin`. They may be equal; each must be unique
/// among the proxy's sessions on its side so that packets can be routed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionIds {
    /// The id the client knows the proxy by.
    pub toward_client: u32,
    /// The id the origin knows the proxy by.
    pub toward_origin: u32,
}

/// How a session's handshake ended; [`Session::reply`] holds what the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Both legs are up: the client gets the origin's answer.
    Connected(Relay),
    /// The origin refused: the client gets its rejection.
    Rejected(RejectReason),
    /// The proxy refused (no origin, an unreachable or silent one): the client gets the
    /// proxy's rejection.
    Refused(RejectReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// No origin yet.
    Idle,
    AwaitInduction,
    AwaitConclusion {
        origin_cookie: u32,
    },
    Done {
        reply: Vec<u8>,
        outcome: Outcome,
    },
}

/// One client's handshake replayed to one origin. Small (the client's conclusion and the
/// answer), so it can be kept to answer retransmitted conclusions.
///
/// Driven like any sans-IO connection: [`Session::dial`] an origin, send what
/// [`Session::poll_transmit`] gives, feed the origin's datagrams to
/// [`Session::handle_datagram`] and call [`Session::handle_timeout`] at
/// [`Session::poll_timeout`], until [`Session::outcome`] is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    client: SocketAddr,
    origin: Option<SocketAddr>,
    ids: SessionIds,
    // The client's conclusion with its extensions cut off, and those extensions.
    conclusion: Handshake<'static>,
    extensions: Vec<u8>,
    /// When the conclusion arrived: its timestamp was the client's clock then.
    received: Duration,
    state: State,
    /// While dialing: when our last handshake is repeated, and when the origin has had
    /// long enough.
    resend_at: Duration,
    deadline: Duration,
    transmit: Option<Vec<u8>>,
}

impl Session {
    /// A session for `accepted` (from `client`). `received` is when the client's
    /// conclusion arrived, on the clock later given to every other call (any epoch; a
    /// monotonic one keeps the origin's idea of the client's age right across wall-clock
    /// steps).
    pub fn new(
        accepted: &Accepted<'_>,
        client: SocketAddr,
        ids: SessionIds,
        received: Duration,
    ) -> Self {
        let hs = accepted.handshake;
        Session {
            client,
            origin: None,
            ids,
            conclusion: Handshake {
                extensions: Extensions::EMPTY,
                ..hs
            },
            extensions: hs.extensions.as_bytes().to_vec(),
            received,
            state: State::Idle,
            resend_at: received,
            deadline: received,
            transmit: None,
        }
    }

    /// The client's socket id: with the client's address, the key of this session until
    /// it is connected.
    pub fn client_socket_id(&self) -> u32 {
        self.conclusion.socket_id
    }

    /// The client's address.
    pub fn client_addr(&self) -> SocketAddr {
        self.client
    }

    /// The origin's address, once dialed.
    pub fn origin_addr(&self) -> Option<SocketAddr> {
        self.origin
    }

    /// The proxy's ids.
    pub fn ids(&self) -> SessionIds {
        self.ids
    }

    /// The outcome, once there is one.
    pub fn outcome(&self) -> Option<Outcome> {
        match &self.state {
            State::Done { outcome, .. } => Some(*outcome),
            _ => None,
        }
    }

    /// What the client is told, once there is an outcome.
    pub fn reply(&self) -> Option<&[u8]> {
        match &self.state {
            State::Done { reply, .. } => Some(reply),
            _ => None,
        }
    }

    /// The stored answer to a repeated client conclusion; `None` while there is no
    /// outcome yet (then drop it: the answer will go out when it comes) or if `hs` is not
    /// this client's conclusion.
    pub fn answer_retransmit(&self, hs: &Handshake<'_>) -> Option<&[u8]> {
        let same = hs.kind == HandshakeType::Conclusion && hs.socket_id == self.client_socket_id();
        self.reply().filter(|_| same)
    }

    /// Starts the handshake with `origin` (again, from the start, if another origin was
    /// dialed before), to be over by `deadline`. Nothing once there is an outcome.
    pub fn dial(&mut self, origin: SocketAddr, now: Duration, deadline: Duration) {
        if self.outcome().is_some() {
            return;
        }
        self.origin = Some(origin);
        self.state = State::AwaitInduction;
        self.deadline = deadline;
        self.resend_at = now + RESEND_INTERVAL;
        self.transmit = Some(self.induction(now).to_vec());
    }

    /// The next datagram for the origin, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.take()
    }

    /// When [`Session::handle_timeout`] is due: while dialing, the next resend or the
    /// deadline, whichever comes first.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.state {
            State::AwaitInduction | State::AwaitConclusion { .. } => {
                Some(self.resend_at.min(self.deadline))
            }
            State::Idle | State::Done { .. } => None,
        }
    }

    /// Repeats our last handshake when it is due; at the deadline, gives up on a silent
    /// origin: the outcome is then [`Outcome::Refused`] with
    /// [`RejectReason::BadGateway`].
    pub fn handle_timeout(&mut self, now: Duration) {
        let origin_cookie = match self.state {
            State::AwaitInduction => None,
            State::AwaitConclusion { origin_cookie } => Some(origin_cookie),
            State::Idle | State::Done { .. } => return,
        };
        if now >= self.deadline {
            self.refuse(RejectReason::BadGateway, now);
        } else if now >= self.resend_at {
            self.resend_at = now + RESEND_INTERVAL;
            self.transmit = Some(match origin_cookie {
                None => self.induction(now).to_vec(),
                Some(cookie) => self.origin_conclusion(cookie, now),
            });
        }
    }

    /// Ends the handshake with the proxy's own rejection for the client (nothing once
    /// there is an outcome).
    pub fn refuse(&mut self, reason: RejectReason, now: Duration) {
        if self.outcome().is_some() {
            return;
        }
        let rejection = self.conclusion.rejection(reason);
        let reply = Handshake {
            header: ControlHeader {
                timestamp: timestamp(now),
                ..rejection.header
            },
            socket_id: self.ids.toward_client,
            peer_ip: PeerIp::from_ip(self.client.ip()),
            ..rejection
        }
        .encode_base()
        .to_vec();
        self.transmit = None;
        self.state = State::Done {
            reply,
            outcome: Outcome::Refused(reason),
        };
    }

    /// A datagram from the origin (sent to `ids.toward_origin`). Once there is an outcome,
    /// duplicates are ignored.
    pub fn handle_datagram(&mut self, now: Duration, datagram: &[u8]) -> Result<(), Error> {
        let hs = Handshake::parse(datagram)?;
        if hs.header.dest_socket_id != self.ids.toward_origin {
            return Err(Error::WrongSocketId {
                expected: self.ids.toward_origin,
                got: hs.header.dest_socket_id,
            });
        }
        match (&self.state, hs.kind) {
            (State::Done { .. }, _) => {}
            (State::Idle, got) => {
                return Err(Error::UnexpectedHandshake {
                    expected: "nothing before dialing",
                    got,
                })
            }
            (_, HandshakeType::Rejection(reason)) => self.finish(&hs, Outcome::Rejected(reason)),
            (_, HandshakeType::Induction) => {
                // An origin that answers version 4 cannot read HSv5 extensions.
                if hs.version < 5 {
                    return Err(Error::UnsupportedVersion(hs.version));
                }
                self.state = State::AwaitConclusion {
                    origin_cookie: hs.cookie,
                };
                self.resend_at = now + RESEND_INTERVAL;
                self.transmit = Some(self.origin_conclusion(hs.cookie, now));
            }
            (State::AwaitConclusion { .. }, HandshakeType::Conclusion) => {
                let relay = Relay {
                    client_socket_id: self.client_socket_id(),
                    origin_socket_id: hs.socket_id,
                    ids: self.ids,
                };
                self.finish(&hs, Outcome::Connected(relay));
            }
            (_, got) => {
                return Err(Error::UnexpectedHandshake {
                    expected: "induction or conclusion answer",
                    got,
                })
            }
        }
        Ok(())
    }

    fn finish(&mut self, answer: &Handshake<'_>, outcome: Outcome) {
        self.transmit = None;
        self.state = State::Done {
            reply: self.translate(answer),
            outcome,
        };
    }

    /// The client's clock at `now`: what it would stamp a handshake with if it were
    /// talking to the origin itself.
    fn client_clock(&self, now: Duration) -> u32 {
        let since = micros(now.saturating_sub(self.received));
        self.conclusion.header.timestamp.wrapping_add(since)
    }

    fn origin_ip(&self) -> IpAddr {
        self.origin.map_or(self.client.ip(), |o| o.ip())
    }

    fn induction(&self, now: Duration) -> [u8; BASE_LEN] {
        let c = &self.conclusion;
        let hs = Handshake::caller_induction(
            self.ids.toward_origin,
            c.initial_seq,
            c.mtu,
            c.flow_window,
            self.origin_ip(),
        );
        Handshake {
            header: ControlHeader {
                timestamp: self.client_clock(now),
                ..hs.header
            },
            ..hs
        }
        .encode_base()
    }

    fn origin_conclusion(&self, origin_cookie: u32, now: Duration) -> Vec<u8> {
        Handshake {
            header: ControlHeader {
                timestamp: self.client_clock(now),
                dest_socket_id: 0,
                ..self.conclusion.header
            },
            socket_id: self.ids.toward_origin,
            cookie: origin_cookie,
            peer_ip: PeerIp::from_ip(self.origin_ip()),
            extensions: Extensions::trusted(&self.extensions),
            ..self.conclusion
        }
        .to_vec()
    }

    /// The origin's answer as the client must see it: from our client-side id, to the
    /// client's id, with the cookie the client holds and the client's address.
    fn translate(&self, hs: &Handshake<'_>) -> Vec<u8> {
        Handshake {
            header: ControlHeader {
                dest_socket_id: self.client_socket_id(),
                ..hs.header
            },
            socket_id: self.ids.toward_client,
            cookie: self.conclusion.cookie,
            peer_ip: PeerIp::from_ip(self.client.ip()),
            ..*hs
        }
        .to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{dest_socket_id, set_dest_socket_id};

    const INDUCTION: &[u8] = include_bytes!("../../tests/data/ffmpeg_induction.bin");
    const CONCLUSION: &[u8] = include_bytes!("../../tests/data/ffmpeg_conclusion.bin");
    const KM_CONCLUSION: &[u8] =
        include_bytes!("../../tests/data/ffmpeg_passphrase_conclusion.bin");
    const ORIGIN_INDUCTION: &[u8] =
        include_bytes!("../../tests/data/libsrt_listener_induction_response.bin");
    const ORIGIN_CONCLUSION: &[u8] =
        include_bytes!("../../tests/data/libsrt_listener_conclusion_response.bin");
    const ORIGIN_REJECT: &[u8] =
        include_bytes!("../../tests/data/libsrt_listener_reject_conclusion_response.bin");
    /// The socket id ffmpeg used; the libsrt listener answers were addressed to it.
    const FFMPEG_ID: u32 = 0x1547_7ebe;
    const NOW: Duration = Duration::from_secs(1_700_000_000);
    const DEADLINE: Duration = Duration::from_secs(1_700_000_005);

    fn client() -> SocketAddr {
        "127.0.0.1:40000".parse().unwrap()
    }

    fn origin() -> SocketAddr {
        "127.0.0.1:10080".parse().unwrap()
    }

    /// The captured libsrt listener answers were made for ffmpeg's socket id, so a session
    /// using that id toward the origin can be driven by them unchanged.
    fn session(conclusion: &[u8]) -> Session {
        session_at(conclusion, NOW)
    }

    /// As [`session`], the conclusion having arrived (and the origin dialed) at `received`.
    fn session_at(conclusion: &[u8], received: Duration) -> Session {
        let accepted = Accepted {
            handshake: Handshake::parse(conclusion).unwrap(),
            streamid: None,
        };
        let ids = SessionIds {
            toward_client: 0xBBBB_0002,
            toward_origin: FFMPEG_ID,
        };
        let mut s = Session::new(&accepted, client(), ids, received);
        s.dial(origin(), received, received + Duration::from_secs(5));
        s
    }

    fn without_timestamp(bytes: &[u8]) -> Vec<u8> {
        let mut b = bytes.to_vec();
        b.get_mut(8..12).unwrap().fill(0);
        b
    }

    fn with_cookie(bytes: &[u8], from: &[u8]) -> Vec<u8> {
        let mut b = bytes.to_vec();
        b.get_mut(44..48)
            .unwrap()
            .copy_from_slice(from.get(44..48).unwrap());
        b
    }

    #[test]
    fn replay_to_a_libsrt_origin() {
        let mut s = session(CONCLUSION);
        // Our induction to the origin is what libsrt itself sent, apart from the timestamp
        // (the client's clock when its conclusion came, as no time has passed).
        let induction = s.poll_transmit().unwrap();
        assert_eq!(without_timestamp(&induction), without_timestamp(INDUCTION));
        assert_eq!(induction.get(8..12), CONCLUSION.get(8..12));
        assert_eq!(s.poll_transmit(), None, "sent once");

        s.handle_datagram(NOW, ORIGIN_INDUCTION).unwrap();
        let conclusion = s.poll_transmit().unwrap();
        assert_eq!(
            conclusion,
            with_cookie(CONCLUSION, ORIGIN_INDUCTION),
            "the client's conclusion, timestamp included, with the origin's cookie"
        );

        s.handle_datagram(NOW, ORIGIN_CONCLUSION).unwrap();
        let Some(Outcome::Connected(relay)) = s.outcome() else {
            panic!("{:?}", s.outcome())
        };
        let to_client = s.reply().unwrap().to_vec();
        let origin_hs = Handshake::parse(ORIGIN_CONCLUSION).unwrap();
        let reply = Handshake::parse(&to_client).unwrap();
        assert_eq!(reply.header.dest_socket_id, FFMPEG_ID);
        assert_eq!(reply.socket_id, 0xBBBB_0002);
        assert_eq!(reply.cookie, 0x5EC0_C0DE, "the cookie the client holds");
        assert_eq!(
            reply.extensions.as_bytes(),
            origin_hs.extensions.as_bytes(),
            "HSRSP byte for byte"
        );
        assert_eq!(relay.origin_socket_id, origin_hs.socket_id);
        assert_eq!(relay.client_socket_id, FFMPEG_ID);
        assert_eq!((s.poll_transmit(), s.poll_timeout()), (None, None));

        s.handle_datagram(NOW, ORIGIN_CONCLUSION).unwrap();
        assert_eq!(
            s.reply(),
            Some(to_client.as_slice()),
            "a duplicate changes nothing"
        );
        assert_eq!(s.poll_transmit(), None);
        assert_eq!(
            s.answer_retransmit(&Handshake::parse(CONCLUSION).unwrap()),
            Some(to_client.as_slice())
        );
        assert_eq!(
            s.answer_retransmit(&Handshake::parse(INDUCTION).unwrap()),
            None
        );

        let mut data = include_bytes!("../../tests/data/session_c2o_data_0.bin").to_vec();
        relay.client_to_origin(&mut data).unwrap();
        assert_eq!(dest_socket_id(&data), Some(origin_hs.socket_id));
        relay.origin_to_client(&mut data).unwrap();
        assert_eq!(dest_socket_id(&data), Some(FFMPEG_ID));
    }

    /// libsrt's pace: the last handshake again every 250 ms until the origin answers, and
    /// at the deadline the client is refused with 1502.
    #[test]
    fn resends_until_the_deadline() {
        let ms = Duration::from_millis;
        let mut s = session(CONCLUSION);
        let first = s.poll_transmit().unwrap();
        assert_eq!(s.poll_timeout(), Some(NOW + RESEND_INTERVAL));
        s.handle_timeout(NOW + ms(100));
        assert_eq!(s.poll_transmit(), None, "not due yet");
        s.handle_timeout(NOW + ms(250));
        let again = s.poll_transmit().unwrap();
        assert_eq!(without_timestamp(&again), without_timestamp(&first));
        assert_eq!(s.poll_timeout(), Some(NOW + ms(500)));

        // The induction is answered: from now on the conclusion is repeated.
        s.handle_datagram(NOW + ms(300), ORIGIN_INDUCTION).unwrap();
        let conclusion = s.poll_transmit().unwrap();
        assert_eq!(s.poll_timeout(), Some(NOW + ms(550)));
        s.handle_timeout(NOW + ms(550));
        let again = s.poll_transmit().unwrap();
        assert_eq!(without_timestamp(&again), without_timestamp(&conclusion));

        // Close to the deadline, the deadline is the next wake-up.
        s.handle_timeout(NOW + ms(4_900));
        assert!(s.poll_transmit().is_some());
        assert_eq!(s.poll_timeout(), Some(NOW + ms(5_000)));
        s.handle_timeout(NOW + ms(5_000));
        assert_eq!(
            s.outcome(),
            Some(Outcome::Refused(RejectReason::BadGateway))
        );
        assert_eq!((s.poll_transmit(), s.poll_timeout()), (None, None));
        let reply = Handshake::parse(s.reply().unwrap()).unwrap();
        assert_eq!(reply.kind.to_wire(), 2502);
        assert_eq!(
            (reply.header.dest_socket_id, reply.socket_id),
            (FFMPEG_ID, 0xBBBB_0002)
        );
        assert_eq!(reply.peer_ip.to_ip(), client().ip());
        assert!(reply.extensions.is_empty());
        s.handle_datagram(NOW + ms(5_001), ORIGIN_CONCLUSION)
            .unwrap();
        assert_eq!(
            s.outcome(),
            Some(Outcome::Refused(RejectReason::BadGateway)),
            "too late"
        );
    }

    /// After an unreachable origin, the next one is dialed from the start.
    #[test]
    fn redial_starts_over_and_a_verdict_is_final() {
        let mut s = session(CONCLUSION);
        let _ = s.poll_transmit();
        s.handle_datagram(NOW, ORIGIN_INDUCTION).unwrap();
        let _ = s.poll_transmit();
        let other: SocketAddr = "127.0.0.2:10080".parse().unwrap();
        s.dial(other, NOW, DEADLINE);
        assert_eq!(s.origin_addr(), Some(other));
        let sent = s.poll_transmit().unwrap();
        let induction = Handshake::parse(&sent).unwrap();
        assert_eq!(induction.kind, HandshakeType::Induction);
        assert_eq!(induction.peer_ip.to_ip(), other.ip());

        s.refuse(RejectReason::Unavailable, NOW);
        assert_eq!(
            s.outcome(),
            Some(Outcome::Refused(RejectReason::Unavailable))
        );
        assert_eq!(s.poll_transmit(), None);
        s.dial(origin(), NOW, DEADLINE);
        s.refuse(RejectReason::BadGateway, NOW);
        assert_eq!(
            (s.outcome(), s.poll_transmit(), s.origin_addr()),
            (
                Some(Outcome::Refused(RejectReason::Unavailable)),
                None,
                Some(other)
            )
        );
    }

    /// The origin sets its TSBPD time base to its "now" minus the timestamp of the
    /// conclusion carrying HSREQ. The proxy once stamped its own wall clock (microseconds
    /// modulo 2^32) there: a libsrt origin whose uptime was below that value never
    /// released a packet, and one above it released them without any latency buffer.
    #[test]
    fn replayed_handshakes_carry_the_clients_clock() {
        const FFMPEG_TS: u32 = 0x2f0;
        assert_eq!(
            Handshake::parse(CONCLUSION).unwrap().header.timestamp,
            FFMPEG_TS
        );
        let ms = Duration::from_millis;
        let ts = |bytes: &[u8]| Handshake::parse(bytes).unwrap().header.timestamp;

        // Whatever the epoch of the caller's clock, only the time since the conclusion
        // arrived is added to ffmpeg's own timestamp.
        for epoch in [NOW, Duration::ZERO, Duration::from_micros(0xFFFF_FFF0)] {
            let accepted = Accepted {
                handshake: Handshake::parse(CONCLUSION).unwrap(),
                streamid: None,
            };
            let ids = SessionIds {
                toward_client: 0xBBBB_0002,
                toward_origin: FFMPEG_ID,
            };
            let mut s = Session::new(&accepted, client(), ids, epoch);
            s.dial(origin(), epoch + ms(1), epoch + ms(5_000));
            assert_eq!(ts(&s.poll_transmit().unwrap()), FFMPEG_TS + 1_000);
            s.handle_datagram(epoch + ms(2), ORIGIN_INDUCTION).unwrap();
            let conclusion = s.poll_transmit().unwrap();
            let mut expected = with_cookie(CONCLUSION, ORIGIN_INDUCTION);
            expected
                .get_mut(8..12)
                .unwrap()
                .copy_from_slice(&(FFMPEG_TS + 2_000).to_be_bytes());
            assert_eq!(conclusion, expected, "epoch {epoch:?}");
            s.handle_timeout(epoch + ms(252));
            let resent = s.poll_transmit().unwrap();
            assert_eq!(ts(&resent), FFMPEG_TS + 252_000, "a resend is stamped anew");
        }

        // SRT timestamps wrap at 2^32 microseconds; a clock stepping back adds nothing.
        let mut late = CONCLUSION.to_vec();
        late.get_mut(8..12)
            .unwrap()
            .copy_from_slice(&0xFFFF_FF00u32.to_be_bytes());
        let mut s = session_at(&late, NOW);
        let _ = s.poll_transmit();
        s.dial(origin(), NOW + ms(1), DEADLINE);
        assert_eq!(ts(&s.poll_transmit().unwrap()), 1_000 - 0x100);
        s.dial(origin(), NOW - ms(1), DEADLINE);
        assert_eq!(ts(&s.poll_transmit().unwrap()), 0xFFFF_FF00);
    }

    #[test]
    fn km_extensions_pass_through() {
        let mut s = session(KM_CONCLUSION);
        let _ = s.poll_transmit();
        s.handle_datagram(NOW, ORIGIN_INDUCTION).unwrap();
        let c = s.poll_transmit().unwrap();
        assert_eq!(
            c.get(64..),
            KM_CONCLUSION.get(64..),
            "HSREQ, SID and KMREQ untouched"
        );
    }

    #[test]
    fn origin_rejection_reaches_the_client() {
        let mut s = session(CONCLUSION);
        s.handle_datagram(NOW, ORIGIN_INDUCTION).unwrap();
        s.handle_datagram(NOW, ORIGIN_REJECT).unwrap();
        assert_eq!(s.outcome(), Some(Outcome::Rejected(RejectReason::Unsecure)));
        let to_client = s.reply().unwrap();
        let hs = Handshake::parse(to_client).unwrap();
        assert_eq!(
            (hs.kind.to_wire(), hs.header.dest_socket_id),
            (1011, FFMPEG_ID)
        );
        assert_eq!(
            s.answer_retransmit(&Handshake::parse(CONCLUSION).unwrap()),
            Some(to_client)
        );
    }

    #[test]
    fn stray_origin_packets() {
        let mut s = session(CONCLUSION);
        let mut other = ORIGIN_INDUCTION.to_vec();
        set_dest_socket_id(&mut other, 5).unwrap();
        assert_eq!(
            s.handle_datagram(NOW, &other),
            Err(Error::WrongSocketId {
                expected: FFMPEG_ID,
                got: 5
            })
        );
        assert!(matches!(
            s.handle_datagram(NOW, ORIGIN_CONCLUSION),
            Err(Error::UnexpectedHandshake { .. })
        ));
        let mut v4 = ORIGIN_INDUCTION.to_vec();
        v4.get_mut(16..20)
            .unwrap()
            .copy_from_slice(&4u32.to_be_bytes());
        assert_eq!(
            s.handle_datagram(NOW, &v4),
            Err(Error::UnsupportedVersion(4))
        );
        let data = include_bytes!("../../tests/data/session_o2c_ack_0.bin");
        assert_eq!(s.handle_datagram(NOW, data), Err(Error::NotHandshake));
        assert_eq!(
            s.answer_retransmit(&Handshake::parse(CONCLUSION).unwrap()),
            None,
            "pending: nothing to repeat"
        );

        let accepted = Accepted {
            handshake: Handshake::parse(CONCLUSION).unwrap(),
            streamid: None,
        };
        let ids = SessionIds {
            toward_client: 1,
            toward_origin: FFMPEG_ID,
        };
        let mut idle = Session::new(&accepted, client(), ids, NOW);
        assert!(idle.handle_datagram(NOW, ORIGIN_INDUCTION).is_err());
        assert_eq!((idle.poll_transmit(), idle.poll_timeout()), (None, None));
    }
}
