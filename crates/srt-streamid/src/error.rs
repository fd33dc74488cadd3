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
}
