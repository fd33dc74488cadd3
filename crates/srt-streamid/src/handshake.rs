//! The handshake (control type 0): header, 48-byte CIF, extension blocks.
//!
//! [`Handshake::parse`] keeps every field as read, and the extension area as borrowed
//! bytes, so [`Handshake::encode`] gives back the input exactly; a proxy changes only the
//! fields it must (cookie, socket ids, peer address) and the rest travels untouched.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::codec::Reader;
use crate::extension::Extensions;
use crate::packet::{control_type, ControlHeader, Packet, HEADER_LEN};
use crate::reject::RejectReason;
use crate::Error;

/// Bytes of the handshake control information field before the extensions.
pub const CIF_LEN: usize = 48;
/// Bytes of a handshake without extensions (an induction, a rejection).
pub const BASE_LEN: usize = HEADER_LEN + CIF_LEN;
/// libsrt caps its MSS, hence any handshake, at 1500 bytes.
pub const MAX_HANDSHAKE_LEN: usize = 1500;
/// `SRT_MAGIC_CODE`: the extension field of a listener's HSv5 induction answer.
pub const SRT_MAGIC: u16 = 0x4A17;
/// The extension field of an HSv5 caller's induction (`UDT_DGRAM`).
pub const UDT_DGRAM: u16 = 2;

/// Bits of the extension field in a conclusion (`CHandShake::HS_EXT_*`).
pub mod ext_flags {
    /// An HSREQ/HSRSP block is present.
    pub const HSREQ: u16 = 1 << 0;
    /// A KMREQ/KMRSP block is present.
    pub const KMREQ: u16 = 1 << 1;
    /// Configuration blocks (SID, CONGESTION, FILTER, GROUP) are present.
    pub const CONFIG: u16 = 1 << 2;
}

/// The handshake request type (`UDTRequestType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeType {
    /// 0: rendezvous start.
    Waveahand,
    /// 1: first caller-listener exchange.
    Induction,
    /// -1 (`0xFFFFFFFF`): second exchange, carries the extensions.
    Conclusion,
    /// -2 (`0xFFFFFFFE`): rendezvous end.
    Agreement,
    /// `1000 + reason`: the connection is refused.
    Rejection(RejectReason),
    /// Anything else, kept as read.
    Other(u32),
}

impl HandshakeType {
    /// From the wire value.
    pub fn from_wire(v: u32) -> Self {
        match v {
            0 => HandshakeType::Waveahand,
            1 => HandshakeType::Induction,
            0xFFFF_FFFF => HandshakeType::Conclusion,
            0xFFFF_FFFE => HandshakeType::Agreement,
            v => {
                RejectReason::from_wire(v).map_or(HandshakeType::Other(v), HandshakeType::Rejection)
            }
        }
    }

    /// The wire value.
    pub fn to_wire(self) -> u32 {
        match self {
            HandshakeType::Waveahand => 0,
            HandshakeType::Induction => 1,
            HandshakeType::Conclusion => 0xFFFF_FFFF,
            HandshakeType::Agreement => 0xFFFF_FFFE,
            HandshakeType::Rejection(r) => r.wire(),
            HandshakeType::Other(v) => v,
        }
    }
}

/// The 16-byte peer address field, as the bytes on the wire.
///
/// libsrt stores the address into four 32-bit words in memory order (IPv4 in the first
/// word, the rest zero) and then byte-swaps every word of a control packet for the
/// network, so on a little-endian sender every group of 4 bytes arrives reversed:
/// 127.0.0.1 is `01 00 00 7f 00 .. 00`. Every libsrt build in use is little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PeerIp(pub [u8; 16]);

impl PeerIp {
    /// Encodes an address as libsrt does.
    pub fn from_ip(ip: IpAddr) -> Self {
        let octets = match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                [a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
            }
            IpAddr::V6(v6) => v6.octets(),
        };
        PeerIp(swap_words(octets))
    }

    /// Decodes the address: IPv4 when the last three words are zero, IPv6 otherwise.
    pub fn to_ip(&self) -> IpAddr {
        let octets = swap_words(self.0);
        match octets {
            [a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] => {
                IpAddr::V4(Ipv4Addr::new(a, b, c, d))
            }
            _ => IpAddr::V6(Ipv6Addr::from(octets)),
        }
    }
}

fn swap_words(bytes: [u8; 16]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (dst, src) in out.chunks_exact_mut(4).zip(bytes.chunks_exact(4)) {
        for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
            *d = *s;
        }
    }
    out
}

/// A handshake packet: header, CIF fields, and the extension blocks borrowed as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake<'a> {
    /// The packet header (control type 0; timestamp and destination socket id matter).
    pub header: ControlHeader,
    /// 4 in a caller's induction, 5 afterwards.
    pub version: u32,
    /// High half of the type word: the key length advertised (`PBKEYLEN / 8`: 2, 3, 4).
    pub encryption: u16,
    /// Low half: [`UDT_DGRAM`] in a caller induction, [`SRT_MAGIC`] in a listener's
    /// answer, [`ext_flags`] in a conclusion.
    pub extension_field: u16,
    /// Initial packet sequence number.
    pub initial_seq: u32,
    /// Maximum transmission unit (MSS), bytes.
    pub mtu: u32,
    /// Flow window, packets.
    pub flow_window: u32,
    /// The request type.
    pub kind: HandshakeType,
    /// The sender's socket id.
    pub socket_id: u32,
    /// The SYN cookie.
    pub cookie: u32,
    /// The address the sender sees its peer at.
    pub peer_ip: PeerIp,
    /// The extension blocks.
    pub extensions: Extensions<'a>,
}

impl<'a> Handshake<'a> {
    /// Parses a whole datagram. Fails on anything but a well-formed handshake of at most
    /// [`MAX_HANDSHAKE_LEN`] bytes whose extension blocks tile the rest exactly.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, Error> {
        if datagram.len() > MAX_HANDSHAKE_LEN {
            return Err(Error::HandshakeTooLong {
                len: datagram.len(),
                max: MAX_HANDSHAKE_LEN,
            });
        }
        let packet = Packet::parse(datagram)?;
        let header = packet
            .control_header()
            .filter(|h| h.control_type == control_type::HANDSHAKE)
            .ok_or(Error::NotHandshake)?;
        let mut r = Reader::new(packet.payload());
        if packet.payload().len() < CIF_LEN {
            return Err(Error::Truncated {
                what: "handshake CIF",
                needed: CIF_LEN,
                available: packet.payload().len(),
            });
        }
        Ok(Handshake {
            header,
            version: r.u32("version")?,
            encryption: r.u16("encryption field")?,
            extension_field: r.u16("extension field")?,
            initial_seq: r.u32("initial sequence number")?,
            mtu: r.u32("MTU")?,
            flow_window: r.u32("flow window")?,
            kind: HandshakeType::from_wire(r.u32("handshake type")?),
            socket_id: r.u32("socket id")?,
            cookie: r.u32("SYN cookie")?,
            peer_ip: PeerIp(*r.array("peer IP")?),
            extensions: Extensions::parse(r.rest())?,
        })
    }

    /// What a caller sends first: version 4, `UDT_DGRAM`, no cookie, to socket id 0.
    pub fn caller_induction(
        socket_id: u32,
        initial_seq: u32,
        mtu: u32,
        flow_window: u32,
        peer: IpAddr,
    ) -> Self {
        Handshake {
            header: ControlHeader::new(control_type::HANDSHAKE),
            version: 4,
            encryption: 0,
            extension_field: UDT_DGRAM,
            initial_seq,
            mtu,
            flow_window,
            kind: HandshakeType::Induction,
            socket_id,
            cookie: 0,
            peer_ip: PeerIp::from_ip(peer),
            extensions: Extensions::EMPTY,
        }
    }

    /// A listener's refusal of this request, as libsrt sends it: the request's fields with
    /// the type replaced by the reason and no extensions, addressed to the requester.
    pub fn rejection(&self, reason: RejectReason) -> Handshake<'static> {
        Handshake {
            header: ControlHeader {
                dest_socket_id: self.socket_id,
                ..self.header
            },
            kind: HandshakeType::Rejection(reason),
            ..self.without_extensions()
        }
    }

    /// The streamid carried in a SID block, if any.
    pub fn streamid(&self) -> Result<Option<String>, Error> {
        self.extensions.streamid()
    }

    /// Bytes [`Handshake::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        BASE_LEN + self.extensions.as_bytes().len()
    }

    /// Header and CIF, without the extensions (all of an induction or a rejection).
    pub fn encode_base(&self) -> [u8; BASE_LEN] {
        let mut out = [0u8; BASE_LEN];
        let header = ControlHeader {
            control_type: control_type::HANDSHAKE,
            ..self.header
        }
        .encode();
        let words = [
            self.version,
            u32::from(self.encryption) << 16 | u32::from(self.extension_field),
            self.initial_seq,
            self.mtu,
            self.flow_window,
            self.kind.to_wire(),
            self.socket_id,
            self.cookie,
        ];
        let (head, cif) = out.split_at_mut(HEADER_LEN);
        head.copy_from_slice(&header);
        let (fields, peer) = cif.split_at_mut(32);
        for (chunk, w) in fields.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_be_bytes());
        }
        peer.copy_from_slice(&self.peer_ip.0);
        out
    }

    /// Appends the whole packet to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.extend_from_slice(&self.encode_base());
        out.extend_from_slice(self.extensions.as_bytes());
    }

    /// The whole packet.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out
    }

    fn without_extensions(&self) -> Handshake<'static> {
        Handshake {
            extensions: Extensions::EMPTY,
            ..*self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extension::ExtensionType;

    const INDUCTION: &[u8] = include_bytes!("../tests/data/ffmpeg_induction.bin");
    const CONCLUSION: &[u8] = include_bytes!("../tests/data/ffmpeg_conclusion.bin");
    const KM_CONCLUSION: &[u8] = include_bytes!("../tests/data/ffmpeg_passphrase_conclusion.bin");
    const LISTENER_INDUCTION: &[u8] =
        include_bytes!("../tests/data/libsrt_listener_induction_response.bin");
    const LISTENER_CONCLUSION: &[u8] =
        include_bytes!("../tests/data/libsrt_listener_conclusion_response.bin");
    const LISTENER_KM: &[u8] =
        include_bytes!("../tests/data/libsrt_listener_km_conclusion_response.bin");
    const LISTENER_REJECT: &[u8] =
        include_bytes!("../tests/data/libsrt_listener_reject_conclusion_response.bin");
    const SESSION_CONCLUSION: &[u8] = include_bytes!("../tests/data/session_c2o_handshake_1.bin");
    const ALL: [&[u8]; 8] = [
        INDUCTION,
        CONCLUSION,
        KM_CONCLUSION,
        LISTENER_INDUCTION,
        LISTENER_CONCLUSION,
        LISTENER_KM,
        LISTENER_REJECT,
        SESSION_CONCLUSION,
    ];

    #[test]
    fn ffmpeg_induction() {
        let hs = Handshake::parse(INDUCTION).unwrap();
        assert_eq!(hs.header.dest_socket_id, 0);
        assert_eq!(
            (hs.version, hs.encryption, hs.extension_field),
            (4, 0, UDT_DGRAM)
        );
        assert_eq!(hs.kind, HandshakeType::Induction);
        assert_eq!(
            (hs.initial_seq, hs.mtu, hs.flow_window),
            (0x4c83_0098, 1500, 8192)
        );
        assert_eq!((hs.socket_id, hs.cookie), (0x1547_7ebe, 0));
        assert_eq!(hs.peer_ip.to_ip(), IpAddr::from([127, 0, 0, 1]));
        assert_eq!(hs.peer_ip, PeerIp::from_ip(IpAddr::from([127, 0, 0, 1])));
        assert!(hs.extensions.is_empty());
        let same = Handshake::caller_induction(
            0x1547_7ebe,
            0x4c83_0098,
            1500,
            8192,
            [127, 0, 0, 1].into(),
        );
        let with_ts = Handshake {
            header: ControlHeader {
                timestamp: hs.header.timestamp,
                ..same.header
            },
            ..same
        };
        assert_eq!(
            with_ts.to_vec(),
            INDUCTION,
            "our caller induction is libsrt's, byte for byte"
        );
    }

    #[test]
    fn ffmpeg_conclusion_with_and_without_km() {
        let hs = Handshake::parse(CONCLUSION).unwrap();
        assert_eq!(hs.kind, HandshakeType::Conclusion);
        assert_eq!(
            (hs.version, hs.extension_field),
            (5, ext_flags::HSREQ | ext_flags::CONFIG)
        );
        assert_eq!(
            hs.cookie, 0x5EC0_C0DE,
            "echoes the cookie capture.py handed out"
        );
        assert_eq!(
            hs.streamid().unwrap().as_deref(),
            Some("#!::r=live/livestream,m=publish")
        );
        let km = Handshake::parse(KM_CONCLUSION).unwrap();
        assert_eq!(
            km.extension_field,
            ext_flags::HSREQ | ext_flags::KMREQ | ext_flags::CONFIG
        );
        assert!(km.extensions.find(ExtensionType::KmReq).is_some());
    }

    #[test]
    fn libsrt_listener_answers() {
        let ind = Handshake::parse(LISTENER_INDUCTION).unwrap();
        assert_eq!(
            (ind.version, ind.extension_field, ind.kind),
            (5, SRT_MAGIC, HandshakeType::Induction)
        );
        assert_eq!(ind.header.dest_socket_id, 0x1547_7ebe);
        let con = Handshake::parse(LISTENER_CONCLUSION).unwrap();
        assert_eq!(con.kind, HandshakeType::Conclusion);
        let hsrsp = con
            .extensions
            .find(ExtensionType::HsRsp)
            .unwrap()
            .srt_hs()
            .unwrap()
            .unwrap();
        assert_eq!((hsrsp.recv_latency_ms, hsrsp.send_latency_ms), (120, 120));
        assert!(Handshake::parse(LISTENER_KM)
            .unwrap()
            .extensions
            .find(ExtensionType::KmRsp)
            .is_some());
        let rej = Handshake::parse(LISTENER_REJECT).unwrap();
        assert_eq!(rej.kind, HandshakeType::Rejection(RejectReason::Unsecure));
        assert_eq!(rej.kind.to_wire(), 1011);
    }

    #[test]
    fn captured_handshakes_reencode_exactly() {
        for bytes in ALL {
            let hs = Handshake::parse(bytes).unwrap();
            assert_eq!(hs.to_vec(), bytes);
            assert_eq!(hs.encoded_len(), bytes.len());
        }
    }

    #[test]
    fn rejection_echoes_the_request() {
        let req = Handshake::parse(CONCLUSION).unwrap();
        let rej = req.rejection(RejectReason::NotFound);
        let bytes = rej.to_vec();
        assert_eq!(bytes.len(), BASE_LEN);
        let back = Handshake::parse(&bytes).unwrap();
        assert_eq!(back.kind.to_wire(), 2404);
        assert_eq!(back.header.dest_socket_id, req.socket_id);
        assert_eq!(
            (back.initial_seq, back.socket_id, back.cookie),
            (req.initial_seq, req.socket_id, req.cookie)
        );
    }

    #[test]
    fn peer_ip_forms() {
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let p = PeerIp::from_ip(v6);
        assert_eq!(p.0.first_chunk::<4>(), Some(&[0xb8, 0x0d, 0x01, 0x20]));
        assert_eq!(p.to_ip(), v6);
    }

    #[test]
    fn errors_are_named() {
        assert_eq!(Handshake::parse(&[0u8; 64]), Err(Error::NotHandshake));
        let keepalive = ControlHeader::new(control_type::KEEPALIVE).encode();
        assert_eq!(Handshake::parse(&keepalive), Err(Error::NotHandshake));
        assert!(matches!(
            Handshake::parse(INDUCTION.get(..40).unwrap()),
            Err(Error::Truncated { .. })
        ));
        let big = [INDUCTION, &[0u8; 1500]].concat();
        assert!(matches!(
            Handshake::parse(&big),
            Err(Error::HandshakeTooLong { .. })
        ));
        let stray = [CONCLUSION, &[0u8; 2]].concat();
        assert_eq!(
            Handshake::parse(&stray),
            Err(Error::TrailingBytes { len: 2 })
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(0u8.., 0..300)) {
            let _ = Handshake::parse(&bytes);
        }

        #[test]
        fn mutated_captures_never_panic(i in 0usize..8, pos in 0usize..200, byte in 0u8.., cut in 0usize..200) {
            let mut bytes = ALL.get(i).unwrap().to_vec();
            if let Some(b) = bytes.get_mut(pos) { *b = byte; }
            bytes.truncate(cut.max(16));
            if let Ok(hs) = Handshake::parse(&bytes) {
                proptest::prop_assert_eq!(hs.to_vec(), bytes);
            }
        }

        #[test]
        fn valid_handshakes_round_trip(
            fields in proptest::array::uniform12(0u32..),
            peer in proptest::array::uniform16(0u8..),
            sid in "[a-z/=,#!:]{0,64}",
            with_km in proptest::bool::ANY,
        ) {
            let mut ext = Vec::new();
            crate::extension::push_extension(&mut ext, ExtensionType::HsReq, &[0, 1, 5, 1, 0, 0, 0, 0xbf, 0, 0x78, 0, 0]).unwrap();
            crate::extension::push_extension(&mut ext, ExtensionType::Sid, &crate::extension::encode_text(&sid).unwrap()).unwrap();
            if with_km {
                crate::extension::push_extension(&mut ext, ExtensionType::KmReq, &[0x12, 0x20, 0x29, 1]).unwrap();
            }
            let [a, b, c, d, e, f, g, h, i, j, k, l] = fields;
            let hs = Handshake {
                header: ControlHeader { control_type: 0, subtype: (a & 0xFFFF) as u16, type_info: b, timestamp: c, dest_socket_id: d },
                version: e,
                encryption: (f >> 16) as u16,
                extension_field: (f & 0xFFFF) as u16,
                initial_seq: g,
                mtu: h,
                flow_window: i,
                kind: HandshakeType::from_wire(j),
                socket_id: k,
                cookie: l,
                peer_ip: PeerIp(peer),
                extensions: Extensions::parse(&ext).unwrap(),
            };
            let bytes = hs.to_vec();
            let back = Handshake::parse(&bytes).unwrap();
            proptest::prop_assert_eq!(back, hs);
            proptest::prop_assert_eq!(&back.to_vec(), &bytes);
            proptest::prop_assert_eq!(back.streamid().unwrap().unwrap_or_default(), sid);
        }
    }
}
