//! Rewriting a whole playlist: every URI gets the affinity token, every other byte stays.

use crate::parse::Lines;
use crate::uri::{push_rewritten, Target};
use crate::Error;

/// Query parameter carrying the affinity token (SRS's Go proxy calls it SPBHID, "SRS Proxy
/// Backend HLS ID"). `flv-http` classifies a `.ts` request carrying it as an HLS segment.
pub const DEFAULT_TOKEN_PARAM: &str = "spbhid";
/// Default limit on a playlist's size: 4 MiB (a live playlist is a few KiB).
pub const DEFAULT_MAX_SIZE: usize = 4 * 1024 * 1024;
/// Default limit on a playlist's line count.
pub const DEFAULT_MAX_LINES: usize = 100_000;
/// Longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 128;
/// Longest parameter name accepted, in bytes.
pub const MAX_PARAM_LEN: usize = 32;
/// Longest base path accepted (when relative URIs are resolved), in bytes.
pub const MAX_BASE_PATH_LEN: usize = 4096;

/// What to do with absolute `http://` and `https://` URLs (and scheme-relative `//host/..`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AbsoluteUrls {
    /// Drop scheme and authority: `http://origin:8080/live/x.ts` becomes
    /// `/live/x.ts?spbhid=..`, an absolute path on whatever proxy served the playlist, so
    /// players come back through the proxy, and the token, not the host, picks the origin.
    #[default]
    ToPath,
    /// As [`ToPath`](Self::ToPath) for URLs whose host (`host` or `host:port`, ASCII case
    /// ignored) is listed; any other URL (a CDN, a third-party key server) is left as is.
    ToPathForHosts(Vec<String>),
    /// Leave every absolute URL as it is, without token.
    Keep,
}

/// What to do with relative URIs (`livestream-0.ts`, `../a/b.m3u8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RelativeUris {
    /// Keep them relative: players resolve them against the playlist's URL on the proxy,
    /// which is already right, and a proxy mounted under a path prefix keeps working.
    #[default]
    Keep,
    /// Resolve them against the base path into absolute paths.
    Resolve,
}

/// Limits and URI policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Largest playlist accepted, in bytes.
    pub max_size: usize,
    /// Most lines accepted.
    pub max_lines: usize,
    /// Absolute URL policy.
    pub absolute_urls: AbsoluteUrls,
    /// Relative URI policy.
    pub relative_uris: RelativeUris,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_size: DEFAULT_MAX_SIZE,
            max_lines: DEFAULT_MAX_LINES,
            absolute_urls: AbsoluteUrls::default(),
            relative_uris: RelativeUris::default(),
        }
    }
}

/// Rewrites `playlist` with the default [`Options`]: every URI (URI lines and `URI="..."`
/// attributes of the tags that have one) gets `token_param=token` in its query, replacing
/// any value already there; other query parameters (SRS's `hls_ctx`, LL-HLS's `_HLS_*`,
/// auth tokens) are kept. `base_path` is the playlist's request path (`/live/s.m3u8`).
///
/// Every other byte is kept: tags, comments, blank lines, line endings, a BOM. URIs that
/// cannot go through the proxy (`data:`, `skd:`, other schemes) are left as they are.
///
/// ```
/// let media = "#EXTM3U\n#EXTINF:10.000, no desc\nlivestream-0.ts?hls_ctx=0u6c1xr3\n";
/// let out = hls_rewrite::rewrite(media, "spbhid", "k2x9", "/live/livestream.m3u8")?;
/// assert_eq!(out, "#EXTM3U\n#EXTINF:10.000, no desc\nlivestream-0.ts?hls_ctx=0u6c1xr3&spbhid=k2x9\n");
/// # Ok::<(), hls_rewrite::Error>(())
/// ```
pub fn rewrite(
    playlist: &str,
    token_param: &str,
    token: &str,
    base_path: &str,
) -> Result<String, Error> {
    rewrite_with(playlist, token_param, token, base_path, &Options::default())
}

/// [`rewrite`] for a body as received (HLS playlists must be UTF-8).
pub fn rewrite_bytes(
    playlist: &[u8],
    token_param: &str,
    token: &str,
    base_path: &str,
) -> Result<String, Error> {
    let text = std::str::from_utf8(playlist).map_err(|_| Error::NotUtf8)?;
    rewrite(text, token_param, token, base_path)
}

/// [`rewrite`] with explicit limits and policies.
pub fn rewrite_with(
    playlist: &str,
    token_param: &str,
    token: &str,
    base_path: &str,
    options: &Options,
) -> Result<String, Error> {
    if !is_unreserved(token_param, MAX_PARAM_LEN) {
        return Err(Error::InvalidParam);
    }
    if !is_unreserved(token, MAX_TOKEN_LEN) {
        return Err(Error::InvalidToken);
    }
    let base_path = base_path.split_once('?').map_or(base_path, |(p, _)| p);
    if options.relative_uris == RelativeUris::Resolve
        && (!base_path.starts_with('/') || base_path.len() > MAX_BASE_PATH_LEN)
    {
        return Err(Error::InvalidBasePath);
    }
    let target = Target {
        param: token_param,
        token,
        base_path,
        options,
    };
    // Resolving relative URIs can lengthen each by the base path: bound the total too.
    let max_output = options.max_size.saturating_mul(4);

    let lines = Lines::new(playlist, options)?;
    let mut out = String::with_capacity(playlist.len() + playlist.len() / 4);
    if lines.bom {
        out.push('\u{feff}');
    }
    for line in lines {
        let line = line?;
        match &line.uri {
            Some(uri) => {
                out.push_str(line.text.get(..uri.range.start).unwrap_or_default());
                if !push_rewritten(&mut out, uri.value, &target) {
                    out.push_str(uri.value);
                }
                out.push_str(line.text.get(uri.range.end..).unwrap_or_default());
            }
            None => out.push_str(line.text),
        }
        out.push_str(line.ending);
        if out.len() > max_output {
            return Err(Error::TooLarge {
                size: out.len(),
                max: max_output,
            });
        }
    }
    Ok(out)
}

/// Tokens and parameter names go into URIs and quoted attributes unescaped, so they are
/// restricted to RFC 3986 unreserved characters.
fn is_unreserved(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

#[cfg(test)]
mod tests;
