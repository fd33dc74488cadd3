use super::*;

fn rewrite_one(uri: &str, options: &Options) -> Option<String> {
    let target = Target {
        param: "spbhid",
        token: "T",
        base_path: "/live/sub/s.m3u8",
        options,
    };
    let mut out = String::new();
    push_rewritten(&mut out, uri, &target).then_some(out)
}

fn default(uri: &str) -> Option<String> {
    rewrite_one(uri, &Options::default())
}

#[test]
fn relative_and_absolute_paths() {
    assert_eq!(
        default("livestream-0.ts").as_deref(),
        Some("livestream-0.ts?spbhid=T")
    );
    assert_eq!(
        default("../a/b.m3u8").as_deref(),
        Some("../a/b.m3u8?spbhid=T")
    );
    assert_eq!(
        default("/live/s.m3u8?hls_ctx=0u6c1xr3").as_deref(),
        Some("/live/s.m3u8?hls_ctx=0u6c1xr3&spbhid=T")
    );
    assert_eq!(default("a.ts?").as_deref(), Some("a.ts?spbhid=T"));
    assert_eq!(default("a.ts?x=1&").as_deref(), Some("a.ts?x=1&spbhid=T"));
    assert_eq!(default("a.ts#t=10").as_deref(), Some("a.ts?spbhid=T#t=10"));
    assert_eq!(default("?x=1").as_deref(), Some("?x=1&spbhid=T"));
}

#[test]
fn existing_token_is_replaced() {
    assert_eq!(
        default("a.ts?spbhid=OLD&x=1").as_deref(),
        Some("a.ts?x=1&spbhid=T")
    );
    assert_eq!(default("a.ts?spbhid=OLD").as_deref(), Some("a.ts?spbhid=T"));
    assert_eq!(
        default("a.ts?spbhidx=1").as_deref(),
        Some("a.ts?spbhidx=1&spbhid=T")
    );
}

/// Found by the `rewrite` fuzz target: `extract_token` skips a leading '?' of the query,
/// so a token after `??` would have been the one the proxy read back.
#[test]
fn token_after_a_doubled_question_mark_is_replaced() {
    assert_eq!(
        default("a.ts??spbhid=OLD&x=1").as_deref(),
        Some("a.ts?x=1&spbhid=T")
    );
    assert_eq!(default("a.ts????").as_deref(), Some("a.ts?spbhid=T"));
    // Found by `rewrite_options`: a lone '?' after an empty component.
    assert_eq!(default("b.t&s?&?").as_deref(), Some("b.t&s?spbhid=T"));
    assert_eq!(
        default("a.ts?spbhid=OLD&?x=1&?y").as_deref(),
        Some("a.ts?x=1&?y&spbhid=T")
    );
    let out = default("??spbhid=OLD").unwrap();
    let query = out.split_once('?').unwrap().1;
    assert_eq!(crate::extract_token(query, "spbhid"), Some("T"));
}

#[test]
fn ll_hls_params_untouched() {
    assert_eq!(
        default("live.m3u8?_HLS_msn=10&_HLS_part=2&_HLS_skip=YES").as_deref(),
        Some("live.m3u8?_HLS_msn=10&_HLS_part=2&_HLS_skip=YES&spbhid=T")
    );
}

#[test]
fn absolute_urls_become_paths() {
    assert_eq!(
        default("http://origin:8080/live/x.ts").as_deref(),
        Some("/live/x.ts?spbhid=T")
    );
    assert_eq!(
        default("HTTPS://user@origin/live/x.ts?a=1").as_deref(),
        Some("/live/x.ts?a=1&spbhid=T")
    );
    assert_eq!(
        default("//cdn.example.com/x.ts").as_deref(),
        Some("/x.ts?spbhid=T")
    );
    assert_eq!(default("http://origin").as_deref(), Some("/?spbhid=T"));
    assert_eq!(
        default("http://origin?a=1").as_deref(),
        Some("/?a=1&spbhid=T")
    );
}

#[test]
fn other_schemes_untouched() {
    for uri in [
        "skd://key-id",
        "data:text/plain;base64,AAAA",
        "urn:x",
        "ftp://h/x",
        "http:relative",
        "",
    ] {
        assert_eq!(default(uri), None, "{uri}");
    }
}

#[test]
fn absolute_url_policies() {
    let keep = Options {
        absolute_urls: AbsoluteUrls::Keep,
        ..Options::default()
    };
    assert_eq!(rewrite_one("http://origin/x.ts", &keep), None);
    assert_eq!(rewrite_one("x.ts", &keep).as_deref(), Some("x.ts?spbhid=T"));
    let hosts = AbsoluteUrls::ToPathForHosts(vec!["origin".into(), "Other.example:8080".into()]);
    let listed = Options {
        absolute_urls: hosts,
        ..Options::default()
    };
    assert_eq!(
        rewrite_one("http://ORIGIN:1985/x.ts", &listed).as_deref(),
        Some("/x.ts?spbhid=T")
    );
    assert_eq!(
        rewrite_one("http://other.example:8080/y.ts", &listed).as_deref(),
        Some("/y.ts?spbhid=T")
    );
    assert_eq!(rewrite_one("http://other.example/y.ts", &listed), None);
    assert_eq!(rewrite_one("https://keys.example.com/k", &listed), None);
    let v6 = Options {
        absolute_urls: AbsoluteUrls::ToPathForHosts(vec!["::1".into()]),
        ..Options::default()
    };
    assert_eq!(
        rewrite_one("http://[::1]:8080/z.ts", &v6).as_deref(),
        Some("/z.ts?spbhid=T")
    );
}

#[test]
fn resolving_relative_uris() {
    let resolve = Options {
        relative_uris: RelativeUris::Resolve,
        ..Options::default()
    };
    let r = |uri: &str| rewrite_one(uri, &resolve);
    assert_eq!(r("s-1.ts").as_deref(), Some("/live/sub/s-1.ts?spbhid=T"));
    assert_eq!(
        r("./a/./b.ts").as_deref(),
        Some("/live/sub/a/b.ts?spbhid=T")
    );
    assert_eq!(
        r("../x.m3u8?a=1").as_deref(),
        Some("/live/x.m3u8?a=1&spbhid=T")
    );
    assert_eq!(r("../../../../x.ts").as_deref(), Some("/x.ts?spbhid=T"));
    assert_eq!(r("a/..").as_deref(), Some("/live/sub/?spbhid=T"));
    assert_eq!(r("?x=1").as_deref(), Some("/live/sub/s.m3u8?x=1&spbhid=T"));
    assert_eq!(r("/abs.ts").as_deref(), Some("/abs.ts?spbhid=T"));
}

#[test]
fn scheme_detection() {
    assert_eq!(scheme_len("http://x"), Some(4));
    assert_eq!(scheme_len("a+b.c-d:x"), Some(7));
    assert_eq!(scheme_len("1a:x"), None);
    assert_eq!(scheme_len("a/b:c"), None);
    assert_eq!(scheme_len(":x"), None);
}
