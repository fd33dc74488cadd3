//! Sans-IO m3u8 parsing and rewriting for a streaming proxy in front of origin servers.
//!
//! A proxy fleet routes HLS by an affinity token: when a proxy serves a playlist it
//! rewrites every URI in it (URI lines, and the `URI="..."` attribute of `EXT-X-MAP`,
//! `EXT-X-KEY`, `EXT-X-SESSION-KEY`, `EXT-X-MEDIA`, `EXT-X-PART`, `EXT-X-PRELOAD-HINT`,
//! `EXT-X-RENDITION-REPORT`, `EXT-X-I-FRAME-STREAM-INF`, `EXT-X-SESSION-DATA`) to carry
//! `?spbhid=<token>`; the token names the origin in the balancer's session store, so the
//! next request, on any proxy, reaches the same origin. Before forwarding such a request the
//! proxy removes the token ([`strip_token`]); everything else in the query is the origin's.
//!
//! Absolute `http(s)` URLs become absolute paths by default, so players come back through
//! the proxy ([`AbsoluteUrls`]); relative URIs stay relative ([`RelativeUris`]). Every byte
//! that is not a rewritten URI is kept.
//!
//! ```
//! use hls_rewrite::{extract_token, parse, rewrite, strip_token, UriContext, DEFAULT_TOKEN_PARAM};
//!
//! // SRS's hls_ctx master playlist, as the origin sends it.
//! let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1\n/live/livestream.m3u8?hls_ctx=0u6c1xr3\n";
//! let out = rewrite(master, DEFAULT_TOKEN_PARAM, "k2x9", "/live/livestream.m3u8")?;
//! assert!(out.ends_with("\n/live/livestream.m3u8?hls_ctx=0u6c1xr3&spbhid=k2x9\n"));
//!
//! let parsed = parse(&out)?;
//! let variant = parsed.uris().next().ok_or("no URI")?;
//! assert_eq!(variant.context, UriContext::Variant);
//!
//! // The player's next request: route by the token, forward without it.
//! let query = "hls_ctx=0u6c1xr3&spbhid=k2x9&_HLS_msn=5";
//! assert_eq!(extract_token(query, DEFAULT_TOKEN_PARAM), Some("k2x9"));
//! assert_eq!(strip_token(query, DEFAULT_TOKEN_PARAM), "hls_ctx=0u6c1xr3&_HLS_msn=5");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod attr;
mod error;
mod parse;
mod query;
mod rewrite;
mod uri;

#[doc(hidden)]
pub mod fuzzing;

pub use error::Error;
pub use parse::{parse, parse_with, Line, LineKind, Playlist, PlaylistKind, Uri, UriContext};
pub use query::{extract_token, strip_token};
pub use rewrite::{
    rewrite, rewrite_bytes, rewrite_with, AbsoluteUrls, Options, RelativeUris, DEFAULT_MAX_LINES,
    DEFAULT_MAX_SIZE, DEFAULT_TOKEN_PARAM, MAX_BASE_PATH_LEN, MAX_PARAM_LEN, MAX_TOKEN_LEN,
};
