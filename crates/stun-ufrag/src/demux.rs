//! RFC 7983 (updating RFC 5764 §5.1.2): telling apart the protocols sharing one UDP port by
//! the first byte of each datagram.

/// What a datagram on a WebRTC media port is, judged by its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// 0-3: STUN (ICE checks, consent freshness).
    Stun,
    /// 16-19: ZRTP.
    Zrtp,
    /// 20-63: DTLS (the handshake that keys SRTP).
    Dtls,
    /// 64-79: TURN ChannelData.
    TurnChannel,
    /// 128-191: RTP or RTCP (SRTP / SRTCP once keyed). See [`is_rtcp`].
    Rtp,
    /// Any other first byte, or an empty datagram: RFC 7983 says drop it.
    Other,
}

impl PacketKind {
    /// Classifies by the first byte alone.
    pub const fn from_first_byte(b: u8) -> Self {
        match b {
            0..=3 => PacketKind::Stun,
            16..=19 => PacketKind::Zrtp,
            20..=63 => PacketKind::Dtls,
            64..=79 => PacketKind::TurnChannel,
            128..=191 => PacketKind::Rtp,
            _ => PacketKind::Other,
        }
    }
}

/// Classifies a datagram by its first byte.
#[inline]
pub fn classify(datagram: &[u8]) -> PacketKind {
    match datagram.first() {
        Some(&b) => PacketKind::from_first_byte(b),
        None => PacketKind::Other,
    }
}

/// For a datagram in the RTP range, tells RTCP from RTP by the second byte (RFC 5761 §4:
/// RTCP packet types 192-223 fall where RTP's marker bit plus payload type 64-95 would,
/// which RTP muxed with RTCP must not use).
#[inline]
pub fn is_rtcp(datagram: &[u8]) -> bool {
    match datagram {
        [first, second, ..] => {
            PacketKind::from_first_byte(*first) == PacketKind::Rtp && (192..=223).contains(second)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_first_byte_has_the_rfc7983_kind() {
        for b in 0..=255u8 {
            let want = match b {
                0..=3 => PacketKind::Stun,
                16..=19 => PacketKind::Zrtp,
                20..=63 => PacketKind::Dtls,
                64..=79 => PacketKind::TurnChannel,
                128..=191 => PacketKind::Rtp,
                _ => PacketKind::Other,
            };
            assert_eq!(classify(&[b, 0, 0, 0]), want, "first byte {b}");
        }
    }

    #[test]
    fn boundaries() {
        assert_eq!(classify(&[3]), PacketKind::Stun);
        assert_eq!(classify(&[4]), PacketKind::Other);
        assert_eq!(classify(&[15]), PacketKind::Other);
        assert_eq!(classify(&[16]), PacketKind::Zrtp);
        assert_eq!(classify(&[19]), PacketKind::Zrtp);
        assert_eq!(classify(&[20]), PacketKind::Dtls);
        assert_eq!(classify(&[63]), PacketKind::Dtls);
        assert_eq!(classify(&[64]), PacketKind::TurnChannel);
        assert_eq!(classify(&[79]), PacketKind::TurnChannel);
        assert_eq!(classify(&[80]), PacketKind::Other);
        assert_eq!(classify(&[127]), PacketKind::Other);
        assert_eq!(classify(&[128]), PacketKind::Rtp);
        assert_eq!(classify(&[191]), PacketKind::Rtp);
        assert_eq!(classify(&[192]), PacketKind::Other);
        assert_eq!(classify(&[]), PacketKind::Other);
    }

    #[test]
    fn real_first_bytes() {
        // DTLS ClientHello record: content type 22 (handshake).
        assert_eq!(classify(&[0x16, 0xfe, 0xfd]), PacketKind::Dtls);
        // DTLS application data: 23.
        assert_eq!(classify(&[0x17, 0xfe, 0xfd]), PacketKind::Dtls);
        // RTP v2, no padding/extension/CSRC.
        assert_eq!(classify(&[0x80, 0x6f]), PacketKind::Rtp);
        // RTP v2 with the one-byte header extension Chrome always sets.
        assert_eq!(classify(&[0x90, 0xe0]), PacketKind::Rtp);
        // Binding request.
        assert_eq!(classify(&[0x00, 0x01]), PacketKind::Stun);
        // Binding success response.
        assert_eq!(classify(&[0x01, 0x01]), PacketKind::Stun);
    }

    #[test]
    fn rtcp_versus_rtp() {
        assert!(is_rtcp(&[0x80, 200])); // SR
        assert!(is_rtcp(&[0x81, 201])); // RR
        assert!(is_rtcp(&[0x8f, 206])); // PSFB
        assert!(!is_rtcp(&[0x80, 96])); // RTP PT 96
        assert!(!is_rtcp(&[0x80, 0xe0])); // RTP marker + PT 96
        assert!(!is_rtcp(&[0x16, 200])); // DTLS
        assert!(!is_rtcp(&[0x80]));
    }
}
