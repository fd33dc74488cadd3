//! The crate's one error type.

use thiserror::Error;

/// Everything that can go wrong while parsing or rewriting a playlist.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// The playlist is larger than [`crate::Options::max_size`].
    #[error("playlist of {size} bytes, over the limit of {max}")]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit in force.
        max: usize,
    },
    /// The playlist has more lines than [`crate::Options::max_lines`].
    #[error("playlist has more than {max} lines")]
    TooManyLines {
        /// The limit in force.
        max: usize,
    },
    /// The playlist is not UTF-8 (HLS requires it).
    #[error("playlist is not UTF-8")]
    NotUtf8,
    /// The token is empty, too long, or has characters other than `A-Za-z0-9-._~`.
    #[error("invalid affinity token")]
    InvalidToken,
    /// The parameter name is empty, too long, or has characters other than `A-Za-z0-9-._~`.
    #[error("invalid token parameter name")]
    InvalidParam,
    /// The base path does not start with `/` (only checked when relative URIs are resolved).
    #[error("base path must start with '/'")]
    InvalidBasePath,
}
