//! Writing STUN messages into a caller-provided buffer: the responses a proxy may send and
//! the binding requests a test or load generator needs. No allocation: a stack array of
//! a few hundred bytes is enough for any of them.

use std::net::{IpAddr, SocketAddr};

use super::attr::{attr_type, xor_mask};
use super::integrity::{self, IntegrityKey, HMAC_SHA1_LEN};
use super::{padded, Message, MessageType, TransactionId, HEADER_LEN, MAGIC_COOKIE};
use super::{Class, MAX_USERNAME_LEN};
use crate::Error;

/// Longest ERROR-CODE reason phrase, per RFC 5389 §15.6 (128 characters, 763 bytes).
const MAX_REASON_LEN: usize = 763;

/// Appends attributes to a STUN message being written into `buf`.
///
/// The header length is kept current after every attribute, so
/// [`MessageBuilder::message_integrity`] and [`MessageBuilder::fingerprint`] can be added
/// at any point and [`MessageBuilder::finish`] is always a complete message.
#[derive(Debug)]
pub struct MessageBuilder<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> MessageBuilder<'b> {
    /// Starts a message with the given type and transaction id.
    pub fn new(
        buf: &'b mut [u8],
        message_type: MessageType,
        transaction_id: TransactionId,
    ) -> Result<Self, Error> {
        let available = buf.len();
        let header = buf.get_mut(..HEADER_LEN).ok_or(Error::BufferTooSmall {
            needed: HEADER_LEN,
            available,
        })?;
        let (ty, rest) = header.split_at_mut(2);
        ty.copy_from_slice(&message_type.to_u16().to_be_bytes());
        let (len, rest) = rest.split_at_mut(2);
        len.copy_from_slice(&[0, 0]);
        let (cookie, tid) = rest.split_at_mut(4);
        cookie.copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        tid.copy_from_slice(&transaction_id.0);
        Ok(MessageBuilder {
            buf,
            len: HEADER_LEN,
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing but the header has been written.
    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN
    }

    /// Reserves an attribute of `value_len` bytes (plus zero padding), updates the header
    /// length, and returns the value slot.
    fn reserve(&mut self, attr_type: u16, value_len: usize) -> Result<&mut [u8], Error> {
        let value_len16 =
            u16::try_from(value_len).map_err(|_| Error::InvalidValue { attr_type })?;
        let end = self.len + 4 + padded(value_len);
        let body_len =
            u16::try_from(end - HEADER_LEN).map_err(|_| Error::InvalidValue { attr_type })?;
        let available = self.buf.len();
        if end > available {
            return Err(Error::BufferTooSmall {
                needed: end,
                available,
            });
        }
        if let Some(len_field) = self.buf.get_mut(2..4) {
            len_field.copy_from_slice(&body_len.to_be_bytes());
        }
        let start = std::mem::replace(&mut self.len, end);
        let slot = self.buf.get_mut(start..end).ok_or(Error::BufferTooSmall {
            needed: end,
            available,
        })?;
        let (head, value) = slot.split_at_mut(4);
        head.copy_from_slice(&[
            (attr_type >> 8) as u8,
            attr_type as u8,
            (value_len16 >> 8) as u8,
            value_len16 as u8,
        ]);
        // Padding must be deterministic: MESSAGE-INTEGRITY and FINGERPRINT cover it.
        value.fill(0);
        Ok(value.get_mut(..value_len).unwrap_or_default())
    }

    /// Appends any attribute with the given value.
    pub fn attribute(&mut self, attr_type: u16, value: &[u8]) -> Result<&mut Self, Error> {
        self.reserve(attr_type, value.len())?.copy_from_slice(value);
        Ok(self)
    }

    /// Appends USERNAME.
    pub fn username(&mut self, username: &str) -> Result<&mut Self, Error> {
        if username.len() > MAX_USERNAME_LEN {
            return Err(Error::InvalidValue {
                attr_type: attr_type::USERNAME,
            });
        }
        self.attribute(attr_type::USERNAME, username.as_bytes())
    }

    /// Appends USERNAME `<server ufrag>:<client ufrag>` as an ICE client writes it.
    pub fn ice_username(
        &mut self,
        server_ufrag: &str,
        client_ufrag: &str,
    ) -> Result<&mut Self, Error> {
        let total = server_ufrag.len() + 1 + client_ufrag.len();
        if total > MAX_USERNAME_LEN {
            return Err(Error::InvalidValue {
                attr_type: attr_type::USERNAME,
            });
        }
        let slot = self.reserve(attr_type::USERNAME, total)?;
        let (server, rest) = slot.split_at_mut(server_ufrag.len());
        server.copy_from_slice(server_ufrag.as_bytes());
        let (colon, client) = rest.split_at_mut(1);
        colon.copy_from_slice(b":");
        client.copy_from_slice(client_ufrag.as_bytes());
        Ok(self)
    }

    /// Appends PRIORITY.
    pub fn priority(&mut self, priority: u32) -> Result<&mut Self, Error> {
        self.attribute(attr_type::PRIORITY, &priority.to_be_bytes())
    }

    /// Appends ICE-CONTROLLING with its tie-breaker.
    pub fn ice_controlling(&mut self, tie_breaker: u64) -> Result<&mut Self, Error> {
        self.attribute(attr_type::ICE_CONTROLLING, &tie_breaker.to_be_bytes())
    }

    /// Appends ICE-CONTROLLED with its tie-breaker.
    pub fn ice_controlled(&mut self, tie_breaker: u64) -> Result<&mut Self, Error> {
        self.attribute(attr_type::ICE_CONTROLLED, &tie_breaker.to_be_bytes())
    }

    /// Appends USE-CANDIDATE.
    pub fn use_candidate(&mut self) -> Result<&mut Self, Error> {
        self.attribute(attr_type::USE_CANDIDATE, &[])
    }

    /// Appends Chrome's GOOG-NETWORK-INFO (network id, network cost).
    pub fn goog_network_info(&mut self, network_id: u16, cost: u16) -> Result<&mut Self, Error> {
        let [a, b] = network_id.to_be_bytes();
        let [c, d] = cost.to_be_bytes();
        self.attribute(attr_type::GOOG_NETWORK_INFO, &[a, b, c, d])
    }

    /// Appends SOFTWARE.
    pub fn software(&mut self, description: &str) -> Result<&mut Self, Error> {
        if description.len() > MAX_REASON_LEN {
            return Err(Error::InvalidValue {
                attr_type: attr_type::SOFTWARE,
            });
        }
        self.attribute(attr_type::SOFTWARE, description.as_bytes())
    }

    /// Appends ERROR-CODE. `code` must be 300-699.
    pub fn error_code(&mut self, code: u16, reason: &str) -> Result<&mut Self, Error> {
        let invalid = Error::InvalidValue {
            attr_type: attr_type::ERROR_CODE,
        };
        if !(300..700).contains(&code) || reason.len() > MAX_REASON_LEN {
            return Err(invalid);
        }
        let slot = self.reserve(attr_type::ERROR_CODE, 4 + reason.len())?;
        let (head, text) = slot.split_at_mut(4);
        head.copy_from_slice(&[0, 0, (code / 100) as u8, (code % 100) as u8]);
        text.copy_from_slice(reason.as_bytes());
        Ok(self)
    }

    /// Appends XOR-MAPPED-ADDRESS, XOR-ed with this message's transaction id.
    pub fn xor_mapped_address(&mut self, addr: SocketAddr) -> Result<&mut Self, Error> {
        let tid = self.transaction_id();
        self.address(attr_type::XOR_MAPPED_ADDRESS, addr, Some(&tid))
    }

    /// Appends MAPPED-ADDRESS.
    pub fn mapped_address(&mut self, addr: SocketAddr) -> Result<&mut Self, Error> {
        self.address(attr_type::MAPPED_ADDRESS, addr, None)
    }

    fn transaction_id(&self) -> TransactionId {
        let mut tid = [0u8; 12];
        if let Some(src) = self.buf.get(8..HEADER_LEN) {
            tid.copy_from_slice(src);
        }
        TransactionId(tid)
    }

    fn address(
        &mut self,
        attr_type: u16,
        addr: SocketAddr,
        xor: Option<&TransactionId>,
    ) -> Result<&mut Self, Error> {
        let mask = xor_mask(xor);
        let port_mask = if xor.is_some() {
            (MAGIC_COOKIE >> 16) as u16
        } else {
            0
        };
        let mut value = [0u8; 20];
        let (family, ip_len) = match addr.ip() {
            IpAddr::V4(ip) => {
                for ((o, b), m) in value[4..8].iter_mut().zip(ip.octets()).zip(mask) {
                    *o = b ^ m;
                }
                (0x01, 4)
            }
            IpAddr::V6(ip) => {
                for ((o, b), m) in value[4..20].iter_mut().zip(ip.octets()).zip(mask) {
                    *o = b ^ m;
                }
                (0x02, 16)
            }
        };
        value[1] = family;
        value[2..4].copy_from_slice(&(addr.port() ^ port_mask).to_be_bytes());
        self.attribute(attr_type, &value[..4 + ip_len])
    }

    /// Appends MESSAGE-INTEGRITY over everything written so far.
    pub fn message_integrity(&mut self, key: &IntegrityKey) -> Result<&mut Self, Error> {
        let at = self.len;
        let invalid = Error::InvalidValue {
            attr_type: attr_type::MESSAGE_INTEGRITY,
        };
        // Reserve first: it both checks the room and sets the header length the HMAC
        // covers to "ends right after this attribute".
        self.reserve(attr_type::MESSAGE_INTEGRITY, HMAC_SHA1_LEN)?;
        let mac = integrity::compute_hmac(self.buf, at, key).ok_or(invalid)?;
        self.buf
            .get_mut(at + 4..at + 4 + HMAC_SHA1_LEN)
            .ok_or(invalid)?
            .copy_from_slice(&mac);
        Ok(self)
    }

    /// Appends FINGERPRINT. It must be the last attribute.
    pub fn fingerprint(&mut self) -> Result<&mut Self, Error> {
        let at = self.len;
        let invalid = Error::InvalidValue {
            attr_type: attr_type::FINGERPRINT,
        };
        self.reserve(attr_type::FINGERPRINT, 4)?;
        let crc = integrity::compute_fingerprint(self.buf, at).ok_or(invalid)?;
        self.buf
            .get_mut(at + 4..at + 8)
            .ok_or(invalid)?
            .copy_from_slice(&crc.to_be_bytes());
        Ok(self)
    }

    /// The complete message.
    pub fn finish(self) -> &'b [u8] {
        let len = self.len;
        let buf: &'b [u8] = self.buf;
        buf.get(..len).unwrap_or_default()
    }
}

/// Which side of the ICE role negotiation a [`BindingRequest`] claims, with its tie-breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceRole {
    /// ICE-CONTROLLING: what a browser publishing or playing against an ICE-lite server is.
    Controlling(u64),
    /// ICE-CONTROLLED.
    Controlled(u64),
}

/// An ICE connectivity check as a client sends it to the server, for tests and load
/// generators.
///
/// Attributes are written in the order Chrome uses: USERNAME, GOOG-NETWORK-INFO, the role,
/// USE-CANDIDATE, PRIORITY, MESSAGE-INTEGRITY (keyed with the server's `ice-pwd`),
/// FINGERPRINT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingRequest<'x> {
    /// Transaction id (random in real clients).
    pub transaction_id: TransactionId,
    /// The server's ufrag (from the SDP answer).
    pub server_ufrag: &'x str,
    /// The client's ufrag (from the SDP offer).
    pub client_ufrag: &'x str,
    /// Candidate priority.
    pub priority: u32,
    /// ICE role and tie-breaker.
    pub role: IceRole,
    /// Nominate this pair.
    pub use_candidate: bool,
    /// Chrome's GOOG-NETWORK-INFO (network id, cost), if any.
    pub network_info: Option<(u16, u16)>,
}

impl BindingRequest<'_> {
    /// Writes the request into `buf`, signed with `key` (the server's password).
    pub fn encode<'b>(&self, key: &IntegrityKey, buf: &'b mut [u8]) -> Result<&'b [u8], Error> {
        let mut b = MessageBuilder::new(buf, MessageType::BINDING_REQUEST, self.transaction_id)?;
        b.ice_username(self.server_ufrag, self.client_ufrag)?;
        if let Some((id, cost)) = self.network_info {
            b.goog_network_info(id, cost)?;
        }
        match self.role {
            IceRole::Controlling(t) => b.ice_controlling(t)?,
            IceRole::Controlled(t) => b.ice_controlled(t)?,
        };
        if self.use_candidate {
            b.use_candidate()?;
        }
        b.priority(self.priority)?
            .message_integrity(key)?
            .fingerprint()?;
        Ok(b.finish())
    }
}

/// A Binding error response to `request` with ERROR-CODE and FINGERPRINT.
///
/// It carries no MESSAGE-INTEGRITY: RFC 5389 §10.1.2 forbids it on 400 and 401, the codes a
/// proxy answers when it cannot authenticate the check.
pub fn binding_error_response<'b>(
    request: &Message<'_>,
    code: u16,
    reason: &str,
    buf: &'b mut [u8],
) -> Result<&'b [u8], Error> {
    let ty = MessageType::new(Class::ErrorResponse, request.method());
    let mut b = MessageBuilder::new(buf, ty, request.transaction_id())?;
    b.error_code(code, reason)?.fingerprint()?;
    Ok(b.finish())
}

/// A Binding success response to `request` reflecting `mapped` in XOR-MAPPED-ADDRESS,
/// signed with `key` (the server's password) and fingerprinted.
pub fn binding_success_response<'b>(
    request: &Message<'_>,
    mapped: SocketAddr,
    key: &IntegrityKey,
    buf: &'b mut [u8],
) -> Result<&'b [u8], Error> {
    let ty = MessageType::new(Class::SuccessResponse, request.method());
    let mut b = MessageBuilder::new(buf, ty, request.transaction_id())?;
    b.xor_mapped_address(mapped)?
        .message_integrity(key)?
        .fingerprint()?;
    Ok(b.finish())
}
