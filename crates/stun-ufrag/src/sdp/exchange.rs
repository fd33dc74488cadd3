//! One WHIP/WHEP offer/answer exchange as a relay sees it: the credentials both sides
//! named, the answer the client gets, and where the origin takes the media.

use std::borrow::Cow;
use std::net::SocketAddr;

use super::{
    candidates, ice_credentials, rewrite_candidates, rewrite_sdpfrag_candidates,
    sdpfrag_ice_credentials, CandidateAddr, CandidateType, IceCredentials, TcpCandidates,
    Transport,
};
use crate::Error;

/// The ICE credentials of both sides of an exchange: what a relay needs to verify the
/// client's checks (server's) and to ask the client for consent (client's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Exchange<'a> {
    /// From the client's offer.
    pub client: IceCredentials<'a>,
    /// From the server's answer.
    pub server: IceCredentials<'a>,
}

/// A server's answer as a relay hands it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedAnswer<'a> {
    /// The server's ICE credentials.
    pub server: IceCredentials<'a>,
    /// The answer for the client: candidates rewritten to the relay's public address, or
    /// untouched when the relay has none (it does not carry the media).
    pub body: Cow<'a, str>,
    /// Where the server takes the media, per its answer ([`media_candidate`]).
    pub media: Option<SocketAddr>,
}

/// Reads a server's full SDP answer and rewrites it for the client (see
/// [`rewrite_candidates`]). Fails if it has no usable ICE credentials, or cannot be
/// rewritten.
pub fn relay_answer<'a>(
    answer: &'a str,
    public: Option<&CandidateAddr>,
    tcp: TcpCandidates,
) -> Result<RelayedAnswer<'a>, Error> {
    let server = ice_credentials(answer)?;
    let body = match public {
        Some(public) => Cow::Owned(rewrite_candidates(answer, public, tcp)?),
        None => Cow::Borrowed(answer),
    };
    Ok(RelayedAnswer {
        server,
        body,
        media: media_candidate(answer),
    })
}

/// The first UDP host candidate with an IP address (not an mDNS name) of a full SDP or an
/// sdpfrag: where a server that opens a port per session takes its media. The IP may be
/// unspecified (`0.0.0.0`): the server's own host is meant.
pub fn media_candidate(body: &str) -> Option<SocketAddr> {
    let all = candidates(body).ok()?;
    all.iter()
        .filter(|(_, c)| c.transport == Transport::Udp && c.kind == CandidateType::Host)
        .find_map(|(_, c)| c.socket_addr())
}

/// A trickle PATCH exchange (`application/trickle-ice-sdpfrag` both ways) that restarts
/// ICE: both fragments carry new credentials. `None` for plain candidate trickling, or if
/// either side is malformed.
pub fn ice_restart<'a>(offer_frag: &'a str, answer_frag: &'a str) -> Option<Exchange<'a>> {
    let client = sdpfrag_ice_credentials(offer_frag).ok()??;
    let server = sdpfrag_ice_credentials(answer_frag).ok()??;
    Some(Exchange { client, server })
}

/// A trickle answer fragment for the client (see [`rewrite_sdpfrag_candidates`]); as it
/// is without a public address.
pub fn relay_answer_fragment<'a>(
    frag: &'a str,
    public: Option<&CandidateAddr>,
    tcp: TcpCandidates,
) -> Result<Cow<'a, str>, Error> {
    match public {
        Some(public) => rewrite_sdpfrag_candidates(frag, public, tcp).map(Cow::Owned),
        None => Ok(Cow::Borrowed(frag)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::tests::SRS_ANSWER;

    #[test]
    fn an_srs_answer_is_read_and_rewritten_for_the_client() {
        let public = CandidateAddr::new([203, 0, 113, 10].into(), 18000);
        let relayed = relay_answer(SRS_ANSWER, Some(&public), TcpCandidates::Drop).unwrap();
        assert_eq!(
            relayed.server,
            IceCredentials {
                ufrag: "2m8u6b05",
                pwd: "c5i0u0e2o38k2t4i9q0x8m5k0g9d9fyx"
            }
        );
        assert_eq!(relayed.media, Some("192.168.3.6:8000".parse().unwrap()));
        assert!(relayed
            .body
            .contains("a=candidate:0 1 udp 2130706431 203.0.113.10 18000 typ host"));
        assert!(!relayed.body.contains("192.168.3.6"));
        let as_is = relay_answer(SRS_ANSWER, None, TcpCandidates::Drop).unwrap();
        assert_eq!(as_is.body, SRS_ANSWER, "no public address: untouched");
    }

    #[test]
    fn answers_without_credentials_are_refused() {
        let answer =
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n";
        assert_eq!(
            relay_answer(answer, None, TcpCandidates::Drop),
            Err(Error::MissingIceUfrag)
        );
        assert_eq!(
            relay_answer("not sdp", None, TcpCandidates::Drop),
            Err(Error::NotSdp)
        );
    }

    #[test]
    fn the_media_candidate_is_the_first_udp_host_with_an_ip() {
        let body = "v=0\r\n\
            a=candidate:1 1 tcp 1 10.0.0.9 9 typ host tcptype active\r\n\
            a=candidate:2 1 udp 1 203.0.113.1 5000 typ srflx raddr 0.0.0.0 rport 0\r\n\
            a=candidate:3 1 udp 1 f0e1.local 5001 typ host\r\n\
            a=candidate:4 1 udp 1 0.0.0.0 40001 typ host\r\n\
            a=candidate:5 1 udp 1 10.0.0.9 40002 typ host\r\n";
        assert_eq!(
            media_candidate(body),
            Some("0.0.0.0:40001".parse().unwrap())
        );
        assert_eq!(media_candidate("v=0\r\n"), None);
        assert_eq!(media_candidate("a=candidate:bad\r\n"), None);
    }

    #[test]
    fn an_ice_restart_needs_new_credentials_on_both_sides() {
        let offer = "a=ice-ufrag:newc\r\na=ice-pwd:newclientpassword012345\r\n";
        let answer = "a=ice-ufrag:news\r\na=ice-pwd:newserverpassword012345\r\na=candidate:1 1 udp 1 10.0.0.9 8000 typ host\r\n";
        let trickle = "a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n";
        let restart = ice_restart(offer, answer).unwrap();
        assert_eq!(
            (restart.client.ufrag, restart.server.ufrag),
            ("newc", "news")
        );
        assert_eq!(restart.server.pwd, "newserverpassword012345");
        assert_eq!(ice_restart(trickle, answer), None, "plain trickling");
        assert_eq!(ice_restart(offer, trickle), None);
        assert_eq!(
            ice_restart(offer, "a=ice-ufrag:only\r\n"),
            None,
            "malformed"
        );
        let public = CandidateAddr::new([203, 0, 113, 10].into(), 18000);
        let rewritten = relay_answer_fragment(answer, Some(&public), TcpCandidates::Drop);
        assert!(rewritten.unwrap().contains("203.0.113.10 18000 typ host"));
        assert_eq!(
            relay_answer_fragment(answer, None, TcpCandidates::Drop).unwrap(),
            answer
        );
    }
}
