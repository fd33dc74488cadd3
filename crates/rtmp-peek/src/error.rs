//! The crate's single error type.

/// Everything that can go wrong while reading or writing RTMP.
///
/// Variants that describe peer input carry enough context to log; none of them is a panic
/// in disguise: every error path is reachable from hostile bytes and is expected to end the
/// connection, not the process.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// C0/S0 named a version other than 3 (6 would be RTMPE, which is not supported).
    #[error("unsupported RTMP version byte {0} (expected 3)")]
    UnsupportedVersion(u8),
    /// The HMAC used by the digest handshake could not be set up.
    #[error("handshake digest failure")]
    HandshakeDigest,

    /// A Set Chunk Size outside 1..=0x7FFFFFFF (the top bit must be 0).
    #[error("invalid chunk size {0} (must be 1..=0x7FFFFFFF)")]
    InvalidChunkSize(u32),
    /// A chunk stream id outside 2..=65599.
    #[error("invalid chunk stream id {0} (must be 2..=65599)")]
    InvalidChunkStreamId(u32),
    /// A message longer than the configured (or the protocol's 24-bit) limit.
    #[error("message of {len} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// Declared length.
        len: u64,
        /// Limit in force.
        limit: u64,
    },
    /// The peer opened more chunk streams than allowed.
    #[error("more than {0} chunk streams in use")]
    TooManyChunkStreams(usize),
    /// Partially received messages add up to more than allowed.
    #[error("more than {0} bytes of partially received messages")]
    TooMuchInProgress(usize),
    /// A fmt 1, 2 or 3 chunk on a chunk stream that never had a full header.
    #[error("fmt {fmt} chunk on chunk stream {csid} which has no previous header")]
    MissingPreviousHeader {
        /// Chunk stream id.
        csid: u32,
        /// Chunk header format (1..=3).
        fmt: u8,
    },
    /// A fmt 0, 1 or 2 chunk started a new message while one was still being received.
    #[error("new message header on chunk stream {0} while a message is incomplete")]
    InterruptedMessage(u32),
    /// A message being handed out in pieces ([`ChunkReader::next_piece`](crate::ChunkReader::next_piece))
    /// was asked for whole; or a piece does not continue what a writer was given for its
    /// chunk stream.
    #[error("chunk stream {0}: a streamed message's pieces were read or written out of turn")]
    PieceOfStreamedMessage(u32),
    /// A protocol control or user control message with a malformed body.
    #[error("malformed {0} message")]
    MalformedMessage(&'static str),
    /// Input that was buffered but not yet processed exceeds the limit.
    #[error("more than {0} bytes buffered before relay")]
    BufferFull(usize),

    /// AMF0 ran out of input in the middle of a value.
    #[error("AMF0: truncated input")]
    Amf0Truncated,
    /// An AMF0 type marker this crate does not accept (reference, typed object, AMF3...).
    #[error("AMF0: unsupported type marker 0x{marker:02x} ({name})")]
    Amf0Unsupported {
        /// The marker byte.
        marker: u8,
        /// What the marker means.
        name: &'static str,
    },
    /// An object-end marker where a value was expected, or an empty key without one.
    #[error("AMF0: misplaced object end")]
    Amf0ObjectEnd,
    /// An AMF0 string that is not UTF-8.
    #[error("AMF0: string is not valid UTF-8")]
    Amf0Utf8,
    /// An AMF0 string longer than allowed.
    #[error("AMF0: string of {len} bytes exceeds the limit of {limit}")]
    Amf0StringTooLong {
        /// Declared length.
        len: u64,
        /// Limit in force.
        limit: usize,
    },
    /// Objects or arrays nested deeper than allowed.
    #[error("AMF0: nesting deeper than {0}")]
    Amf0TooDeep(usize),
    /// More values in one message than allowed.
    #[error("AMF0: more than {0} values")]
    Amf0TooManyValues(usize),
    /// A value too large to encode (string over 4 GiB, more than 2^32 elements).
    #[error("AMF0: value too large to encode")]
    Amf0TooLarge,

    /// A command message that does not have the shape its name requires.
    #[error("bad `{command}` command: {reason}")]
    BadCommand {
        /// Command name.
        command: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A message that is not allowed in the session's current state.
    #[error("unexpected {what} in state {state}")]
    Unexpected {
        /// What arrived.
        what: String,
        /// Where the session was.
        state: &'static str,
    },
    /// Too many or too large commands before the stream was identified.
    #[error("setup exceeds {0}")]
    SetupTooLarge(&'static str),
    /// The session was used after it failed or finished.
    #[error("session is closed")]
    Closed,
}
