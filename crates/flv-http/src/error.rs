//! The crate's one error type.

use thiserror::Error;

/// Everything that can go wrong while classifying a request or reading FLV.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// The method is empty, too long, or not an HTTP token.
    #[error("invalid HTTP method")]
    InvalidMethod,
    /// A part of the request is longer than its limit.
    #[error("{what} is {len} long, over the limit of {max}")]
    TooLong {
        /// Which part (`"path"`, `"query"`, `"host"`, `"path segments"`...).
        what: &'static str,
        /// Its length (bytes, or segments for `"path segments"`).
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The request path cannot name a stream.
    #[error("invalid request path: {0}")]
    InvalidPath(&'static str),
    /// The `Host` header or the `vhost` query parameter is not a host name.
    #[error("invalid host or vhost")]
    InvalidHost,
    /// A `%` escape is malformed or decodes to invalid UTF-8.
    #[error("invalid percent-encoding")]
    InvalidPercentEncoding,
    /// An HTTP/1 message head that does not parse.
    #[error("malformed HTTP head: {0}")]
    MalformedHead(String),
    /// The stream does not start with the `FLV` signature.
    #[error("not an FLV stream (bad signature)")]
    NotFlv,
    /// The FLV header's version is not 1.
    #[error("unsupported FLV version {0}")]
    UnsupportedVersion(u8),
    /// The FLV header's DataOffset is below 9 or over the reader's limit.
    #[error("FLV header DataOffset {0} out of range")]
    BadDataOffset(u32),
    /// A tag's DataSize is over the reader's limit.
    #[error("FLV tag of {size} bytes, over the limit of {max}")]
    TagTooLarge {
        /// DataSize read from the tag header.
        size: u32,
        /// The configured limit.
        max: u32,
    },
    /// A PreviousTagSize field disagrees with the tag before it (strict mode only).
    #[error("PreviousTagSize {found} does not match the tag size {expected}")]
    PreviousTagSizeMismatch {
        /// 11 + DataSize of the tag just read.
        expected: u32,
        /// The value found in the stream.
        found: u32,
    },
}
