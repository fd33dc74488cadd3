//! The 16-byte SRT packet header, read in place.
//!
//! A relay touches every datagram, so this module never allocates and never copies: a
//! [`Packet`] is a view over the caller's buffer, and [`set_dest_socket_id`] rewrites the
//! one word a proxy has to translate.

use crate::codec::word;
use crate::Error;

/// Bytes in every SRT packet header.
pub const HEADER_LEN: usize = 16;

const CONTROL_BIT: u32 = 0x8000_0000;
const DEST_ID_RANGE: core::ops::Range<usize> = 12..16;

/// Control types SRT defines (the 15 bits after the control bit).
pub mod control_type {
    /// Handshake.
    pub const HANDSHAKE: u16 = 0x0000;
    /// Keep-alive.
    pub const KEEPALIVE: u16 = 0x0001;
    /// Acknowledgement.
    pub const ACK: u16 = 0x0002;
    /// Negative acknowledgement (loss report).
    pub const NAK: u16 = 0x0003;
    /// Congestion warning.
    pub const CONGESTION_WARNING: u16 = 0x0004;
    /// Shutdown.
    pub const SHUTDOWN: u16 = 0x0005;
    /// Acknowledgement of an acknowledgement.
    pub const ACKACK: u16 = 0x0006;
    /// Message drop request.
    pub const DROP_REQUEST: u16 = 0x0007;
    /// Peer error.
    pub const PEER_ERROR: u16 = 0x0008;
    /// User-defined; SRT puts in-session KMREQ/KMRSP here (subtype 3/4).
    pub const USER_DEFINED: u16 = 0x7FFF;
}

/// What a packet is, as far as a relay cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// A data packet.
    Data,
    /// A handshake (control type 0).
    Handshake,
    /// A keep-alive.
    KeepAlive,
    /// An ACK.
    Ack,
    /// A NAK (loss report).
    Nak,
    /// A shutdown.
    Shutdown,
    /// An ACKACK.
    AckAck,
    /// Any other control packet, with its control type.
    Other(u16),
}

impl PacketKind {
    /// The kind of a control packet of this type.
    pub fn from_control_type(control_type: u16) -> Self {
        match control_type {
            control_type::HANDSHAKE => PacketKind::Handshake,
            control_type::KEEPALIVE => PacketKind::KeepAlive,
            control_type::ACK => PacketKind::Ack,
            control_type::NAK => PacketKind::Nak,
            control_type::SHUTDOWN => PacketKind::Shutdown,
            control_type::ACKACK => PacketKind::AckAck,
            other => PacketKind::Other(other),
        }
    }
}

/// Where a data packet sits in its message (the PP bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketPosition {
    /// `0b00`: in the middle.
    Middle,
    /// `0b01`: the last packet.
    Last,
    /// `0b10`: the first packet.
    First,
    /// `0b11`: the whole message.
    Only,
}

/// Which key encrypted a data packet (the KK bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyFlags {
    /// `0b00`: not encrypted.
    Clear,
    /// `0b01`: the even key.
    Even,
    /// `0b10`: the odd key.
    Odd,
    /// `0b11`: both (only meaningful in key material, kept so every value round-trips).
    Both,
}

/// A data packet's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataHeader {
    /// Packet sequence number (31 bits).
    pub seq_number: u32,
    /// PP.
    pub position: PacketPosition,
    /// O: deliver in order.
    pub in_order: bool,
    /// KK.
    pub key: KeyFlags,
    /// R: this is a retransmission.
    pub retransmitted: bool,
    /// Message number (26 bits).
    pub msg_number: u32,
    /// Microseconds since the sender's socket started.
    pub timestamp: u32,
    /// Destination socket id.
    pub dest_socket_id: u32,
}

/// A control packet's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ControlHeader {
    /// Control type (15 bits), see [`control_type`].
    pub control_type: u16,
    /// Subtype (used by user-defined packets).
    pub subtype: u16,
    /// Type-specific information (ACK number, message number...).
    pub type_info: u32,
    /// Microseconds since the sender's socket started.
    pub timestamp: u32,
    /// Destination socket id (0 for a handshake to a listener).
    pub dest_socket_id: u32,
}

/// Either header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Header {
    /// Top bit clear.
    Data(DataHeader),
    /// Top bit set.
    Control(ControlHeader),
}

/// A datagram viewed as an SRT packet; borrows the buffer, decodes fields on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    head: &'a [u8; HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks there is a whole header; nothing else can be wrong with a header.
    #[inline]
    pub fn parse(datagram: &'a [u8]) -> Result<Self, Error> {
        let (head, payload) =
            datagram
                .split_first_chunk::<HEADER_LEN>()
                .ok_or(Error::Truncated {
                    what: "packet header",
                    needed: HEADER_LEN,
                    available: datagram.len(),
                })?;
        Ok(Packet { head, payload })
    }

    /// True for control packets.
    #[inline]
    pub fn is_control(&self) -> bool {
        word(self.head, 0) & CONTROL_BIT != 0
    }

    /// Data, handshake, keep-alive, ...
    #[inline]
    pub fn kind(&self) -> PacketKind {
        let w0 = word(self.head, 0);
        if w0 & CONTROL_BIT == 0 {
            PacketKind::Data
        } else {
            PacketKind::from_control_type(control_type_of(w0))
        }
    }

    /// The timestamp word.
    #[inline]
    pub fn timestamp(&self) -> u32 {
        word(self.head, 2)
    }

    /// The socket id the packet is addressed to.
    #[inline]
    pub fn dest_socket_id(&self) -> u32 {
        word(self.head, 3)
    }

    /// Every header field.
    pub fn header(&self) -> Header {
        match self.data_header() {
            Some(d) => Header::Data(d),
            None => Header::Control(self.control_fields()),
        }
    }

    /// The header of a data packet, `None` for a control packet.
    pub fn data_header(&self) -> Option<DataHeader> {
        let (w0, w1) = (word(self.head, 0), word(self.head, 1));
        if w0 & CONTROL_BIT != 0 {
            return None;
        }
        Some(DataHeader {
            seq_number: w0,
            position: match w1 >> 30 {
                0b00 => PacketPosition::Middle,
                0b01 => PacketPosition::Last,
                0b10 => PacketPosition::First,
                _ => PacketPosition::Only,
            },
            in_order: w1 & (1 << 29) != 0,
            key: match (w1 >> 27) & 0b11 {
                0b00 => KeyFlags::Clear,
                0b01 => KeyFlags::Even,
                0b10 => KeyFlags::Odd,
                _ => KeyFlags::Both,
            },
            retransmitted: w1 & (1 << 26) != 0,
            msg_number: w1 & 0x03FF_FFFF,
            timestamp: self.timestamp(),
            dest_socket_id: self.dest_socket_id(),
        })
    }

    /// The header of a control packet, `None` for a data packet.
    pub fn control_header(&self) -> Option<ControlHeader> {
        self.is_control().then(|| self.control_fields())
    }

    fn control_fields(&self) -> ControlHeader {
        let w0 = word(self.head, 0);
        ControlHeader {
            control_type: control_type_of(w0),
            // The low 16 bits of word 0; the mask makes the narrowing exact.
            subtype: (w0 & 0xFFFF) as u16,
            type_info: word(self.head, 1),
            timestamp: self.timestamp(),
            dest_socket_id: self.dest_socket_id(),
        }
    }

    /// What follows the header (data payload or control information field).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The header bytes.
    #[inline]
    pub fn header_bytes(&self) -> &'a [u8; HEADER_LEN] {
        self.head
    }
}

#[inline]
fn control_type_of(w0: u32) -> u16 {
    // 15 bits after the control bit; the mask makes the narrowing exact.
    ((w0 >> 16) & 0x7FFF) as u16
}

impl DataHeader {
    /// The 16 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let pp: u32 = match self.position {
            PacketPosition::Middle => 0b00,
            PacketPosition::Last => 0b01,
            PacketPosition::First => 0b10,
            PacketPosition::Only => 0b11,
        };
        let kk: u32 = match self.key {
            KeyFlags::Clear => 0b00,
            KeyFlags::Even => 0b01,
            KeyFlags::Odd => 0b10,
            KeyFlags::Both => 0b11,
        };
        let w1 = pp << 30
            | u32::from(self.in_order) << 29
            | kk << 27
            | u32::from(self.retransmitted) << 26
            | (self.msg_number & 0x03FF_FFFF);
        header_bytes(
            self.seq_number & !CONTROL_BIT,
            w1,
            self.timestamp,
            self.dest_socket_id,
        )
    }
}

impl ControlHeader {
    /// A header of this control type, other fields zero.
    pub fn new(control_type: u16) -> Self {
        ControlHeader {
            control_type,
            ..ControlHeader::default()
        }
    }

    /// Data, handshake, keep-alive, ...
    pub fn kind(&self) -> PacketKind {
        PacketKind::from_control_type(self.control_type & 0x7FFF)
    }

    /// The 16 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let w0 =
            CONTROL_BIT | u32::from(self.control_type & 0x7FFF) << 16 | u32::from(self.subtype);
        header_bytes(w0, self.type_info, self.timestamp, self.dest_socket_id)
    }
}

fn header_bytes(w0: u32, w1: u32, w2: u32, w3: u32) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    for (chunk, w) in out.chunks_exact_mut(4).zip([w0, w1, w2, w3]) {
        chunk.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// The kind of a datagram, `None` if it is shorter than a header.
#[inline]
pub fn classify(datagram: &[u8]) -> Option<PacketKind> {
    Packet::parse(datagram).ok().map(|p| p.kind())
}

/// The destination socket id of a datagram, `None` if it is shorter than a header.
#[inline]
pub fn dest_socket_id(datagram: &[u8]) -> Option<u32> {
    let bytes = datagram.get(DEST_ID_RANGE)?;
    let mut w = [0u8; 4];
    w.copy_from_slice(bytes);
    Some(u32::from_be_bytes(w))
}

/// Rewrites the destination socket id in place: the one change a relay makes per packet.
#[inline]
pub fn set_dest_socket_id(datagram: &mut [u8], id: u32) -> Result<(), Error> {
    let available = datagram.len();
    let slot = datagram.get_mut(DEST_ID_RANGE).ok_or(Error::Truncated {
        what: "packet header",
        needed: HEADER_LEN,
        available,
    })?;
    slot.copy_from_slice(&id.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: &[u8] = include_bytes!("../tests/data/session_c2o_data_0.bin");
    const ACK: &[u8] = include_bytes!("../tests/data/session_o2c_ack_0.bin");
    const ACKACK: &[u8] = include_bytes!("../tests/data/session_c2o_ackack_0.bin");
    const SHUTDOWN: &[u8] = include_bytes!("../tests/data/session_c2o_shutdown_0.bin");
    const CONCLUSION: &[u8] = include_bytes!("../tests/data/ffmpeg_conclusion.bin");

    #[test]
    fn captured_data_packet() {
        let p = Packet::parse(DATA).unwrap();
        assert_eq!(p.kind(), PacketKind::Data);
        let h = p.data_header().unwrap();
        assert_eq!(h.seq_number, 0x70dc_8c8c);
        assert_eq!(h.position, PacketPosition::Only);
        assert!(h.in_order);
        assert_eq!(h.key, KeyFlags::Clear);
        assert!(!h.retransmitted);
        assert_eq!(h.msg_number, 1);
        assert_eq!(h.timestamp, 0xc090);
        assert_eq!(h.dest_socket_id, 0x39d0_28ed);
        assert_eq!(p.payload().len(), 1316);
        assert_eq!(p.payload().first(), Some(&0x47));
        assert_eq!(&h.encode(), p.header_bytes());
        assert!(p.control_header().is_none());
    }

    #[test]
    fn captured_control_packets() {
        for (bytes, kind) in [
            (ACK, PacketKind::Ack),
            (ACKACK, PacketKind::AckAck),
            (SHUTDOWN, PacketKind::Shutdown),
            (CONCLUSION, PacketKind::Handshake),
        ] {
            let p = Packet::parse(bytes).unwrap();
            assert_eq!(p.kind(), kind);
            assert_eq!(classify(bytes), Some(kind));
            let Header::Control(h) = p.header() else {
                panic!("control")
            };
            assert_eq!(h.kind(), kind);
            assert_eq!(&h.encode(), p.header_bytes());
        }
        let ack = Packet::parse(ACK).unwrap().control_header().unwrap();
        assert_eq!(ack.type_info, 1, "ACK number");
        assert_eq!(ack.dest_socket_id, 0x37ec_173b);
    }

    #[test]
    fn rewrite_socket_id_in_place() {
        let mut buf = DATA.to_vec();
        assert_eq!(dest_socket_id(&buf), Some(0x39d0_28ed));
        set_dest_socket_id(&mut buf, 0xdead_beef).unwrap();
        assert_eq!(dest_socket_id(&buf), Some(0xdead_beef));
        assert_eq!(buf.get(..12), DATA.get(..12));
        assert_eq!(buf.get(16..), DATA.get(16..));
        assert!(set_dest_socket_id(&mut [0u8; 15], 1).is_err());
        assert_eq!(dest_socket_id(&[0u8; 15]), None);
        assert_eq!(classify(&[0x80; 15]), None);
    }

    #[test]
    fn other_control_types_and_user_subtype() {
        let h = ControlHeader {
            control_type: control_type::USER_DEFINED,
            subtype: 3,
            ..ControlHeader::default()
        };
        let bytes = h.encode();
        let p = Packet::parse(&bytes).unwrap();
        assert_eq!(p.kind(), PacketKind::Other(0x7FFF));
        assert_eq!(p.control_header(), Some(h));
        assert_eq!(
            classify(&ControlHeader::new(control_type::KEEPALIVE).encode()),
            Some(PacketKind::KeepAlive)
        );
        assert_eq!(
            classify(&ControlHeader::new(control_type::NAK).encode()),
            Some(PacketKind::Nak)
        );
    }

    proptest::proptest! {
        #[test]
        fn any_header_round_trips(bytes in proptest::array::uniform16(0u8..)) {
            let p = Packet::parse(&bytes).unwrap();
            let again = match p.header() {
                Header::Data(d) => d.encode(),
                Header::Control(c) => c.encode(),
            };
            proptest::prop_assert_eq!(again, bytes);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(0u8.., 0..40)) {
            if let Ok(p) = Packet::parse(&bytes) {
                let _ = (p.header(), p.kind(), p.payload());
            }
            let _ = (classify(&bytes), dest_socket_id(&bytes));
        }
    }
}
