use crate::handshake::HandshakeType;

/// Everything that can be wrong with SRT bytes or a streamid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The streamid is longer than SRT allows.
    #[error("streamid is {len} bytes, more than the {max} SRT allows")]
    StreamIdTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The `#!::` form is malformed.
    #[error("malformed streamid: {0}")]
    StreamIdSyntax(String),
    /// The `m=` key has a value SRT does not define.
    #[error("unknown streamid mode {0:?} (expected request, publish or bidirectional)")]
    UnknownMode(String),
    /// A text extension (SID, congestion, filter) is not UTF-8.
    #[error("{what} extension is not UTF-8")]
    NotUtf8 {
        /// Which extension.
        what: &'static str,
    },
    /// The bytes end before a field that must be there.
    #[error("truncated {what}: need {needed} bytes, have {available}")]
    Truncated {
        /// The field or structure being read.
        what: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// The datagram is longer than an SRT handshake can be.
    #[error("handshake of {len} bytes exceeds the {max}-byte limit")]
    HandshakeTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A data packet or a control packet other than a handshake.
    #[error("not a handshake packet")]
    NotHandshake,
    /// An extension block claims more words than the handshake holds.
    #[error("extension {ext_type} claims {words} words but only {available} bytes follow")]
    ExtensionOverrun {
        /// The block's type.
        ext_type: u16,
        /// The length it claims, in 32-bit words.
        words: u16,
        /// Bytes actually left.
        available: usize,
    },
    /// 1 to 3 bytes after the last extension block: not a block header.
    #[error("{len} stray bytes after the last extension block")]
    TrailingBytes {
        /// How many.
        len: usize,
    },
    /// More extension blocks than any real handshake carries.
    #[error("more than {max} extension blocks")]
    TooManyExtensions {
        /// The limit.
        max: usize,
    },
    /// An extension's contents are too short for its type.
    #[error("extension {ext_type} has {len} bytes, needs at least {needed}")]
    ExtensionTooShort {
        /// The block's type.
        ext_type: u16,
        /// Its content length.
        len: usize,
        /// The minimum for that type.
        needed: usize,
    },
    /// Extension contents must be whole 32-bit words and fit the 16-bit length.
    #[error("extension contents of {len} bytes are not a whole number of words up to 65535")]
    BadExtensionLength {
        /// The length given.
        len: usize,
    },
    /// Handshake version other than those this codec speaks.
    #[error("unsupported handshake version {0}")]
    UnsupportedVersion(u32),
    /// A handshake of a type that does not fit this step.
    #[error("expected a {expected} handshake, got {got:?}")]
    UnexpectedHandshake {
        /// What this step needs.
        expected: &'static str,
        /// What came.
        got: HandshakeType,
    },
    /// The SYN cookie is not one this listener issued to that address recently.
    #[error("SYN cookie {cookie:#010x} was not issued to this peer recently")]
    BadCookie {
        /// The cookie received.
        cookie: u32,
    },
    /// A handshake addressed to another socket id than this session's.
    #[error("handshake for socket id {got:#010x}, session expects {expected:#010x}")]
    WrongSocketId {
        /// The id this session uses.
        expected: u32,
        /// The id in the packet.
        got: u32,
    },
}
