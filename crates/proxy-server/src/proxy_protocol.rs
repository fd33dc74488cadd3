//! The PROXY protocol header the proxy may send first on a TCP connection to an origin
//! (HAProxy's spec: v2 binary, section 2.2, or v1 text, section 2.1), so that the origin
//! sees the real client: RTMP has no other way to carry it, and HTTP origins can trust it
//! more than `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};

use ppp::v2::{Builder, Command, Protocol, Version};

use crate::config::ProxyProtocolVersion;
use crate::limits::normalise;

/// The header of `version` for a TCP client at `source` that connected to the proxy at
/// `destination`.
pub fn header(
    version: ProxyProtocolVersion,
    source: SocketAddr,
    destination: SocketAddr,
) -> Vec<u8> {
    match version {
        ProxyProtocolVersion::V2 => v2_header(source, destination),
        ProxyProtocolVersion::V1 => v1_header(source, destination),
    }
}

/// The v1 text header: `PROXY TCP4 <src> <dst> <sport> <dport>\r\n` (or `TCP6`), with
/// the same family rule as [`v2_header`].
pub fn v1_header(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    ppp::v1::Addresses::from(same_family(source, destination))
        .to_string()
        .into_bytes()
}

/// The v2 header for a TCP client at `source` that connected to the proxy at
/// `destination`: command PROXY, TCP over IPv4 or IPv6, no TLVs.
///
/// Both addresses must be of one family: an IPv4-mapped IPv6 address counts as IPv4, and
/// if one side is still IPv4 while the other is IPv6, the IPv4 one is written mapped.
pub fn v2_header(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (source, destination) = same_family(source, destination);
    Builder::with_addresses(
        Version::Two | Command::Proxy,
        Protocol::Stream,
        (source, destination),
    )
    .build()
    // Fails only beyond 64 KiB of payload; two addresses are 36 bytes at most.
    .unwrap_or_default()
}

fn same_family(source: SocketAddr, destination: SocketAddr) -> (SocketAddr, SocketAddr) {
    let unmapped = |a: SocketAddr| SocketAddr::new(normalise(a.ip()), a.port());
    let (source, destination) = (unmapped(source), unmapped(destination));
    let mapped = |a: SocketAddr| match a.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => a,
    };
    if source.is_ipv4() == destination.is_ipv4() {
        (source, destination)
    } else {
        (mapped(source), mapped(destination))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp::v2::{Addresses, Header};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn parsed(bytes: &[u8]) -> Header<'_> {
        Header::try_from(bytes).expect("a v2 header ppp's parser accepts")
    }

    #[test]
    fn v1_header_is_the_spec_text_and_parses_back() {
        let bytes = header(
            ProxyProtocolVersion::V1,
            addr("192.0.2.10:51000"),
            addr("198.51.100.1:1935"),
        );
        assert_eq!(bytes, b"PROXY TCP4 192.0.2.10 198.51.100.1 51000 1935\r\n");
        let text = std::str::from_utf8(&bytes).unwrap();
        let parsed = ppp::v1::Header::try_from(text).expect("ppp's v1 parser accepts it");
        assert_eq!(parsed.header, text);
        let mixed = v1_header(addr("[::ffff:10.0.0.1]:1"), addr("[2001:db8::1]:2"));
        assert_eq!(mixed, b"PROXY TCP6 ::ffff:10.0.0.1 2001:db8::1 1 2\r\n");
    }

    #[test]
    fn ipv4_header_is_the_spec_layout() {
        let bytes = v2_header(addr("192.0.2.10:51000"), addr("198.51.100.1:1935"));
        let mut expected = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        // Version 2, PROXY; TCP over IPv4; 12 bytes of addresses.
        expected.extend([0x21, 0x11, 0, 12]);
        expected.extend([192, 0, 2, 10, 198, 51, 100, 1]);
        expected.extend(51000u16.to_be_bytes());
        expected.extend(1935u16.to_be_bytes());
        assert_eq!(bytes, expected);
    }

    #[test]
    fn parses_back_to_the_client_and_the_listener() {
        let bytes = v2_header(addr("127.0.0.1:40000"), addr("127.0.0.1:1935"));
        let header = parsed(&bytes);
        assert_eq!(header.command, Command::Proxy);
        assert_eq!(header.protocol, Protocol::Stream);
        assert_eq!(header.len(), bytes.len());
        let Addresses::IPv4(a) = header.addresses else {
            panic!("not IPv4: {:?}", header.addresses)
        };
        assert_eq!(
            (a.source_address.to_string(), a.source_port),
            ("127.0.0.1".into(), 40000)
        );
        assert_eq!(a.destination_port, 1935);

        let bytes = v2_header(addr("[2001:db8::7]:40000"), addr("[2001:db8::1]:443"));
        let Addresses::IPv6(a) = parsed(&bytes).addresses else {
            panic!("not IPv6")
        };
        assert_eq!(a.source_address.to_string(), "2001:db8::7");
        assert_eq!(a.destination_port, 443);
    }

    #[test]
    fn mixed_families_agree() {
        // An IPv4 client on a dual-stack listener: both IPv4.
        let bytes = v2_header(addr("[::ffff:10.1.2.3]:5000"), addr("10.0.0.1:1935"));
        let Addresses::IPv4(a) = parsed(&bytes).addresses else {
            panic!("not IPv4")
        };
        assert_eq!(a.source_address.to_string(), "10.1.2.3");
        // Truly mixed: both IPv6, the IPv4 side mapped.
        let bytes = v2_header(addr("10.1.2.3:5000"), addr("[2001:db8::1]:1935"));
        let Addresses::IPv6(a) = parsed(&bytes).addresses else {
            panic!("not IPv6")
        };
        assert_eq!(a.source_address.to_string(), "::ffff:10.1.2.3");
        assert_eq!(a.destination_address.to_string(), "2001:db8::1");
    }
}
