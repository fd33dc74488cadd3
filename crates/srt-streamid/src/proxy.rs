//! The handshake as a proxy plays it: listener towards the client, caller towards the
//! origin, then relay by socket id.
//!
//! ```text
//! client                      proxy                                origin
//!   INDUCTION (dest 0) ----->  Listener::answer_induction (no state)
//!   <----- INDUCTION v5, SYN cookie, proxy's listener id
//!   CONCLUSION (cookie, SID) > Listener::accept_conclusion: cookie ok, streamid
//!                              pick origin; Session::new
//!                              Session::to_origin -------------->  INDUCTION (dest 0)
//!                              Session::on_origin  <------------  INDUCTION v5 + origin cookie
//!                                                  ------------->  CONCLUSION: client's
//!                                                                  fields and extensions,
//!                                                                  origin cookie, our id
//!                              Session::on_origin  <------------  CONCLUSION (HSRSP, KMRSP)
//!   <----- the origin's answer, ids/cookie/peer address translated   or a rejection
//!   data/control (dest = toward_client) -> Relay::client_to_origin -> (dest = origin's id)
//!   (dest = client's id) <- Relay::origin_to_client <- data/control (dest = toward_origin)
//! ```
//!
//! A repeated client conclusion (its answer was lost) arrives again with destination 0:
//! [`Session::answer_retransmit`] gives the stored answer, and nothing is sent to the
//! origin twice. A repeated induction is answered again by the stateless listener.
//!
//! The handshakes replayed to the origin carry the client's clock: the timestamp of the
//! client's conclusion plus the time since it arrived, as the client itself would have
//! stamped them. The origin takes the timestamp of the packet carrying HSREQ as the
//! caller's age and sets its TSBPD time base (when each data packet is due) to its own
//! "now" minus that age. Any other value shifts every packet's due time: too large and
//! data is released at once, without the latency buffer, or, once the age exceeds the
//! origin's monotonic clock (its host's uptime, for libsrt), never.

use std::net::SocketAddr;
use std::time::Duration;

use crate::cookie::SynCookies;
use crate::extension::Extensions;
use crate::handshake::{Handshake, HandshakeType, PeerIp, BASE_LEN, SRT_MAGIC};
use crate::packet::{set_dest_socket_id, ControlHeader};
use crate::reject::RejectReason;
use crate::{Error, StreamId};

/// SRT timestamps are microseconds modulo 2^32.
fn micros(t: Duration) -> u32 {
    (t.as_micros() & 0xFFFF_FFFF) as u32
}

/// The timestamp of the listener's own answers (inductions, rejections). A caller takes
/// no timing from them (its TSBPD base comes from the HSRSP, which is the origin's), so
/// any clock does.
fn timestamp(now: Duration) -> u32 {
    micros(now)
}

/// The client-facing half: answers inductions and checks conclusions without keeping
/// any state per client.
#[derive(Debug, Clone)]
pub struct Listener {
    cookies: SynCookies,
    socket_id: u32,
    encryption: u16,
}

/// A conclusion whose cookie checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted<'a> {
    /// The client's conclusion, extensions borrowed.
    pub handshake: Handshake<'a>,
    /// The streamid from its SID block, if any.
    pub streamid: Option<String>,
}

impl Accepted<'_> {
    /// The streamid parsed with the `#!::` grammar, `None` without a SID block.
    pub fn parse_streamid(&self) -> Option<Result<StreamId, Error>> {
        self.streamid.as_deref().map(StreamId::parse)
    }
}

impl Listener {
    /// A listener handing out `cookies` and calling itself `socket_id` in its inductions.
    pub fn new(cookies: SynCookies, socket_id: u32) -> Self {
        Listener {
            cookies,
            socket_id,
            encryption: 0,
        }
    }

    /// Advertises a key length in induction answers (`PBKEYLEN / 8`: 2, 3 or 4; 0, the
    /// default, advertises nothing and lets the caller's KMREQ decide).
    pub fn with_encryption(mut self, encryption: u16) -> Self {
        self.encryption = encryption;
        self
    }

    /// The answer to a caller's induction: version 5, the SRT magic, a cookie bound to
    /// `peer` and the current bucket. Stores nothing.
    pub fn answer_induction(
        &self,
        induction: &Handshake<'_>,
        peer: SocketAddr,
        now: Duration,
    ) -> Result<[u8; BASE_LEN], Error> {
        if induction.kind != HandshakeType::Induction {
            return Err(Error::UnexpectedHandshake {
                expected: "induction",
                got: induction.kind,
            });
        }
        if !(4..=5).contains(&induction.version) {
            return Err(Error::UnsupportedVersion(induction.version));
        }
        let answer = Handshake {
            header: ControlHeader {
                timestamp: timestamp(now),
                dest_socket_id: induction.socket_id,
                ..induction.header
            },
            version: 5,
            encryption: self.encryption,
            extension_field: SRT_MAGIC,
            kind: HandshakeType::Induction,
            socket_id: self.socket_id,
            cookie: self.cookies.generate(peer, now),
            peer_ip: PeerIp::from_ip(peer.ip()),
            extensions: Extensions::EMPTY,
            ..*induction
        };
        Ok(answer.encode_base())
    }

    /// Checks a caller's conclusion: HSv5, a cookie this listener gave `peer` recently,
    /// and a decodable SID block if there is one.
    pub fn accept_conclusion<'a>(
        &self,
        conclusion: Handshake<'a>,
        peer: SocketAddr,
        now: Duration,
    ) -> Result<Accepted<'a>, Error> {
        if conclusion.kind != HandshakeType::Conclusion {
            return Err(Error::UnexpectedHandshake {
                expected: "conclusion",
                got: conclusion.kind,
            });
        }
        if conclusion.version != 5 {
            return Err(Error::UnsupportedVersion(conclusion.version));
        }
        if !self.cookies.verify(peer, conclusion.cookie, now) {
            return Err(Error::BadCookie {
                cookie: conclusion.cookie,
            });
        }
        let streamid = conclusion.streamid()?;
        Ok(Accepted {
            handshake: conclusion,
            streamid,
        })
    }

    /// A refusal of `request` (bad streamid, no origin...), addressed to the requester.
    pub fn reject(
        &self,
        request: &Handshake<'_>,
        peer: SocketAddr,
        reason: RejectReason,
        now: Duration,
    ) -> [u8; BASE_LEN] {
        let rejection = request.rejection(reason);
        Handshake {
            header: ControlHeader {
                timestamp: timestamp(now),
                ..rejection.header
            },
            socket_id: self.socket_id,
            peer_ip: PeerIp::from_ip(peer.ip()),
            ..rejection
        }
        .encode_base()
    }
}

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

/// How to rewrite packets once both legs are up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Relay {
    /// The client's own socket id.
    pub client_socket_id: u32,
    /// The origin's socket id for this connection.
    pub origin_socket_id: u32,
    /// The proxy's ids.
    pub ids: SessionIds,
}

impl Relay {
    /// Readdresses a client packet (sent to `ids.toward_client`) to the origin.
    #[inline]
    pub fn client_to_origin(&self, datagram: &mut [u8]) -> Result<(), Error> {
        set_dest_socket_id(datagram, self.origin_socket_id)
    }

    /// Readdresses an origin packet (sent to `ids.toward_origin`) to the client.
    #[inline]
    pub fn origin_to_client(&self, datagram: &mut [u8]) -> Result<(), Error> {
        set_dest_socket_id(datagram, self.client_socket_id)
    }
}

/// What to do after a packet from the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginStep {
    /// Send this conclusion to the origin.
    SendToOrigin(Vec<u8>),
    /// Send this to the client; relay from now on.
    Connected {
        /// The origin's answer, translated.
        to_client: Vec<u8>,
        /// The id mapping.
        relay: Relay,
    },
    /// Send this to the client; the connection is over.
    Rejected {
        /// The origin's rejection, translated.
        to_client: Vec<u8>,
        /// Its reason.
        reason: RejectReason,
    },
    /// A duplicate of something already handled.
    Nothing,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Both legs are up.
    Connected(Relay),
    /// The origin refused.
    Rejected(RejectReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    AwaitInduction,
    AwaitConclusion { origin_cookie: u32 },
    Done { reply: Vec<u8>, outcome: Outcome },
}

/// One client's handshake replayed to one origin. Small (the client's conclusion and the
/// answer), so the front-end can keep it for retransmissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    client: SocketAddr,
    origin: SocketAddr,
    ids: SessionIds,
    // The client's conclusion with its extensions cut off, and those extensions.
    conclusion: Handshake<'static>,
    extensions: Vec<u8>,
    /// When the conclusion arrived: its timestamp was the client's clock then.
    received: Duration,
    state: State,
}

impl Session {
    /// Starts replaying `accepted` (from `client`) to `origin`. `received` is when the
    /// client's conclusion arrived, on the clock later given to [`Session::to_origin`] and
    /// [`Session::on_origin`] (any epoch; a monotonic one keeps the origin's idea of the
    /// client's age right across wall-clock steps).
    pub fn new(
        accepted: &Accepted<'_>,
        client: SocketAddr,
        origin: SocketAddr,
        ids: SessionIds,
        received: Duration,
    ) -> Self {
        let hs = accepted.handshake;
        Session {
            client,
            origin,
            ids,
            conclusion: Handshake {
                extensions: Extensions::EMPTY,
                ..hs
            },
            extensions: hs.extensions.as_bytes().to_vec(),
            received,
            state: State::AwaitInduction,
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

    /// The origin's address.
    pub fn origin_addr(&self) -> SocketAddr {
        self.origin
    }

    /// The proxy's ids.
    pub fn ids(&self) -> SessionIds {
        self.ids
    }

    /// The outcome, once the origin has answered the conclusion.
    pub fn outcome(&self) -> Option<Outcome> {
        match &self.state {
            State::Done { outcome, .. } => Some(*outcome),
            _ => None,
        }
    }

    /// What to send to the origin now, and again on each retransmission timer while it
    /// does not answer: our induction, then the conclusion. `None` once done.
    pub fn to_origin(&self, now: Duration) -> Option<Vec<u8>> {
        match self.state {
            State::AwaitInduction => Some(self.induction(now).to_vec()),
            State::AwaitConclusion { origin_cookie } => {
                Some(self.origin_conclusion(origin_cookie, now))
            }
            State::Done { .. } => None,
        }
    }

    /// Advances on a handshake from the origin (sent to `ids.toward_origin`).
    pub fn on_origin(&mut self, hs: &Handshake<'_>, now: Duration) -> Result<OriginStep, Error> {
        if hs.header.dest_socket_id != self.ids.toward_origin {
            return Err(Error::WrongSocketId {
                expected: self.ids.toward_origin,
                got: hs.header.dest_socket_id,
            });
        }
        match (&self.state, hs.kind) {
            (State::Done { .. }, _) => Ok(OriginStep::Nothing),
            (_, HandshakeType::Rejection(reason)) => {
                let to_client = self.translate(hs);
                self.state = State::Done {
                    reply: to_client.clone(),
                    outcome: Outcome::Rejected(reason),
                };
                Ok(OriginStep::Rejected { to_client, reason })
            }
            (_, HandshakeType::Induction) => {
                // An origin that answers version 4 cannot read HSv5 extensions.
                if hs.version < 5 {
                    return Err(Error::UnsupportedVersion(hs.version));
                }
                self.state = State::AwaitConclusion {
                    origin_cookie: hs.cookie,
                };
                Ok(OriginStep::SendToOrigin(
                    self.origin_conclusion(hs.cookie, now),
                ))
            }
            (State::AwaitConclusion { .. }, HandshakeType::Conclusion) => {
                let relay = Relay {
                    client_socket_id: self.client_socket_id(),
                    origin_socket_id: hs.socket_id,
                    ids: self.ids,
                };
                let to_client = self.translate(hs);
                self.state = State::Done {
                    reply: to_client.clone(),
                    outcome: Outcome::Connected(relay),
                };
                Ok(OriginStep::Connected { to_client, relay })
            }
            (_, got) => Err(Error::UnexpectedHandshake {
                expected: "induction or conclusion answer",
                got,
            }),
        }
    }

    /// The stored answer to a repeated client conclusion; `None` while the origin has not
    /// answered yet (then drop it: the answer will go out when it comes) or if `hs` is not
    /// this client's conclusion.
    pub fn answer_retransmit(&self, hs: &Handshake<'_>) -> Option<&[u8]> {
        let same = hs.kind == HandshakeType::Conclusion && hs.socket_id == self.client_socket_id();
        match &self.state {
            State::Done { reply, .. } if same => Some(reply),
            _ => None,
        }
    }

    /// The client's clock at `now`: what it would stamp a handshake with if it were
    /// talking to the origin itself.
    fn client_clock(&self, now: Duration) -> u32 {
        let since = micros(now.saturating_sub(self.received));
        self.conclusion.header.timestamp.wrapping_add(since)
    }

    fn induction(&self, now: Duration) -> [u8; BASE_LEN] {
        let c = &self.conclusion;
        let hs = Handshake::caller_induction(
            self.ids.toward_origin,
            c.initial_seq,
            c.mtu,
            c.flow_window,
            self.origin.ip(),
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
            peer_ip: PeerIp::from_ip(self.origin.ip()),
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
    use crate::packet::dest_socket_id;

    const INDUCTION: &[u8] = include_bytes!("../tests/data/ffmpeg_induction.bin");
    const CONCLUSION: &[u8] = include_bytes!("../tests/data/ffmpeg_conclusion.bin");
    const KM_CONCLUSION: &[u8] = include_bytes!("../tests/data/ffmpeg_passphrase_conclusion.bin");
    const ORIGIN_INDUCTION: &[u8] =
        include_bytes!("../tests/data/libsrt_listener_induction_response.bin");
    const ORIGIN_CONCLUSION: &[u8] =
        include_bytes!("../tests/data/libsrt_listener_conclusion_response.bin");
    const ORIGIN_REJECT: &[u8] =
        include_bytes!("../tests/data/libsrt_listener_reject_conclusion_response.bin");
    /// The socket id ffmpeg used; the libsrt listener answers were addressed to it.
    const FFMPEG_ID: u32 = 0x1547_7ebe;
    const NOW: Duration = Duration::from_secs(1_700_000_000);

    fn client() -> SocketAddr {
        "127.0.0.1:40000".parse().unwrap()
    }

    fn origin() -> SocketAddr {
        "127.0.0.1:10080".parse().unwrap()
    }

    fn listener() -> Listener {
        Listener::new(SynCookies::new([1; 32]), 0xAAAA_0001)
    }

    /// ffmpeg's conclusion carrying the cookie `listener()` gives `client()` at `NOW`.
    fn conclusion_with_our_cookie(bytes: &[u8]) -> Vec<u8> {
        let mut c = bytes.to_vec();
        let cookie = SynCookies::new([1; 32]).generate(client(), NOW);
        c.get_mut(44..48)
            .unwrap()
            .copy_from_slice(&cookie.to_be_bytes());
        c
    }

    #[test]
    fn induction_answer_fields() {
        let answer = listener()
            .answer_induction(&Handshake::parse(INDUCTION).unwrap(), client(), NOW)
            .unwrap();
        let hs = Handshake::parse(&answer).unwrap();
        assert_eq!(
            (hs.version, hs.extension_field, hs.encryption),
            (5, SRT_MAGIC, 0)
        );
        assert_eq!(hs.kind, HandshakeType::Induction);
        assert_eq!(
            (hs.header.dest_socket_id, hs.socket_id),
            (FFMPEG_ID, 0xAAAA_0001)
        );
        assert_eq!(hs.cookie, SynCookies::new([1; 32]).generate(client(), NOW));
        assert_eq!(hs.peer_ip.to_ip(), client().ip());
        let ffmpeg = Handshake::parse(INDUCTION).unwrap();
        assert_eq!(
            (hs.initial_seq, hs.mtu, hs.flow_window),
            (ffmpeg.initial_seq, ffmpeg.mtu, ffmpeg.flow_window)
        );
        let with_key = listener()
            .with_encryption(2)
            .answer_induction(&ffmpeg, client(), NOW)
            .unwrap();
        assert_eq!(Handshake::parse(&with_key).unwrap().encryption, 2);
    }

    #[test]
    fn conclusion_checks() {
        let l = listener();
        let good = conclusion_with_our_cookie(CONCLUSION);
        let accepted = l
            .accept_conclusion(Handshake::parse(&good).unwrap(), client(), NOW)
            .unwrap();
        assert_eq!(
            accepted.streamid.as_deref(),
            Some("#!::r=live/livestream,m=publish")
        );
        let sid = accepted.parse_streamid().unwrap().unwrap();
        assert_eq!(sid.resource.as_deref(), Some("live/livestream"));
        assert!(l
            .accept_conclusion(
                Handshake::parse(&good).unwrap(),
                client(),
                NOW + Duration::from_secs(61)
            )
            .is_ok());
        let spoofed: SocketAddr = "127.0.0.2:40000".parse().unwrap();
        assert_eq!(
            l.accept_conclusion(Handshake::parse(&good).unwrap(), spoofed, NOW)
                .unwrap_err(),
            Error::BadCookie {
                cookie: Handshake::parse(&good).unwrap().cookie
            }
        );
        assert!(matches!(
            l.accept_conclusion(Handshake::parse(CONCLUSION).unwrap(), client(), NOW),
            Err(Error::BadCookie { .. })
        ));
        assert!(matches!(
            l.accept_conclusion(Handshake::parse(INDUCTION).unwrap(), client(), NOW),
            Err(Error::UnexpectedHandshake {
                expected: "conclusion",
                ..
            })
        ));
        assert!(matches!(
            l.answer_induction(&Handshake::parse(CONCLUSION).unwrap(), client(), NOW),
            Err(Error::UnexpectedHandshake {
                expected: "induction",
                ..
            })
        ));
    }

    #[test]
    fn local_rejection() {
        let req = Handshake::parse(CONCLUSION).unwrap();
        let bytes = listener().reject(&req, client(), RejectReason::Unavailable, NOW);
        let rej = Handshake::parse(&bytes).unwrap();
        assert_eq!(
            rej.kind,
            HandshakeType::Rejection(RejectReason::Unavailable)
        );
        assert_eq!(rej.kind.to_wire(), 2503);
        assert_eq!(rej.header.dest_socket_id, FFMPEG_ID);
        assert!(rej.extensions.is_empty());
    }

    /// The captured libsrt listener answers were made for ffmpeg's socket id, so a session
    /// using that id toward the origin can be driven by them unchanged.
    fn session(conclusion: &[u8]) -> Session {
        session_at(conclusion, NOW)
    }

    /// As [`session`], the conclusion having arrived at `received`.
    fn session_at(conclusion: &[u8], received: Duration) -> Session {
        let accepted = Accepted {
            handshake: Handshake::parse(conclusion).unwrap(),
            streamid: None,
        };
        let ids = SessionIds {
            toward_client: 0xBBBB_0002,
            toward_origin: FFMPEG_ID,
        };
        Session::new(&accepted, client(), origin(), ids, received)
    }

    fn without_timestamp(bytes: &[u8]) -> Vec<u8> {
        let mut b = bytes.to_vec();
        b.get_mut(8..12).unwrap().fill(0);
        b
    }

    #[test]
    fn replay_to_a_libsrt_origin() {
        let mut s = session(CONCLUSION);
        // Our induction to the origin is what libsrt itself sent, apart from the timestamp
        // (the client's clock when its conclusion came, as no time has passed).
        let induction = s.to_origin(NOW).unwrap();
        assert_eq!(without_timestamp(&induction), without_timestamp(INDUCTION));
        assert_eq!(induction.get(8..12), CONCLUSION.get(8..12));

        let step = s
            .on_origin(&Handshake::parse(ORIGIN_INDUCTION).unwrap(), NOW)
            .unwrap();
        let OriginStep::SendToOrigin(conclusion) = step else {
            panic!("{step:?}")
        };
        assert_eq!(
            s.to_origin(NOW),
            Some(conclusion.clone()),
            "retransmission timer resends it"
        );
        let mut expected = CONCLUSION.to_vec();
        expected
            .get_mut(44..48)
            .unwrap()
            .copy_from_slice(ORIGIN_INDUCTION.get(44..48).unwrap());
        assert_eq!(
            conclusion, expected,
            "the client's conclusion, timestamp included, with the origin's cookie"
        );

        let step = s
            .on_origin(&Handshake::parse(ORIGIN_CONCLUSION).unwrap(), NOW)
            .unwrap();
        let OriginStep::Connected { to_client, relay } = step else {
            panic!("{step:?}")
        };
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
        assert_eq!(s.outcome(), Some(Outcome::Connected(relay)));
        assert_eq!(s.to_origin(NOW), None);

        let again = s
            .on_origin(&Handshake::parse(ORIGIN_CONCLUSION).unwrap(), NOW)
            .unwrap();
        assert_eq!(again, OriginStep::Nothing);
        assert_eq!(
            s.answer_retransmit(&Handshake::parse(CONCLUSION).unwrap()),
            Some(to_client.as_slice())
        );
        assert_eq!(
            s.answer_retransmit(&Handshake::parse(INDUCTION).unwrap()),
            None
        );

        let mut data = include_bytes!("../tests/data/session_c2o_data_0.bin").to_vec();
        relay.client_to_origin(&mut data).unwrap();
        assert_eq!(dest_socket_id(&data), Some(origin_hs.socket_id));
        relay.origin_to_client(&mut data).unwrap();
        assert_eq!(dest_socket_id(&data), Some(FFMPEG_ID));
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
            let mut s = session_at(CONCLUSION, epoch);
            assert_eq!(ts(&s.to_origin(epoch + ms(1)).unwrap()), FFMPEG_TS + 1_000);
            let OriginStep::SendToOrigin(conclusion) = s
                .on_origin(&Handshake::parse(ORIGIN_INDUCTION).unwrap(), epoch + ms(2))
                .unwrap()
            else {
                panic!("conclusion expected")
            };
            let mut expected = CONCLUSION.to_vec();
            expected
                .get_mut(8..12)
                .unwrap()
                .copy_from_slice(&(FFMPEG_TS + 2_000).to_be_bytes());
            expected
                .get_mut(44..48)
                .unwrap()
                .copy_from_slice(ORIGIN_INDUCTION.get(44..48).unwrap());
            assert_eq!(conclusion, expected, "epoch {epoch:?}");
            let resent = s.to_origin(epoch + ms(252)).unwrap();
            assert_eq!(ts(&resent), FFMPEG_TS + 252_000, "a resend is stamped anew");
        }

        // SRT timestamps wrap at 2^32 microseconds; a clock stepping back adds nothing.
        let mut late = CONCLUSION.to_vec();
        late.get_mut(8..12)
            .unwrap()
            .copy_from_slice(&0xFFFF_FF00u32.to_be_bytes());
        let s = session_at(&late, NOW);
        assert_eq!(ts(&s.to_origin(NOW + ms(1)).unwrap()), 1_000 - 0x100);
        assert_eq!(ts(&s.to_origin(NOW - ms(1)).unwrap()), 0xFFFF_FF00);
    }

    #[test]
    fn km_extensions_pass_through() {
        let mut s = session(KM_CONCLUSION);
        let _ = s.to_origin(NOW);
        let OriginStep::SendToOrigin(c) = s
            .on_origin(&Handshake::parse(ORIGIN_INDUCTION).unwrap(), NOW)
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            c.get(64..),
            KM_CONCLUSION.get(64..),
            "HSREQ, SID and KMREQ untouched"
        );
    }

    #[test]
    fn origin_rejection_reaches_the_client() {
        let mut s = session(CONCLUSION);
        let _ = s
            .on_origin(&Handshake::parse(ORIGIN_INDUCTION).unwrap(), NOW)
            .unwrap();
        let step = s
            .on_origin(&Handshake::parse(ORIGIN_REJECT).unwrap(), NOW)
            .unwrap();
        let OriginStep::Rejected { to_client, reason } = step else {
            panic!("{step:?}")
        };
        assert_eq!(reason, RejectReason::Unsecure);
        let hs = Handshake::parse(&to_client).unwrap();
        assert_eq!(
            (hs.kind.to_wire(), hs.header.dest_socket_id),
            (1011, FFMPEG_ID)
        );
        assert_eq!(s.outcome(), Some(Outcome::Rejected(RejectReason::Unsecure)));
        assert_eq!(
            s.answer_retransmit(&Handshake::parse(CONCLUSION).unwrap()),
            Some(to_client.as_slice())
        );
    }

    #[test]
    fn stray_origin_packets() {
        let mut s = session(CONCLUSION);
        let mut other = ORIGIN_INDUCTION.to_vec();
        set_dest_socket_id(&mut other, 5).unwrap();
        assert_eq!(
            s.on_origin(&Handshake::parse(&other).unwrap(), NOW),
            Err(Error::WrongSocketId {
                expected: FFMPEG_ID,
                got: 5
            })
        );
        assert!(matches!(
            s.on_origin(&Handshake::parse(ORIGIN_CONCLUSION).unwrap(), NOW),
            Err(Error::UnexpectedHandshake { .. })
        ));
        let mut v4 = ORIGIN_INDUCTION.to_vec();
        v4.get_mut(16..20)
            .unwrap()
            .copy_from_slice(&4u32.to_be_bytes());
        assert_eq!(
            s.on_origin(&Handshake::parse(&v4).unwrap(), NOW),
            Err(Error::UnsupportedVersion(4))
        );
        assert_eq!(
            s.answer_retransmit(&Handshake::parse(CONCLUSION).unwrap()),
            None,
            "pending: nothing to repeat"
        );
    }
}
