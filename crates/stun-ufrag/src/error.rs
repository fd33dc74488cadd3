/// Everything that can be wrong with a STUN datagram, an SDP body, or a message being built.
///
/// No variant owns heap data: errors are returned on the per-packet path and must not
/// allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fewer bytes than a STUN header.
    #[error("{len} bytes is shorter than the 20-byte STUN header")]
    TooShort {
        /// Bytes received.
        len: usize,
    },
    /// One of the two most significant bits of the message type is set.
    #[error("not STUN: the top two bits of the first byte are not zero")]
    NotStun,
    /// The magic cookie is not `0x2112A442` (RFC 3489 messages are refused too).
    #[error("not STUN: magic cookie is {0:#010x}")]
    BadMagicCookie(u32),
    /// The header's length is not a multiple of four.
    #[error("STUN length {0} is not a multiple of 4")]
    UnalignedLength(u16),
    /// The header's length does not match the bytes after the header.
    #[error("STUN length {declared} does not match the {actual} bytes after the header")]
    LengthMismatch {
        /// Length in the header.
        declared: u16,
        /// Bytes after the header.
        actual: usize,
    },
    /// An attribute's header or padded value runs past the end of the message.
    #[error("STUN attribute {attr_type:#06x} at offset {offset} runs past the message")]
    TruncatedAttribute {
        /// Attribute type.
        attr_type: u16,
        /// Offset of the attribute header in the message.
        offset: usize,
    },
    /// More attributes than [`crate::stun::MAX_ATTRIBUTES`].
    #[error("more than {max} STUN attributes")]
    TooManyAttributes {
        /// The limit.
        max: usize,
    },
    /// An attribute follows FINGERPRINT, which must be last.
    #[error("STUN attribute after FINGERPRINT")]
    FingerprintNotLast,
    /// An attribute's length is not the one its type requires.
    #[error("STUN attribute {attr_type:#06x} has invalid length {len}")]
    BadAttributeLength {
        /// Attribute type.
        attr_type: u16,
        /// Length found.
        len: usize,
    },
    /// An attribute's value is malformed (bad address family, bad error class...).
    #[error("STUN attribute {attr_type:#06x} is malformed")]
    BadAttributeValue {
        /// Attribute type.
        attr_type: u16,
    },
    /// A required attribute is absent.
    #[error("STUN attribute {0:#06x} is missing")]
    MissingAttribute(u16),
    /// USERNAME is not `<server ufrag>:<client ufrag>` in UTF-8 within the length limit.
    #[error("STUN USERNAME is not `<server ufrag>:<client ufrag>`")]
    BadUsername,
    /// MESSAGE-INTEGRITY does not match the key.
    #[error("STUN MESSAGE-INTEGRITY does not match")]
    IntegrityMismatch,
    /// FINGERPRINT does not match the message.
    #[error("STUN FINGERPRINT does not match")]
    FingerprintMismatch,
    /// The output buffer cannot hold the message being built.
    #[error("buffer of {available} bytes too small, {needed} needed")]
    BufferTooSmall {
        /// Bytes the message would need.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// A value passed to a builder is out of range (error code, over-long text, message
    /// longer than the 16-bit length allows).
    #[error("invalid value for STUN attribute {attr_type:#06x}")]
    InvalidValue {
        /// Attribute type being written.
        attr_type: u16,
    },
    /// The SDP body is larger than [`crate::sdp::MAX_SDP_LEN`].
    #[error("SDP of {len} bytes exceeds the {max}-byte limit")]
    SdpTooLarge {
        /// Bytes received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The SDP body has more lines than [`crate::sdp::MAX_SDP_LINES`].
    #[error("SDP has more than {max} lines")]
    SdpTooManyLines {
        /// The limit.
        max: usize,
    },
    /// A full SDP does not start with `v=`.
    #[error("not an SDP session description (no leading v= line)")]
    NotSdp,
    /// An `a=ice-ufrag` or `a=ice-pwd` value is empty, too long or has forbidden bytes.
    #[error("malformed ICE credential on SDP line {line}")]
    BadIceCredential {
        /// 1-based line number.
        line: usize,
    },
    /// No `a=ice-ufrag` applies to the first media section.
    #[error("SDP has no a=ice-ufrag")]
    MissingIceUfrag,
    /// No `a=ice-pwd` applies to the first media section.
    #[error("SDP has no a=ice-pwd")]
    MissingIcePwd,
    /// An `a=candidate` line does not follow the RFC 8839 grammar.
    #[error("malformed a=candidate on SDP line {line}")]
    BadCandidate {
        /// 1-based line number (1 for a lone candidate string).
        line: usize,
    },
    /// The public host name given for rewriting is not a plain DNS name.
    #[error("public host name is not a valid DNS name")]
    BadPublicHost,
}
