#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod attr;
pub mod cache;
mod error;
mod parse;
mod query;
mod rewrite;
mod uri;

#[doc(hidden)]
pub mod fuzzing;

pub use error::Error;
pub use parse::{parse, parse_with, Line, LineKind, Playlist, PlaylistKind, Uri, UriContext};
pub use query::{extract_token, is_blocking_reload, strip_token};
pub use rewrite::{
    rewrite, rewrite_bytes, rewrite_with, AbsoluteUrls, Options, RelativeUris, DEFAULT_MAX_LINES,
    DEFAULT_MAX_SIZE, DEFAULT_TOKEN_PARAM, MAX_BASE_PATH_LEN, MAX_PARAM_LEN, MAX_TOKEN_LEN,
};
