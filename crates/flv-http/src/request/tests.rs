use proptest::prelude::*;

use super::*;

fn get(path: &str, query: Option<&str>, host: Option<&str>) -> MediaRequest {
    match classify("GET", path, query, host) {
        Ok(r) => r,
        Err(e) => panic!("{path}: {e}"),
    }
}

#[test]
fn flv_stream_with_port_and_query() {
    let r = get(
        "/live/livestream.flv",
        Some("token=1"),
        Some("127.0.0.1:8080"),
    );
    assert_eq!(r.kind, Kind::Flv);
    assert_eq!(r.vhost.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        (r.app.as_str(), r.stream.as_str(), r.extension.as_str()),
        ("live", "livestream", "flv")
    );
    assert_eq!(r.token, None);
}

#[test]
fn nested_app_and_double_slashes() {
    let r = get("//live/sub//stream.flv", None, None);
    assert_eq!((r.app.as_str(), r.stream.as_str()), ("live/sub", "stream"));
    assert_eq!(r.vhost, None);
}

#[test]
fn vhost_query_overrides_host() {
    let r = get(
        "/live/s.m3u8",
        Some("vhost=a.example.com&x=1"),
        Some("b.example.com:80"),
    );
    assert_eq!(r.kind, Kind::HlsPlaylist);
    assert_eq!(r.vhost.as_deref(), Some("a.example.com"));
    let r = get(
        "/live/s.m3u8",
        Some("domain=c.example.com"),
        Some("b.example.com"),
    );
    assert_eq!(r.vhost.as_deref(), Some("c.example.com"));
}

#[test]
fn ipv6_host() {
    assert_eq!(
        get("/a/b.flv", None, Some("[::1]:8080")).vhost.as_deref(),
        Some("::1")
    );
    assert_eq!(
        get("/a/b.flv", None, Some("::1")).vhost.as_deref(),
        Some("::1")
    );
}

#[test]
fn bad_hosts() {
    for host in ["a b", "a/b", "[::1", "h:port", ":80"] {
        assert_eq!(
            classify("GET", "/a/b.flv", None, Some(host)),
            Err(Error::InvalidHost),
            "{host}"
        );
    }
    assert_eq!(get("/a/b.flv", None, Some(" ")).vhost, None);
}

#[test]
fn ts_disambiguation() {
    assert_eq!(get("/live/livestream.ts", None, None).kind, Kind::Ts);
    let seg = get("/live/livestream-12.ts", Some("spbhid=abc"), None);
    assert_eq!(seg.kind, Kind::HlsSegment);
    assert_eq!(seg.token.as_deref(), Some("abc"));
    assert_eq!(seg.segment_stream_guess(), Some("livestream"));
    assert_eq!(
        get("/live/livestream-12.ts", Some("hls_ctx=x1"), None).kind,
        Kind::HlsSegment
    );
    // An empty token is no token.
    assert_eq!(
        get("/live/livestream.ts", Some("spbhid="), None).kind,
        Kind::Ts
    );
    let custom = Classifier::new().with_token_param("tok");
    let r = custom.classify("GET", "/live/s-1.ts", Some("tok=9"), None);
    assert_eq!(r.map(|r| r.kind), Ok(Kind::HlsSegment));
    assert_eq!(get("/live/s.aac", None, None).kind, Kind::Ts);
    assert_eq!(
        get("/live/s-3.aac", Some("spbhid=t"), None).kind,
        Kind::HlsSegment
    );
}

#[test]
fn hls_files() {
    for (path, kind) in [
        ("/live/s-1.m4s", Kind::HlsSegment),
        ("/live/init.mp4", Kind::HlsSegment),
        ("/live/s.key", Kind::HlsSegment),
        ("/live/S.M3U8", Kind::HlsPlaylist),
        ("/live/s.flv", Kind::Flv),
        ("/live/s.html", Kind::Other),
        ("/live/", Kind::Other),
        ("/", Kind::Other),
    ] {
        assert_eq!(get(path, None, None).kind, kind, "{path}");
    }
    assert_eq!(get("/live/S.M3U8", None, None).extension, "m3u8");
}

#[test]
fn query_identity_for_whip() {
    let r = classify(
        "POST",
        "/rtc/v1/whip/",
        Some("app=live&stream=livestream"),
        Some("h"),
    );
    let r = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.kind, Kind::Other);
    assert_eq!((r.app.as_str(), r.stream.as_str()), ("live", "livestream"));
    let r = get("/live/x.flv", Some("stream=my+stream&app=a%2Fb"), None);
    assert_eq!((r.app.as_str(), r.stream.as_str()), ("a/b", "my stream"));
}

#[test]
fn path_carrying_query_and_fragment() {
    let r = get("/live/s.flv?vhost=v.example.com#frag", None, None);
    assert_eq!(
        (r.stream.as_str(), r.vhost.as_deref()),
        ("s", Some("v.example.com"))
    );
    let r = get("/live/s.flv?vhost=ignored", Some(""), None);
    assert_eq!(r.vhost, None);
}

#[test]
fn percent_decoded_path() {
    let r = get("/live/my%20stream.flv", None, None);
    assert_eq!(r.stream, "my stream");
    assert_eq!(get("/live/a+b.flv", None, None).stream, "a+b");
}

#[test]
fn rejects() {
    let cases: [(&str, &str, Option<&str>, Error); 7] = [
        ("G T", "/a/b.flv", None, Error::InvalidMethod),
        ("", "/a/b.flv", None, Error::InvalidMethod),
        (
            "GET",
            "a/b.flv",
            None,
            Error::InvalidPath("does not start with '/'"),
        ),
        (
            "GET",
            "/a/../b.flv",
            None,
            Error::InvalidPath("dot segment"),
        ),
        (
            "GET",
            "/a/%2e%2E/b.flv",
            None,
            Error::InvalidPath("dot segment"),
        ),
        (
            "GET",
            "/live/.flv",
            None,
            Error::InvalidPath("empty stream name"),
        ),
        ("GET", "/a/b%zz.flv", None, Error::InvalidPercentEncoding),
    ];
    for (method, path, query, err) in cases {
        assert_eq!(
            classify(method, path, query, None),
            Err(err),
            "{method} {path}"
        );
    }
    assert_eq!(
        classify("GET", "/a/x%2Fy.flv", None, None),
        Err(Error::InvalidPath("encoded '/' in a segment"))
    );
    assert_eq!(
        classify("GET", "/a/b.flv", Some("stream=a/b"), None),
        Err(Error::InvalidPath("'/' in stream name"))
    );
    assert_eq!(
        classify("GET", "/a/b%0a.flv", None, None),
        Err(Error::InvalidPath("control character in app or stream"))
    );
}

#[test]
fn limits() {
    let long = format!("/{}.flv", "a".repeat(MAX_PATH_LEN));
    assert!(matches!(
        classify("GET", &long, None, None),
        Err(Error::TooLong { what: "path", .. })
    ));
    let deep = "/a".repeat(MAX_SEGMENTS + 1);
    assert!(matches!(
        classify("GET", &deep, None, None),
        Err(Error::TooLong {
            what: "path segments",
            ..
        })
    ));
    let q = "x".repeat(MAX_QUERY_LEN + 1);
    assert!(matches!(
        classify("GET", "/a/b.flv", Some(&q), None),
        Err(Error::TooLong { .. })
    ));
    let h = "h".repeat(MAX_HOST_LEN + 1);
    assert!(matches!(
        classify("GET", "/a/b.flv", None, Some(&h)),
        Err(Error::TooLong { .. })
    ));
}

#[test]
fn segment_guess() {
    let guess = |s: &str| {
        let r = get(&format!("/live/{s}.ts"), None, None);
        r.segment_stream_guess().map(str::to_owned)
    };
    assert_eq!(guess("livestream-0"), Some("livestream".into()));
    assert_eq!(guess("a_b_7"), Some("a_b".into()));
    assert_eq!(guess("livestream"), None);
    assert_eq!(guess("-7"), None);
    assert_eq!(guess("cam-x"), None);
}

proptest! {
    #[test]
    fn never_panics(method in ".{0,8}", path in ".{0,64}", query in proptest::option::of(".{0,64}"), host in proptest::option::of(".{0,32}")) {
        if let Ok(r) = classify(&method, &path, query.as_deref(), host.as_deref()) {
            prop_assert!(!r.stream.contains('/'));
            prop_assert!(!r.app.chars().any(char::is_control));
        }
    }

    #[test]
    fn path_identity_round_trips(app in "[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}", stream in "[a-zA-Z0-9_-]{1,12}", ext in "(flv|ts|m3u8|m4s)") {
        let r = classify("GET", &format!("/{app}/{stream}.{ext}"), Some("token=x&_HLS_msn=3"), Some("Example.com:1935"));
        let r = r.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(r.app, app);
        prop_assert_eq!(r.stream, stream);
        prop_assert_eq!(r.extension, ext);
        prop_assert_eq!(r.vhost.as_deref(), Some("Example.com"));
    }
}
