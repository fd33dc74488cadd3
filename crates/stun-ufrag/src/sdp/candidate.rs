//! `a=candidate` lines (RFC 8839 §5.1): parsing, and rewriting an origin's candidates so
//! clients reach the proxy instead.

use std::net::{IpAddr, SocketAddr};

use super::{check_full_sdp, check_limits, lines, Section};
use crate::Error;

/// Candidate transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// `udp` (any case).
    Udp,
    /// `tcp` (any case, RFC 6544).
    Tcp,
    /// Anything else.
    Other,
}

/// Candidate type (`typ` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CandidateType {
    /// `host`.
    Host,
    /// `srflx`: server reflexive.
    Srflx,
    /// `prflx`: peer reflexive.
    Prflx,
    /// `relay`: TURN.
    Relay,
    /// Anything else.
    Other,
}

/// One parsed candidate, borrowing the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Foundation.
    pub foundation: &'a str,
    /// Component id (1 RTP, 2 RTCP).
    pub component: u16,
    /// Transport.
    pub transport: Transport,
    /// Priority.
    pub priority: u32,
    /// Connection address: an IPv4 or IPv6 address, or a host name (mDNS `.local`, FQDN).
    pub address: &'a str,
    /// Port.
    pub port: u16,
    /// Candidate type.
    pub kind: CandidateType,
    /// `tcptype` extension (`active`, `passive`, `so`) of TCP candidates.
    pub tcp_type: Option<&'a str>,
    /// `raddr` extension.
    pub related_address: Option<&'a str>,
    /// `rport` extension.
    pub related_port: Option<u16>,
    /// Byte range of `address` within the parsed text.
    address_span: (usize, usize),
    /// Byte range of `port` within the parsed text.
    port_span: (usize, usize),
}

/// Splits on runs of spaces/tabs, keeping each token's offset.
fn tokens(s: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = s;
    let mut base = 0usize;
    std::iter::from_fn(move || {
        let trimmed = rest.trim_start_matches([' ', '\t']);
        base += rest.len() - trimmed.len();
        if trimmed.is_empty() {
            return None;
        }
        let end = trimmed.find([' ', '\t']).unwrap_or(trimmed.len());
        let (tok, after) = trimmed.split_at(end);
        let at = base;
        base += end;
        rest = after;
        Some((at, tok))
    })
}

fn number<T: std::str::FromStr>(tok: &str, max_digits: usize) -> Option<T> {
    // `str::parse` accepts a leading '+', the grammar does not.
    if tok.is_empty() || tok.len() > max_digits || !tok.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    tok.parse().ok()
}

impl<'a> Candidate<'a> {
    /// Parses `a=candidate:...` (SDP) or `candidate:...` (the trickle / JSON form).
    pub fn parse(text: &'a str) -> Result<Self, Error> {
        Self::parse_at(text, 1)
    }

    fn parse_at(text: &'a str, line: usize) -> Result<Self, Error> {
        let bad = Error::BadCandidate { line };
        let prefix_len = if text.starts_with("a=candidate:") {
            "a=candidate:".len()
        } else if text.starts_with("candidate:") {
            "candidate:".len()
        } else {
            return Err(bad);
        };
        let body = text.get(prefix_len..).ok_or(bad)?;
        let mut toks = tokens(body).map(|(at, t)| (at + prefix_len, t));
        let mut next = || toks.next().ok_or(bad);

        let (_, foundation) = next()?;
        if foundation.len() > 32 {
            return Err(bad);
        }
        let component: u16 = number(next()?.1, 3).ok_or(bad)?;
        if !(1..=256).contains(&component) {
            return Err(bad);
        }
        let transport = match next()?.1 {
            t if t.eq_ignore_ascii_case("udp") => Transport::Udp,
            t if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
            _ => Transport::Other,
        };
        let priority: u32 = number(next()?.1, 10).ok_or(bad)?;
        let (addr_at, address) = next()?;
        if address.len() > 255 {
            return Err(bad);
        }
        let (port_at, port_tok) = next()?;
        let port: u16 = number(port_tok, 5).ok_or(bad)?;
        if next()?.1 != "typ" {
            return Err(bad);
        }
        let kind = match next()?.1 {
            "host" => CandidateType::Host,
            "srflx" => CandidateType::Srflx,
            "prflx" => CandidateType::Prflx,
            "relay" => CandidateType::Relay,
            _ => CandidateType::Other,
        };
        let mut c = Candidate {
            foundation,
            component,
            transport,
            priority,
            address,
            port,
            kind,
            tcp_type: None,
            related_address: None,
            related_port: None,
            address_span: (addr_at, addr_at + address.len()),
            port_span: (port_at, port_at + port_tok.len()),
        };
        // Extensions come in name/value pairs; an unpaired trailing name is ignored.
        while let (Ok((_, name)), Ok((_, value))) = (next(), next()) {
            match name {
                "raddr" => c.related_address = Some(value),
                "rport" => c.related_port = Some(number(value, 5).ok_or(bad)?),
                "tcptype" => c.tcp_type = Some(value),
                _ => {}
            }
        }
        Ok(c)
    }

    /// The address as an IP, `None` for host names.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }

    /// Address and port, when the address is an IP.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.ip().map(|ip| SocketAddr::new(ip, self.port))
    }

    /// True for an mDNS name (`<uuid>.local`), which browsers use to hide host addresses.
    pub fn is_mdns(&self) -> bool {
        let a = self.address.as_bytes();
        a.len() > 6
            && a.get(a.len() - 6..)
                .is_some_and(|tail| tail.eq_ignore_ascii_case(b".local"))
    }
}

/// The candidates of a full SDP or an sdpfrag with the section each is in. On an origin's
/// answer this tells the proxy where to send the media.
pub fn candidates(body: &str) -> Result<Vec<(Section, Candidate<'_>)>, Error> {
    check_limits(body)?;
    let mut section = Section::Session;
    let mut media = 0usize;
    let mut out = Vec::new();
    for line in lines(body) {
        if line.content.starts_with("m=") {
            section = Section::Media(media);
            media += 1;
        } else if line.content.starts_with("a=candidate:") {
            out.push((section, Candidate::parse_at(line.content, line.number)?));
        }
    }
    Ok(out)
}

/// Host part of the proxy's public address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CandidateHost {
    /// An IPv4 or IPv6 address (written without brackets, as candidates require).
    Ip(IpAddr),
    /// A DNS name (RFC 8839 allows an FQDN as connection address).
    Name(String),
}

/// The public address and UDP port clients should send media to: the proxy's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CandidateAddr {
    /// Address or name.
    pub host: CandidateHost,
    /// UDP port.
    pub port: u16,
}

impl CandidateAddr {
    /// An IP address and port.
    pub fn new(ip: IpAddr, port: u16) -> Self {
        CandidateAddr {
            host: CandidateHost::Ip(ip),
            port,
        }
    }

    /// A DNS name and port. The name is validated when used.
    pub fn named(name: impl Into<String>, port: u16) -> Self {
        CandidateAddr {
            host: CandidateHost::Name(name.into()),
            port,
        }
    }

    fn host_text(&self) -> Result<String, Error> {
        match &self.host {
            CandidateHost::Ip(ip) => Ok(ip.to_string()),
            CandidateHost::Name(name) => {
                // Anything beyond letters, digits, '-', '_' and '.' could smuggle a space or
                // line break into the SDP.
                let ok = !name.is_empty()
                    && name.len() <= 253
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                if ok {
                    Ok(name.clone())
                } else {
                    Err(Error::BadPublicHost)
                }
            }
        }
    }
}

impl From<SocketAddr> for CandidateAddr {
    fn from(addr: SocketAddr) -> Self {
        CandidateAddr::new(addr.ip(), addr.port())
    }
}

/// What to do with TCP (RFC 6544) candidates of the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TcpCandidates {
    /// Remove them: the proxy relays UDP only, and they would expose the origin.
    #[default]
    Drop,
    /// Leave every TCP candidate exactly as the origin wrote it (clients may then reach the
    /// origin directly).
    Keep,
    /// Rewrite host TCP candidates to the public host and this TCP port (active ones keep
    /// their discard port 9), for a proxy that also relays ICE-TCP.
    Rewrite(u16),
}

/// Rewrites the candidates of a full SDP (typically the origin's answer) to `public`.
///
/// - UDP `host` candidates, IPv4, IPv6 or mDNS name alike, get `public`'s address and port;
///   since they then all read the same, only the first per media section and component is
///   kept.
/// - `srflx`, `prflx`, `relay` and unknown-type or unknown-transport candidates are dropped:
///   they describe paths to the origin that bypass the proxy.
/// - TCP candidates follow `tcp`; a `Rewrite` keeps only host ones, deduplicated like UDP.
/// - Every other line, `a=end-of-candidates`, `c=` and the `m=` port included, is copied
///   byte for byte, CRLF or LF as found.
pub fn rewrite_candidates(
    sdp: &str,
    public: &CandidateAddr,
    tcp: TcpCandidates,
) -> Result<String, Error> {
    check_full_sdp(sdp)?;
    rewrite(sdp, public, tcp)
}

/// [`rewrite_candidates`] for a trickle-ICE fragment (`application/trickle-ice-sdpfrag`),
/// which has no `v=` line.
pub fn rewrite_sdpfrag_candidates(
    frag: &str,
    public: &CandidateAddr,
    tcp: TcpCandidates,
) -> Result<String, Error> {
    check_limits(frag)?;
    rewrite(frag, public, tcp)
}

/// Identity of a rewritten candidate within a section: component and transport flavour.
type Seen = (u16, u8);

fn rewrite(body: &str, public: &CandidateAddr, tcp: TcpCandidates) -> Result<String, Error> {
    let host = public.host_text()?;
    let mut out = String::with_capacity(body.len() + 64);
    let mut seen: Vec<Seen> = Vec::new();
    for line in lines(body) {
        if line.content.starts_with("m=") {
            seen.clear();
        }
        if !line.content.starts_with("a=candidate:") {
            out.push_str(line.full);
            continue;
        }
        let c = Candidate::parse_at(line.content, line.number)?;
        let host_only = c.kind == CandidateType::Host;
        let (flavour, port) = match (c.transport, tcp) {
            (Transport::Udp, _) if host_only => (0, public.port),
            (Transport::Tcp, TcpCandidates::Keep) => {
                out.push_str(line.full);
                continue;
            }
            (Transport::Tcp, TcpCandidates::Rewrite(tcp_port)) if host_only => match c.tcp_type {
                Some("active") => (1, c.port),
                Some("so") => (2, tcp_port),
                _ => (3, tcp_port),
            },
            _ => continue,
        };
        let key = (c.component, flavour);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let bad = Error::BadCandidate { line: line.number };
        let before = line.content.get(..c.address_span.0).ok_or(bad)?;
        let between = line
            .content
            .get(c.address_span.1..c.port_span.0)
            .ok_or(bad)?;
        let after = line.full.get(c.port_span.1..).ok_or(bad)?;
        out.push_str(before);
        out.push_str(&host);
        out.push_str(between);
        out.push_str(&port.to_string());
        out.push_str(after);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_srs_host_candidate() {
        let c = Candidate::parse(
            "a=candidate:0 1 udp 2130706431 192.168.3.6 8000 typ host generation 0",
        )
        .unwrap();
        assert_eq!(c.foundation, "0");
        assert_eq!(c.component, 1);
        assert_eq!(c.transport, Transport::Udp);
        assert_eq!(c.priority, 2130706431);
        assert_eq!(c.socket_addr(), Some("192.168.3.6:8000".parse().unwrap()));
        assert_eq!(c.kind, CandidateType::Host);
    }

    #[test]
    fn parses_chrome_trickle_forms() {
        let c = Candidate::parse(
            "candidate:842163049 1 udp 1677729535 203.0.113.7 61665 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag EsAw network-cost 999",
        )
        .unwrap();
        assert_eq!(c.kind, CandidateType::Srflx);
        assert_eq!(c.related_address, Some("0.0.0.0"));
        assert_eq!(c.related_port, Some(0));

        let c = Candidate::parse(
            "a=candidate:1 1 TCP 1518280447 3f1a9c2e-1b2c-4d5e-8f90-a1b2c3d4e5f6.local 9 typ host tcptype active",
        )
        .unwrap();
        assert_eq!(c.transport, Transport::Tcp);
        assert_eq!(c.tcp_type, Some("active"));
        assert!(c.is_mdns());
        assert_eq!(c.ip(), None);

        let c =
            Candidate::parse("a=candidate:2 1 udp 2122262783 2001:db8::5 50000 typ host").unwrap();
        assert_eq!(
            c.socket_addr(),
            Some("[2001:db8::5]:50000".parse().unwrap())
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "a=candidate:",
            "a=candidate:0 1 udp",
            "a=candidate:0 0 udp 1 1.2.3.4 5 typ host",
            "a=candidate:0 257 udp 1 1.2.3.4 5 typ host",
            "a=candidate:0 1 udp +1 1.2.3.4 5 typ host",
            "a=candidate:0 1 udp 1 1.2.3.4 65536 typ host",
            "a=candidate:0 1 udp 1 1.2.3.4 5 type host",
            "a=candidate:0 1 udp 99999999999 1.2.3.4 5 typ host",
            "a=candidate:0 1 udp 1 1.2.3.4 5 typ srflx raddr 1.2.3.4 rport x",
            "a=candidat:0 1 udp 1 1.2.3.4 5 typ host",
        ] {
            assert!(Candidate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_public_host_is_refused() {
        let sdp = "v=0\r\na=candidate:0 1 udp 1 1.2.3.4 5 typ host\r\n";
        for name in ["", "a b", "x\r\na=evil", "ä.example"] {
            assert_eq!(
                rewrite_candidates(sdp, &CandidateAddr::named(name, 1), TcpCandidates::Drop),
                Err(Error::BadPublicHost),
                "{name:?}"
            );
        }
    }
}
