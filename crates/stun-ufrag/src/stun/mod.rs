//! STUN messages (RFC 5389 / RFC 8489) as the ICE side of a WebRTC proxy sees them.
//!
//! [`Message::parse`] validates the header and walks the attribute TLVs once, borrowing
//! the datagram; nothing is copied or allocated. The walk remembers where USERNAME,
//! MESSAGE-INTEGRITY and FINGERPRINT are, so the per-packet questions (which session,
//! is it authentic) need no second scan.

mod attr;
mod builder;
mod integrity;

pub use attr::{attr_type, Attributes, ErrorCode, IceUsername, RawAttribute};
pub use builder::{
    binding_error_response, binding_success_response, BindingRequest, IceRole, MessageBuilder,
};
pub use integrity::IntegrityKey;

use crate::Error;

/// Size of the STUN header.
pub const HEADER_LEN: usize = 20;
/// The fixed value of bytes 4..8 that tells RFC 5389 STUN from anything else.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Most attributes accepted in one message. Browsers send fewer than ten; the cap bounds
/// the parse walk of a hostile 64 KiB datagram.
pub const MAX_ATTRIBUTES: usize = 64;
/// Longest USERNAME accepted, per RFC 5389 §15.3 ("less than 513 bytes").
pub const MAX_USERNAME_LEN: usize = 512;

/// STUN message class, the two class bits of the message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A request (ICE connectivity and consent checks).
    Request,
    /// An indication (no response expected).
    Indication,
    /// A success response.
    SuccessResponse,
    /// An error response.
    ErrorResponse,
}

/// STUN method, the 12 method bits of the message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Method(pub u16);

impl Method {
    /// Binding, the only method ICE uses.
    pub const BINDING: Method = Method(0x001);
}

/// The 14-bit message type: class and method, interleaved on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageType {
    /// Class.
    pub class: Class,
    /// Method.
    pub method: Method,
}

impl MessageType {
    /// Binding request.
    pub const BINDING_REQUEST: MessageType = MessageType::new(Class::Request, Method::BINDING);
    /// Binding success response.
    pub const BINDING_SUCCESS: MessageType =
        MessageType::new(Class::SuccessResponse, Method::BINDING);
    /// Binding error response.
    pub const BINDING_ERROR: MessageType = MessageType::new(Class::ErrorResponse, Method::BINDING);
    /// Binding indication.
    pub const BINDING_INDICATION: MessageType =
        MessageType::new(Class::Indication, Method::BINDING);

    /// A message type from its parts.
    pub const fn new(class: Class, method: Method) -> Self {
        MessageType { class, method }
    }

    /// Decodes the first two header bytes (the top two bits are ignored here; the parser
    /// rejects them).
    pub const fn from_u16(raw: u16) -> Self {
        let class = match ((raw >> 7) & 0b10) | ((raw >> 4) & 0b01) {
            0 => Class::Request,
            1 => Class::Indication,
            2 => Class::SuccessResponse,
            _ => Class::ErrorResponse,
        };
        let method = (raw & 0x000F) | ((raw >> 1) & 0x0070) | ((raw >> 2) & 0x0F80);
        MessageType {
            class,
            method: Method(method),
        }
    }

    /// Encodes to the first two header bytes. Method bits above the 12th are dropped.
    pub const fn to_u16(self) -> u16 {
        let m = self.method.0;
        let c: u16 = match self.class {
            Class::Request => 0,
            Class::Indication => 1,
            Class::SuccessResponse => 2,
            Class::ErrorResponse => 3,
        };
        (m & 0x000F)
            | ((m & 0x0070) << 1)
            | ((m & 0x0F80) << 2)
            | ((c & 0b01) << 4)
            | ((c & 0b10) << 7)
    }
}

/// The 96-bit transaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(pub [u8; 12]);

/// A parsed STUN message borrowing the datagram it came from.
///
/// Attribute semantics follow RFC 5389 §15.4 / RFC 8489 §14.5: attributes after
/// MESSAGE-INTEGRITY are ignored except MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, so
/// [`Message::get`] and the typed getters only look before the first integrity attribute.
/// [`Message::attributes`] still shows every TLV as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    bytes: &'a [u8],
    message_type: MessageType,
    /// Offset of the first MESSAGE-INTEGRITY / -SHA256 / FINGERPRINT header: the end of the
    /// attributes that count.
    auth_end: usize,
    username: Option<(usize, usize)>,
    integrity: Option<usize>,
    integrity_sha256: Option<usize>,
    fingerprint: Option<usize>,
}

/// Cheap pre-check: could this datagram be STUN? First byte in RFC 7983's STUN range (0-3)
/// and the magic cookie in place.
pub fn is_stun(datagram: &[u8]) -> bool {
    match datagram.get(..8) {
        Some(&[first, _, _, _, c0, c1, c2, c3]) => {
            first <= 3 && u32::from_be_bytes([c0, c1, c2, c3]) == MAGIC_COOKIE
        }
        _ => false,
    }
}

pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    match b.get(at..at + 2) {
        Some(&[x, y]) => Some(u16::from_be_bytes([x, y])),
        _ => None,
    }
}

pub(crate) fn be32(b: &[u8], at: usize) -> Option<u32> {
    match b.get(at..at + 4) {
        Some(&[a, b, c, d]) => Some(u32::from_be_bytes([a, b, c, d])),
        _ => None,
    }
}

pub(crate) const fn padded(len: usize) -> usize {
    (len + 3) & !3
}

impl<'a> Message<'a> {
    /// Parses one STUN message that must fill the whole datagram.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, Error> {
        let header = datagram.get(..HEADER_LEN).ok_or(Error::TooShort {
            len: datagram.len(),
        })?;
        let raw_type = be16(header, 0).ok_or(Error::TooShort {
            len: datagram.len(),
        })?;
        if raw_type & 0xC000 != 0 {
            return Err(Error::NotStun);
        }
        let cookie = be32(header, 4).ok_or(Error::TooShort {
            len: datagram.len(),
        })?;
        if cookie != MAGIC_COOKIE {
            return Err(Error::BadMagicCookie(cookie));
        }
        let declared = be16(header, 2).ok_or(Error::TooShort {
            len: datagram.len(),
        })?;
        if declared % 4 != 0 {
            return Err(Error::UnalignedLength(declared));
        }
        let actual = datagram.len() - HEADER_LEN;
        if usize::from(declared) != actual {
            return Err(Error::LengthMismatch { declared, actual });
        }

        let mut msg = Message {
            bytes: datagram,
            message_type: MessageType::from_u16(raw_type),
            auth_end: datagram.len(),
            username: None,
            integrity: None,
            integrity_sha256: None,
            fingerprint: None,
        };
        msg.walk()?;
        Ok(msg)
    }

    fn walk(&mut self) -> Result<(), Error> {
        let bytes = self.bytes;
        let mut offset = HEADER_LEN;
        let mut count = 0usize;
        let mut sealed = false;
        while offset < bytes.len() {
            if self.fingerprint.is_some() {
                return Err(Error::FingerprintNotLast);
            }
            count += 1;
            if count > MAX_ATTRIBUTES {
                return Err(Error::TooManyAttributes {
                    max: MAX_ATTRIBUTES,
                });
            }
            let attr_type = be16(bytes, offset).ok_or(Error::TruncatedAttribute {
                attr_type: 0,
                offset,
            })?;
            let len =
                be16(bytes, offset + 2).ok_or(Error::TruncatedAttribute { attr_type, offset })?;
            let len = usize::from(len);
            let value_start = offset + 4;
            let next = value_start + padded(len);
            if next > bytes.len() {
                return Err(Error::TruncatedAttribute { attr_type, offset });
            }
            match attr_type {
                attr_type::USERNAME if !sealed && self.username.is_none() => {
                    if len > MAX_USERNAME_LEN {
                        return Err(Error::BadAttributeLength { attr_type, len });
                    }
                    self.username = Some((value_start, value_start + len));
                }
                attr_type::MESSAGE_INTEGRITY if !sealed => {
                    if len != integrity::HMAC_SHA1_LEN {
                        return Err(Error::BadAttributeLength { attr_type, len });
                    }
                    self.integrity = Some(offset);
                    self.seal(offset, &mut sealed);
                }
                attr_type::MESSAGE_INTEGRITY_SHA256 if self.integrity_sha256.is_none() => {
                    // RFC 8489 §14.6: truncation to 16 bytes is allowed, in 4-byte steps.
                    if !(16..=32).contains(&len) || len % 4 != 0 {
                        return Err(Error::BadAttributeLength { attr_type, len });
                    }
                    self.integrity_sha256 = Some(offset);
                    self.seal(offset, &mut sealed);
                }
                attr_type::FINGERPRINT => {
                    if len != 4 {
                        return Err(Error::BadAttributeLength { attr_type, len });
                    }
                    self.fingerprint = Some(offset);
                    self.seal(offset, &mut sealed);
                }
                _ => {}
            }
            offset = next;
        }
        Ok(())
    }

    fn seal(&mut self, offset: usize, sealed: &mut bool) {
        if !*sealed {
            self.auth_end = offset;
            *sealed = true;
        }
    }

    /// The whole message (the datagram it was parsed from).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Class and method.
    pub fn message_type(&self) -> MessageType {
        self.message_type
    }

    /// Message class.
    pub fn class(&self) -> Class {
        self.message_type.class
    }

    /// Message method.
    pub fn method(&self) -> Method {
        self.message_type.method
    }

    /// True for a Binding request, what ICE connectivity and consent checks are.
    pub fn is_binding_request(&self) -> bool {
        self.message_type == MessageType::BINDING_REQUEST
    }

    /// The transaction id.
    pub fn transaction_id(&self) -> TransactionId {
        let mut id = [0u8; 12];
        if let Some(src) = self.bytes.get(8..HEADER_LEN) {
            id.copy_from_slice(src);
        }
        TransactionId(id)
    }

    /// Every attribute in wire order, including those after MESSAGE-INTEGRITY.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes::new(self.bytes, HEADER_LEN, self.bytes.len())
    }

    /// The first attribute of `attr_type` before any integrity attribute or FINGERPRINT.
    pub fn get(&self, attr_type: u16) -> Option<RawAttribute<'a>> {
        Attributes::new(self.bytes, HEADER_LEN, self.auth_end).find(|a| a.attr_type == attr_type)
    }

    /// The raw USERNAME value (without padding), if present before MESSAGE-INTEGRITY.
    pub fn username_bytes(&self) -> Option<&'a [u8]> {
        let (start, end) = self.username?;
        self.bytes.get(start..end)
    }

    /// USERNAME split as ICE writes it in a check sent to the server:
    /// `<server ufrag>:<client ufrag>` (RFC 8445 §7.2.2, "RFRAG:LFRAG").
    ///
    /// The server ufrag is what the proxy looks its session up by.
    pub fn ice_username(&self) -> Result<IceUsername<'a>, Error> {
        let raw = self
            .username_bytes()
            .ok_or(Error::MissingAttribute(attr_type::USERNAME))?;
        IceUsername::parse(raw)
    }

    /// True if MESSAGE-INTEGRITY is present.
    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some()
    }

    /// True if MESSAGE-INTEGRITY-SHA256 (RFC 8489) is present. It is recognised (and placed
    /// correctly in the attribute order) but not verified: ICE uses SHA-1.
    pub fn has_integrity_sha256(&self) -> bool {
        self.integrity_sha256.is_some()
    }

    /// True if FINGERPRINT is present.
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }

    /// Checks MESSAGE-INTEGRITY (HMAC-SHA1, RFC 5389 §15.4) against a prepared key.
    ///
    /// Returns [`Error::MissingAttribute`] when the message carries none, so a caller that
    /// only moves sessions on `Ok` never trusts an unauthenticated check.
    pub fn verify_integrity(&self, key: &IntegrityKey) -> Result<(), Error> {
        let at = self
            .integrity
            .ok_or(Error::MissingAttribute(attr_type::MESSAGE_INTEGRITY))?;
        integrity::verify_hmac(self.bytes, at, key)
    }

    /// [`Message::verify_integrity`] with the short-term password (the ICE `ice-pwd`).
    /// Prefer a stored [`IntegrityKey`] on a hot path: it saves two SHA-1 blocks a packet.
    pub fn verify_password(&self, password: &[u8]) -> Result<(), Error> {
        self.verify_integrity(&IntegrityKey::new(password))
    }

    /// Checks FINGERPRINT (CRC-32 XOR `0x5354554e`, RFC 5389 §15.5).
    pub fn verify_fingerprint(&self) -> Result<(), Error> {
        let at = self
            .fingerprint
            .ok_or(Error::MissingAttribute(attr_type::FINGERPRINT))?;
        integrity::verify_fingerprint(self.bytes, at)
    }

    /// ICE PRIORITY (0x0024).
    pub fn priority(&self) -> Result<Option<u32>, Error> {
        self.get(attr_type::PRIORITY)
            .map(|a| a.as_u32())
            .transpose()
    }

    /// ICE-CONTROLLING tie-breaker (0x802A).
    pub fn ice_controlling(&self) -> Result<Option<u64>, Error> {
        self.get(attr_type::ICE_CONTROLLING)
            .map(|a| a.as_u64())
            .transpose()
    }

    /// ICE-CONTROLLED tie-breaker (0x8029).
    pub fn ice_controlled(&self) -> Result<Option<u64>, Error> {
        self.get(attr_type::ICE_CONTROLLED)
            .map(|a| a.as_u64())
            .transpose()
    }

    /// True if USE-CANDIDATE (0x0025) is present (the controlling agent nominates).
    pub fn use_candidate(&self) -> bool {
        self.get(attr_type::USE_CANDIDATE).is_some()
    }

    /// ERROR-CODE (0x0009) of an error response.
    pub fn error_code(&self) -> Result<Option<ErrorCode<'a>>, Error> {
        self.get(attr_type::ERROR_CODE)
            .map(|a| a.as_error_code())
            .transpose()
    }

    /// XOR-MAPPED-ADDRESS (0x0020), decoded with this message's transaction id.
    pub fn xor_mapped_address(&self) -> Result<Option<std::net::SocketAddr>, Error> {
        let tid = self.transaction_id();
        self.get(attr_type::XOR_MAPPED_ADDRESS)
            .map(|a| a.as_xor_address(&tid))
            .transpose()
    }

    /// MAPPED-ADDRESS (0x0001).
    pub fn mapped_address(&self) -> Result<Option<std::net::SocketAddr>, Error> {
        self.get(attr_type::MAPPED_ADDRESS)
            .map(|a| a.as_address())
            .transpose()
    }

    /// SOFTWARE (0x8022) as UTF-8.
    pub fn software(&self) -> Result<Option<&'a str>, Error> {
        self.get(attr_type::SOFTWARE)
            .map(|a| a.as_str())
            .transpose()
    }
}

#[cfg(test)]
mod tests;
