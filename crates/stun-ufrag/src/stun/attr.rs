//! Attribute TLVs: iteration over a validated message and typed views of the values ICE uses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{be16, padded, TransactionId, MAGIC_COOKIE, MAX_USERNAME_LEN};
use crate::Error;

/// Attribute type codepoints this crate knows by name.
pub mod attr_type {
    /// MAPPED-ADDRESS (RFC 5389).
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    /// USERNAME (RFC 5389): `<server ufrag>:<client ufrag>` in ICE checks.
    pub const USERNAME: u16 = 0x0006;
    /// MESSAGE-INTEGRITY (RFC 5389): HMAC-SHA1.
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    /// ERROR-CODE (RFC 5389).
    pub const ERROR_CODE: u16 = 0x0009;
    /// UNKNOWN-ATTRIBUTES (RFC 5389).
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    /// REALM (RFC 5389).
    pub const REALM: u16 = 0x0014;
    /// NONCE (RFC 5389).
    pub const NONCE: u16 = 0x0015;
    /// MESSAGE-INTEGRITY-SHA256 (RFC 8489).
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    /// XOR-MAPPED-ADDRESS (RFC 5389).
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    /// PRIORITY (RFC 8445).
    pub const PRIORITY: u16 = 0x0024;
    /// USE-CANDIDATE (RFC 8445).
    pub const USE_CANDIDATE: u16 = 0x0025;
    /// SOFTWARE (RFC 5389).
    pub const SOFTWARE: u16 = 0x8022;
    /// FINGERPRINT (RFC 5389).
    pub const FINGERPRINT: u16 = 0x8028;
    /// ICE-CONTROLLED (RFC 8445).
    pub const ICE_CONTROLLED: u16 = 0x8029;
    /// ICE-CONTROLLING (RFC 8445).
    pub const ICE_CONTROLLING: u16 = 0x802A;
    /// GOOG-NETWORK-INFO, sent by Chrome (network id and cost, two 16-bit values).
    pub const GOOG_NETWORK_INFO: u16 = 0xC057;
}

/// One attribute as it is on the wire: type and unpadded value, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAttribute<'a> {
    /// Attribute type.
    pub attr_type: u16,
    /// Value without padding.
    pub value: &'a [u8],
    /// Offset of the attribute header within the message.
    pub offset: usize,
}

impl<'a> RawAttribute<'a> {
    fn bad_len(&self) -> Error {
        Error::BadAttributeLength {
            attr_type: self.attr_type,
            len: self.value.len(),
        }
    }

    /// The value as one 32-bit big-endian number (PRIORITY).
    pub fn as_u32(&self) -> Result<u32, Error> {
        match self.value {
            &[a, b, c, d] => Ok(u32::from_be_bytes([a, b, c, d])),
            _ => Err(self.bad_len()),
        }
    }

    /// The value as one 64-bit big-endian number (ICE-CONTROLLING / -CONTROLLED).
    pub fn as_u64(&self) -> Result<u64, Error> {
        let arr: [u8; 8] = self.value.try_into().map_err(|_| self.bad_len())?;
        Ok(u64::from_be_bytes(arr))
    }

    /// The value as UTF-8 text (SOFTWARE, REALM...).
    pub fn as_str(&self) -> Result<&'a str, Error> {
        std::str::from_utf8(self.value).map_err(|_| Error::BadAttributeValue {
            attr_type: self.attr_type,
        })
    }

    /// The value as ERROR-CODE.
    pub fn as_error_code(&self) -> Result<ErrorCode<'a>, Error> {
        let bad = Error::BadAttributeValue {
            attr_type: self.attr_type,
        };
        let (head, reason) = match self.value.split_first_chunk::<4>() {
            Some((head, reason)) => (head, reason),
            None => return Err(self.bad_len()),
        };
        let [_, _, class, number] = *head;
        let (class, number) = (u16::from(class & 0x07), u16::from(number));
        if !(3..=6).contains(&class) || number > 99 {
            return Err(bad);
        }
        let reason = std::str::from_utf8(reason).map_err(|_| bad)?;
        Ok(ErrorCode {
            code: class * 100 + number,
            reason,
        })
    }

    /// The value as a plain (MAPPED-ADDRESS style) address.
    pub fn as_address(&self) -> Result<SocketAddr, Error> {
        self.address(None)
    }

    /// The value as an XOR-MAPPED-ADDRESS style address of a message with `tid`.
    pub fn as_xor_address(&self, tid: &TransactionId) -> Result<SocketAddr, Error> {
        self.address(Some(tid))
    }

    fn address(&self, xor: Option<&TransactionId>) -> Result<SocketAddr, Error> {
        let bad = Error::BadAttributeValue {
            attr_type: self.attr_type,
        };
        let family = self.value.get(1).copied().ok_or(self.bad_len())?;
        let port = be16(self.value, 2).ok_or(self.bad_len())?;
        let mask = xor_mask(xor);
        let port = port
            ^ if xor.is_some() {
                (MAGIC_COOKIE >> 16) as u16
            } else {
                0
            };
        let ip = match (family, self.value.get(4..)) {
            (0x01, Some(addr)) => {
                let a: [u8; 4] = addr.try_into().map_err(|_| self.bad_len())?;
                let mut out = [0u8; 4];
                for ((o, a), m) in out.iter_mut().zip(a).zip(mask) {
                    *o = a ^ m;
                }
                IpAddr::V4(Ipv4Addr::from(out))
            }
            (0x02, Some(addr)) => {
                let a: [u8; 16] = addr.try_into().map_err(|_| self.bad_len())?;
                let mut out = [0u8; 16];
                for ((o, a), m) in out.iter_mut().zip(a).zip(mask) {
                    *o = a ^ m;
                }
                IpAddr::V6(Ipv6Addr::from(out))
            }
            _ => return Err(bad),
        };
        Ok(SocketAddr::new(ip, port))
    }
}

/// The 16-byte XOR pad of RFC 5389 §15.2 (all zero when not XOR-ing): the magic cookie,
/// then the transaction id.
pub(crate) fn xor_mask(tid: Option<&TransactionId>) -> [u8; 16] {
    let mut mask = [0u8; 16];
    if let Some(tid) = tid {
        let (cookie, rest) = mask.split_at_mut(4);
        cookie.copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        rest.copy_from_slice(&tid.0);
    }
    mask
}

/// Iterator over the attributes of a parsed [`super::Message`].
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    bytes: &'a [u8],
    offset: usize,
    end: usize,
}

impl<'a> Attributes<'a> {
    pub(crate) fn new(bytes: &'a [u8], offset: usize, end: usize) -> Self {
        Attributes { bytes, offset, end }
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = RawAttribute<'a>;

    fn next(&mut self) -> Option<RawAttribute<'a>> {
        // The message was validated by `Message::parse`; any inconsistency just ends the
        // iteration rather than panicking.
        if self.offset >= self.end {
            return None;
        }
        let attr_type = be16(self.bytes, self.offset)?;
        let len = usize::from(be16(self.bytes, self.offset + 2)?);
        let start = self.offset + 4;
        let value = self.bytes.get(start..start + len)?;
        let attr = RawAttribute {
            attr_type,
            value,
            offset: self.offset,
        };
        self.offset = start + padded(len);
        Some(attr)
    }
}

/// USERNAME of an ICE check sent to the server, split at the first `:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IceUsername<'a> {
    /// The receiver's (server's) ufrag: its `a=ice-ufrag` in the SDP answer.
    pub server: &'a str,
    /// The sender's (client's) ufrag: its `a=ice-ufrag` in the SDP offer.
    pub client: &'a str,
}

impl<'a> IceUsername<'a> {
    /// Splits a raw USERNAME value. Both parts must be non-empty UTF-8.
    pub fn parse(raw: &'a [u8]) -> Result<Self, Error> {
        if raw.len() > MAX_USERNAME_LEN {
            return Err(Error::BadUsername);
        }
        let text = std::str::from_utf8(raw).map_err(|_| Error::BadUsername)?;
        match text.split_once(':') {
            Some((server, client)) if !server.is_empty() && !client.is_empty() => {
                Ok(IceUsername { server, client })
            }
            _ => Err(Error::BadUsername),
        }
    }
}

/// ERROR-CODE value: the code (300-699) and its reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode<'a> {
    /// Numeric code, e.g. 401.
    pub code: u16,
    /// Reason phrase.
    pub reason: &'a str,
}

impl ErrorCode<'static> {
    /// 400 Bad Request: malformed check.
    pub const BAD_REQUEST: ErrorCode<'static> = ErrorCode {
        code: 400,
        reason: "Bad Request",
    };
    /// 401 Unauthorized: missing or wrong MESSAGE-INTEGRITY or USERNAME.
    pub const UNAUTHORIZED: ErrorCode<'static> = ErrorCode {
        code: 401,
        reason: "Unauthorized",
    };
    /// 420 Unknown Attribute.
    pub const UNKNOWN_ATTRIBUTE: ErrorCode<'static> = ErrorCode {
        code: 420,
        reason: "Unknown Attribute",
    };
    /// 487 Role Conflict (RFC 8445).
    pub const ROLE_CONFLICT: ErrorCode<'static> = ErrorCode {
        code: 487,
        reason: "Role Conflict",
    };
}
