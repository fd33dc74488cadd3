//! Classification of an HTTP media request: what is asked for, and the raw parts of the
//! stream identity (vhost, app, stream) that `lb-core` turns into a stream key.

use std::borrow::Cow;

use crate::text::{decode, has_param, query_param};
use crate::Error;

/// Query parameter that carries the HLS affinity token in playlists rewritten by the proxy
/// (SRS's Go proxy calls it SPBHID, "SRS Proxy Backend HLS ID"). `hls-rewrite` uses the same
/// default; a deployment that changes one must change both.
pub const DEFAULT_TOKEN_PARAM: &str = "spbhid";

/// Query parameter SRS puts on its own HLS URIs (`hls_ctx on`, `hls_ts_ctx on`).
pub const SRS_HLS_CTX_PARAM: &str = "hls_ctx";

/// Longest request path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 4096;
/// Longest query string accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 8192;
/// Longest host (`Host` header or `vhost` parameter) accepted, in bytes.
pub const MAX_HOST_LEN: usize = 255;
/// Most path segments accepted.
pub const MAX_SEGMENTS: usize = 32;
const MAX_METHOD_LEN: usize = 32;

/// What a request asks for, as the HTTP front-end routes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// HTTP-FLV live stream (`/app/stream.flv`): an endless response, routed by stream.
    Flv,
    /// HTTP-TS live stream (`/app/stream.ts` without an affinity token), routed by stream.
    /// SRS's other live mounts, `.aac` and `.mp3` without a token, stream the same way
    /// and are reported here too; [`MediaRequest::extension`] tells them apart.
    Ts,
    /// HLS playlist (`.m3u8`): fetched whole, rewritten, routed by token or by stream.
    HlsPlaylist,
    /// HLS segment, init segment, part or key (`.m4s`, `.mp4`, `.m4a`, `.m4v`, `.cmfv`,
    /// `.cmfa`, `.key`, `.vtt`, `.webvtt`; `.ts`, `.aac`, `.mp3` only with an affinity
    /// token or SRS's `hls_ctx`): routed by token.
    HlsSegment,
    /// Anything else: no media extension (WHIP/WHEP, APIs, directories), an unknown
    /// extension, or a method other than GET/HEAD.
    Other,
}

/// A classified request. The identity fields are raw: `lb-core` applies SRS's vhost rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRequest {
    /// What is asked for.
    pub kind: Kind,
    /// The `vhost` query parameter (or its SRS alias `domain`) if present, else the `Host`
    /// header without its port (IPv6 brackets removed). `None` when neither is there.
    pub vhost: Option<String>,
    /// Every path segment before the last, joined with `/` (`/live/sub/s.flv` -> `live/sub`),
    /// percent-decoded, unless an `app` query parameter overrides it. May be empty.
    pub app: String,
    /// The last path segment without its extension, percent-decoded, unless a `stream`
    /// query parameter overrides it. Never empty for [`Kind::Flv`], [`Kind::Ts`] and
    /// [`Kind::HlsPlaylist`].
    pub stream: String,
    /// The extension of the last path segment, lowercased, without the dot; empty if none.
    pub extension: String,
    /// The affinity token (raw value of the token parameter), if the query carries one.
    pub token: Option<String>,
}

impl MediaRequest {
    /// For a segment-like name (`livestream-12`, `stream_3`), the stream it most likely
    /// belongs to (`livestream`, `stream`): SRS and nginx-rtmp name TS segments
    /// `<stream>-<n>.ts`. Only a fallback for a segment request that lost its token; the
    /// name alone cannot tell `/live/cam-1.ts` (HTTP-TS of stream `cam-1`) from a segment.
    pub fn segment_stream_guess(&self) -> Option<&str> {
        let (base, number) = self.stream.rsplit_once(['-', '_'])?;
        let numeric = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
        (numeric && !base.is_empty()).then_some(base)
    }
}

/// Classifies requests; holds the affinity token parameter name and nothing else.
#[derive(Debug, Clone)]
pub struct Classifier {
    token_param: Cow<'static, str>,
}

impl Default for Classifier {
    fn default() -> Self {
        Classifier {
            token_param: Cow::Borrowed(DEFAULT_TOKEN_PARAM),
        }
    }
}

impl Classifier {
    /// A classifier using [`DEFAULT_TOKEN_PARAM`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `param` as the affinity token parameter (match the playlist rewriter's).
    pub fn with_token_param(mut self, param: impl Into<String>) -> Self {
        self.token_param = Cow::Owned(param.into());
        self
    }

    /// The affinity token parameter in use.
    pub fn token_param(&self) -> &str {
        &self.token_param
    }

    /// Classifies a request. `path` is the request path; if `query` is `None` and `path`
    /// still carries `?query`, it is split off here. `host` is the `Host` header (or the
    /// authority of an absolute-form request).
    pub fn classify(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        host: Option<&str>,
    ) -> Result<MediaRequest, Error> {
        check_method(method)?;
        let (path, query) = split_target(path, query);
        check_len("path", path.len(), MAX_PATH_LEN)?;
        check_len("query", query.len(), MAX_QUERY_LEN)?;
        let Some(rest) = path.strip_prefix('/') else {
            return Err(Error::InvalidPath("does not start with '/'"));
        };

        let (app, file) = split_path(rest)?;
        let (stem, extension) = match file.rsplit_once('.') {
            Some((stem, ext)) => (stem, ext.to_ascii_lowercase()),
            None => (file.as_str(), String::new()),
        };

        let token = query_param(query, &self.token_param)?;
        let tagged = token.is_some() || has_param(query, SRS_HLS_CTX_PARAM);
        let kind = if method == "GET" || method == "HEAD" {
            kind_of(&extension, tagged)
        } else {
            Kind::Other
        };

        let app = match query_param(query, "app")? {
            Some(app) => app,
            None => app,
        };
        let stream = match query_param(query, "stream")? {
            Some(stream) => stream,
            None => stem.to_owned(),
        };
        check_name(&app, true)?;
        check_name(&stream, false)?;
        if stream.is_empty() && matches!(kind, Kind::Flv | Kind::Ts | Kind::HlsPlaylist) {
            return Err(Error::InvalidPath("empty stream name"));
        }

        let vhost = match query_param(query, "vhost")? {
            Some(v) => Some(v),
            None => query_param(query, "domain")?,
        };
        let vhost = match vhost.as_deref().or(host) {
            Some(h) => host_name(h)?,
            None => None,
        };
        Ok(MediaRequest {
            kind,
            vhost,
            app,
            stream,
            extension,
            token,
        })
    }
}

/// Classifies with the default [`Classifier`] (token parameter [`DEFAULT_TOKEN_PARAM`]).
pub fn classify(
    method: &str,
    path: &str,
    query: Option<&str>,
    host: Option<&str>,
) -> Result<MediaRequest, Error> {
    Classifier::default().classify(method, path, query, host)
}

fn kind_of(extension: &str, tagged: bool) -> Kind {
    match extension {
        "flv" => Kind::Flv,
        "m3u8" => Kind::HlsPlaylist,
        // Live mounts and HLS segment names share these extensions; only a tagged
        // request (our token or SRS's hls_ctx) is known to come from a playlist.
        "ts" | "aac" | "mp3" if tagged => Kind::HlsSegment,
        "ts" | "aac" | "mp3" => Kind::Ts,
        "m4s" | "mp4" | "m4a" | "m4v" | "cmfv" | "cmfa" | "key" | "vtt" | "webvtt" => {
            Kind::HlsSegment
        }
        _ => Kind::Other,
    }
}

fn check_method(method: &str) -> Result<(), Error> {
    let token_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if method.is_empty() || method.len() > MAX_METHOD_LEN || !method.bytes().all(token_char) {
        return Err(Error::InvalidMethod);
    }
    Ok(())
}

fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), Error> {
    if len > max {
        return Err(Error::TooLong { what, len, max });
    }
    Ok(())
}

fn split_target<'a>(path: &'a str, query: Option<&'a str>) -> (&'a str, &'a str) {
    let path = path.split_once('#').map_or(path, |(p, _)| p);
    match query {
        Some(q) => (path.split_once('?').map_or(path, |(p, _)| p), q),
        None => path.split_once('?').unwrap_or((path, "")),
    }
}

/// Splits `a/b/c.flv` into app `a/b` and file `c.flv`, decoding each segment and skipping
/// empty ones (`//live//s.flv` is `/live/s.flv`, as most servers read it).
fn split_path(rest: &str) -> Result<(String, String), Error> {
    let count = rest.split('/').filter(|s| !s.is_empty()).count();
    check_len("path segments", count, MAX_SEGMENTS)?;
    let mut segments = Vec::with_capacity(count);
    for raw in rest.split('/').filter(|s| !s.is_empty()) {
        let segment = decode(raw, false)?;
        if segment == "." || segment == ".." {
            return Err(Error::InvalidPath("dot segment"));
        }
        if segment.contains('/') {
            return Err(Error::InvalidPath("encoded '/' in a segment"));
        }
        segments.push(segment);
    }
    // A trailing slash names a directory: no file, every segment is the app.
    let file = if rest.ends_with('/') {
        None
    } else {
        segments.pop()
    };
    Ok((segments.join("/"), file.unwrap_or_default()))
}

fn check_name(name: &str, slashes_allowed: bool) -> Result<(), Error> {
    if name.chars().any(char::is_control) {
        return Err(Error::InvalidPath("control character in app or stream"));
    }
    if !slashes_allowed && name.contains('/') {
        return Err(Error::InvalidPath("'/' in stream name"));
    }
    Ok(())
}

/// The host without port, IPv6 brackets removed; `None` for an empty host.
fn host_name(host: &str) -> Result<Option<String>, Error> {
    let host = host.trim();
    check_len("host", host.len(), MAX_HOST_LEN)?;
    if host.is_empty() {
        return Ok(None);
    }
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').ok_or(Error::InvalidHost)?.0
    } else {
        match host.rsplit_once(':') {
            // More than one colon without brackets is a bare IPv6 address.
            Some((name, port)) if !name.contains(':') => {
                if !port.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Error::InvalidHost);
                }
                name
            }
            _ => host,
        }
    };
    let host_char = |b: u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:".contains(&b);
    if name.is_empty() || !name.bytes().all(host_char) {
        return Err(Error::InvalidHost);
    }
    Ok(Some(name.to_owned()))
}

#[cfg(test)]
mod tests;
