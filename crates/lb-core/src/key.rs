//! Stream identity: one [`StreamKey`] for every protocol's way of naming a stream.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use srt_streamid::{Mode, StreamId};

use crate::Error;

/// The vhost of a request whose host is an IP address, has no dot, or is absent (SRS's name).
pub const DEFAULT_VHOST: &str = "__defaultVhost__";

/// Longest vhost, app or stream name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// The identity of a stream: vhost, app and stream, as SRS derives them.
///
/// Queries (auth tokens) and delivery extensions are not part of the key, so
/// `rtmp://h/live/s?token=1` and `http://h/live/s.flv?token=2` name the same stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamKey {
    vhost: String,
    app: String,
    stream: String,
}

impl StreamKey {
    /// Builds a key from its parts. `host` is a URL host (with or without port) or an
    /// explicit vhost; an IP address, a name without a dot, or `None` means
    /// [`DEFAULT_VHOST`].
    pub fn new(host: Option<&str>, app: &str, stream: &str) -> Result<Self, Error> {
        let app = app.trim_matches('/');
        check_name("app", app, true)?;
        check_name("stream", stream, false)?;
        let vhost = vhost_of(host);
        check_name("vhost", &vhost, false)?;
        Ok(StreamKey {
            vhost,
            app: app.to_owned(),
            stream: stream.to_owned(),
        })
    }

    /// From RTMP's `connect` tcUrl and the `publish`/`play` stream name (each may carry a
    /// query; a `vhost` or `domain` parameter in either overrides the tcUrl's host).
    pub fn from_rtmp(tc_url: &str, stream_name: &str) -> Result<Self, Error> {
        let without_scheme = tc_url.split_once("://").map_or(tc_url, |(_, rest)| rest);
        let (location, tc_query) = split_query(without_scheme);
        let (host, app) = location.split_once('/').unwrap_or((location, ""));
        let (stream, stream_query) = split_query(stream_name);
        let vhost = query_vhost(stream_query).or_else(|| query_vhost(tc_query));
        // Some clients put the whole path in the stream name and leave the app empty.
        let (app, stream) = match (app.trim_matches('/'), stream.rsplit_once('/')) {
            ("", Some((app, stream))) => (app, stream),
            (app, _) => (app, stream),
        };
        Self::new(Some(vhost.as_deref().unwrap_or(host)), app, stream)
    }

    /// What an RTMP client connecting to `host:port` sends for this stream: the `connect`
    /// app and tcUrl (with `?vhost=` for a vhost other than the default, as SRS reads it;
    /// the stream name is [`StreamKey::stream`]). [`StreamKey::from_rtmp`] reads them back
    /// as this key.
    pub fn rtmp_names(&self, host: &str, port: u16) -> (String, String) {
        let mut tc_url = format!("rtmp://{host}:{port}/{}", self.app);
        if self.vhost != DEFAULT_VHOST {
            tc_url.push_str("?vhost=");
            tc_url.push_str(&self.vhost);
        }
        (self.app.clone(), tc_url)
    }

    /// From an HTTP request: `Host` header, path (`/live/livestream.flv`) and query, by
    /// [`flv_http`]'s rules: the path's last segment is the stream without its media
    /// extension; the segments before it are the app; `app`, `stream` and `vhost` query
    /// parameters override.
    pub fn from_http(host: Option<&str>, path: &str, query: Option<&str>) -> Result<Self, Error> {
        let request = flv_http::classify("GET", path, query, host)
            .map_err(|e| Error::InvalidStream(e.to_string()))?;
        Self::new(request.vhost.as_deref(), &request.app, &request.stream)
    }

    /// From a WHIP/WHEP request (`/rtc/v1/whip/?app=live&stream=livestream`): app and
    /// stream come from the query, the vhost from a `vhost` parameter or the `Host` header.
    pub fn from_rtc_query(host: Option<&str>, query: &str) -> Result<Self, Error> {
        let app = query_param(query, "app")
            .ok_or_else(|| Error::InvalidStream("missing `app` query parameter".into()))?;
        let stream = query_param(query, "stream")
            .ok_or_else(|| Error::InvalidStream("missing `stream` query parameter".into()))?;
        let vhost = query_vhost(query);
        Self::new(vhost.as_deref().or(host), &app, &stream)
    }

    /// From an SRT streamid, `#!::h=host,r=app/stream,m=publish` or plain `app/stream`,
    /// with the caller's mode.
    pub fn from_srt_streamid(streamid: &str) -> Result<(Self, Mode), Error> {
        let sid = StreamId::parse(streamid).map_err(|e| Error::InvalidStream(e.to_string()))?;
        let resource = sid.resource.as_deref().ok_or_else(|| {
            Error::InvalidStream("streamid names no resource (r=app/stream)".into())
        })?;
        let (path, query) = split_query(resource);
        let (app, stream) = path.rsplit_once('/').ok_or_else(|| {
            Error::InvalidStream(format!("resource {resource:?} is not app/stream"))
        })?;
        let vhost = query_vhost(query);
        let key = Self::new(vhost.as_deref().or(sid.host.as_deref()), app, stream)?;
        Ok((key, sid.mode))
    }

    /// The vhost (`__defaultVhost__` unless the request named a domain).
    pub fn vhost(&self) -> &str {
        &self.vhost
    }

    /// The app (`live`; may contain `/`).
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The stream (`livestream`).
    pub fn stream(&self) -> &str {
        &self.stream
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.vhost, self.app, self.stream)
    }
}

fn vhost_of(host: Option<&str>) -> String {
    let vhost = host_name(host);
    // A key's vhost must name itself when the key is rebuilt from its parts (the Redis
    // balancer lists placements so): a host that reduces to a name that would reduce
    // again (`[a.b:]`, `[[x.y`, found by fuzzing) is no host name.
    if vhost != DEFAULT_VHOST && host_name(Some(&vhost)) != vhost {
        return DEFAULT_VHOST.to_owned();
    }
    vhost
}

fn host_name(host: Option<&str>) -> String {
    let Some(host) = host.map(str::trim).filter(|h| !h.is_empty()) else {
        return DEFAULT_VHOST.to_owned();
    };
    if host == DEFAULT_VHOST {
        return DEFAULT_VHOST.to_owned();
    }
    let name = strip_port(host);
    let is_ip = name.parse::<IpAddr>().is_ok();
    if is_ip || !name.contains('.') {
        DEFAULT_VHOST.to_owned()
    } else {
        name.to_ascii_lowercase()
    }
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(ip, _)| ip);
    }
    match host.rsplit_once(':') {
        // More than one colon without brackets is a bare IPv6 address.
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

fn check_name(what: &str, value: &str, may_nest: bool) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::InvalidStream(format!("empty {what}")));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(Error::InvalidStream(format!(
            "{what} is {} bytes, more than {MAX_NAME_LEN}",
            value.len()
        )));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(Error::InvalidStream(format!(
            "{what} {value:?} contains control characters"
        )));
    }
    if !may_nest && value.contains('/') {
        return Err(Error::InvalidStream(format!(
            "{what} {value:?} contains '/'"
        )));
    }
    if value
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(Error::InvalidStream(format!(
            "{what} {value:?} has an empty, '.' or '..' segment"
        )));
    }
    Ok(())
}

fn split_query(s: &str) -> (&str, &str) {
    s.split_once('?').unwrap_or((s, ""))
}

fn query_vhost(query: &str) -> Option<String> {
    query_param(query, "vhost").or_else(|| query_param(query, "domain"))
}

/// The first non-empty value of `name` in a query string, percent-decoded; a value that
/// does not decode is ignored like an absent one.
fn query_param(query: &str, name: &str) -> Option<String> {
    flv_http::text::query_param(query, name).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        s.to_owned()
    }

    // The stream-key table of PROTOCOLS.md, row by row.
    #[test]
    fn protocols_md_table() {
        assert_eq!(
            StreamKey::from_rtmp("rtmp://127.0.0.1/live", "livestream")
                .unwrap()
                .to_string(),
            key("__defaultVhost__/live/livestream")
        );
        assert_eq!(
            StreamKey::from_rtmp("rtmp://example.com/live?token=1", "livestream?k=2")
                .unwrap()
                .to_string(),
            key("example.com/live/livestream")
        );
        assert_eq!(
            StreamKey::from_http(
                Some("127.0.0.1:8080"),
                "/live/livestream.flv",
                Some("token=1")
            )
            .unwrap()
            .to_string(),
            key("__defaultVhost__/live/livestream")
        );
        assert_eq!(
            StreamKey::from_http(Some("a.example.com"), "/live/livestream.m3u8", None)
                .unwrap()
                .to_string(),
            key("a.example.com/live/livestream")
        );
        for odd in ["[[x.y", "[a.b:]:1", " [a.b :80"] {
            let k = StreamKey::new(Some(odd), "live", "s").unwrap();
            assert_eq!(
                StreamKey::new(Some(k.vhost()), "live", "s").unwrap(),
                k,
                "{odd:?}"
            );
        }
        assert_eq!(
            StreamKey::from_rtc_query(None, "app=live&stream=livestream")
                .unwrap()
                .to_string(),
            key("__defaultVhost__/live/livestream")
        );
        let (k, mode) =
            StreamKey::from_srt_streamid("#!::h=a.example.com,r=live/livestream,m=publish")
                .unwrap();
        assert_eq!(
            (k.to_string(), mode),
            (key("a.example.com/live/livestream"), Mode::Publish)
        );
        let (k, mode) = StreamKey::from_srt_streamid("live/livestream").unwrap();
        assert_eq!(
            (k.to_string(), mode),
            (key("__defaultVhost__/live/livestream"), Mode::Request)
        );
    }

    #[test]
    fn rtmp_names_read_back_as_the_same_key() {
        for key in [
            StreamKey::new(Some("a.example.com"), "live", "cam1").unwrap(),
            StreamKey::new(None, "live", "cam1").unwrap(),
        ] {
            let (app, tc_url) = key.rtmp_names("10.0.0.5", 1935);
            assert_eq!(app, "live");
            assert!(tc_url.starts_with("rtmp://10.0.0.5:1935/live"), "{tc_url}");
            assert_eq!(StreamKey::from_rtmp(&tc_url, key.stream()).unwrap(), key);
        }
    }

    #[test]
    fn every_protocol_names_the_same_stream() {
        let expected = StreamKey::new(Some("a.example.com"), "live", "cam1").unwrap();
        let forms = [
            StreamKey::from_rtmp("rtmp://a.example.com:1935/live", "cam1?token=x").unwrap(),
            StreamKey::from_rtmp("rtmps://10.0.0.1/live?vhost=a.example.com", "cam1").unwrap(),
            StreamKey::from_http(
                Some("A.Example.com:8080"),
                "/live/cam1.flv",
                Some("token=y"),
            )
            .unwrap(),
            StreamKey::from_http(Some("a.example.com"), "/live/cam1.ts", None).unwrap(),
            StreamKey::from_http(
                Some("a.example.com"),
                "/live/cam1.m3u8",
                Some("hls_ctx=abc"),
            )
            .unwrap(),
            StreamKey::from_http(Some("a.example.com"), "/live/cam1.m4s", None).unwrap(),
            StreamKey::from_http(
                Some("127.0.0.1"),
                "/whatever",
                Some("app=live&stream=cam1&vhost=a.example.com"),
            )
            .unwrap(),
            StreamKey::from_rtc_query(Some("a.example.com"), "app=live&stream=cam1&token=z")
                .unwrap(),
            StreamKey::from_srt_streamid("#!::r=live/cam1?vhost=a.example.com,m=request")
                .unwrap()
                .0,
        ];
        for form in forms {
            assert_eq!(form, expected);
        }
    }

    #[test]
    fn vhost_rules() {
        assert_eq!(vhost_of(Some("localhost:8080")), DEFAULT_VHOST);
        assert_eq!(vhost_of(Some("[::1]:8080")), DEFAULT_VHOST);
        assert_eq!(vhost_of(Some("::1")), DEFAULT_VHOST);
        assert_eq!(vhost_of(Some("192.168.1.2")), DEFAULT_VHOST);
        assert_eq!(vhost_of(Some("Live.Example.COM")), "live.example.com");
        assert_eq!(vhost_of(None), DEFAULT_VHOST);
    }

    #[test]
    fn nested_apps_and_encoded_paths() {
        let k = StreamKey::from_http(None, "/live/sub/cam%201.flv", None).unwrap();
        assert_eq!((k.app(), k.stream()), ("live/sub", "cam 1"));
        let k = StreamKey::from_rtmp("rtmp://h", "live/cam").unwrap();
        assert_eq!((k.app(), k.stream()), ("live", "cam"));
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(StreamKey::from_http(None, "/livestream.flv", None).is_err());
        assert!(
            StreamKey::from_http(None, "/live/.flv", None).is_err(),
            "an empty stream name"
        );
        assert!(StreamKey::from_http(None, "/../x/a.flv", None).is_err());
        assert!(StreamKey::from_rtmp("rtmp://h/live", "").is_err());
        assert!(StreamKey::from_rtmp("rtmp://h/live", "a\u{1}b").is_err());
        assert!(StreamKey::from_rtc_query(None, "stream=x").is_err());
        assert!(StreamKey::from_srt_streamid("#!::m=publish").is_err());
        assert!(StreamKey::from_srt_streamid("nostream").is_err());
        assert!(StreamKey::new(None, "live", &"x".repeat(300)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn tokens_never_change_the_key(token in "[a-zA-Z0-9=%&._-]{0,40}") {
            let plain = StreamKey::from_rtmp("rtmp://example.com/live", "s").unwrap();
            let with = StreamKey::from_rtmp(&format!("rtmp://example.com/live?t={token}"), &format!("s?t={token}")).unwrap();
            if !token.contains("vhost") && !token.contains("domain") { proptest::prop_assert_eq!(plain, with); }
        }

        #[test]
        fn constructors_never_panic(host in ".{0,20}", path in ".{0,60}", query in ".{0,60}") {
            let _ = StreamKey::from_http(Some(&host), &path, Some(&query));
            let _ = StreamKey::from_rtmp(&path, &query);
            let _ = StreamKey::from_rtc_query(Some(&host), &query);
            let _ = StreamKey::from_srt_streamid(&path);
        }
    }
}
