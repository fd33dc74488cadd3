//! The client-facing half of the handshake: stateless induction answers (SYN cookies),
//! conclusion checks and local refusals.

use std::net::SocketAddr;
use std::time::Duration;

use super::timestamp;
use crate::cookie::SynCookies;
use crate::extension::Extensions;
use crate::handshake::{Handshake, HandshakeType, PeerIp, BASE_LEN, SRT_MAGIC};
use crate::packet::ControlHeader;
use crate::reject::RejectReason;
use crate::{Error, StreamId};

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

    /// The socket id this listener gives in its induction answers.
    pub fn socket_id(&self) -> u32 {
        self.socket_id
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

#[cfg(test)]
mod tests {
    use super::*;

    const INDUCTION: &[u8] = include_bytes!("../../tests/data/ffmpeg_induction.bin");
    const CONCLUSION: &[u8] = include_bytes!("../../tests/data/ffmpeg_conclusion.bin");
    /// The socket id ffmpeg used.
    const FFMPEG_ID: u32 = 0x1547_7ebe;
    const NOW: Duration = Duration::from_secs(1_700_000_000);

    fn client() -> SocketAddr {
        "127.0.0.1:40000".parse().unwrap()
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
}
