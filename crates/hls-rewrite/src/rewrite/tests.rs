use proptest::prelude::*;

use super::*;
use crate::fuzzing::{check_rewritten, rewrite_playlist};
use crate::{extract_token, parse};

fn rw(input: &str) -> String {
    rewrite(input, "spbhid", "T0k", "/live/livestream.m3u8").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn srs_hls_ctx_master() {
    let input = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1\n/live/livestream.m3u8?hls_ctx=0u6c1xr3\n";
    assert_eq!(
        rw(input),
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1\n/live/livestream.m3u8?hls_ctx=0u6c1xr3&spbhid=T0k\n"
    );
}

#[test]
fn srs_media_playlist() {
    let input = concat!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-TARGETDURATION:10\n",
        "#EXT-X-DISCONTINUITY\n",
        "#EXTINF:10.000, no desc\nlivestream-5.ts?hls_ctx=0u6c1xr3\n",
        "#EXTINF:9.960, no desc\nlivestream-6.ts?hls_ctx=0u6c1xr3\n",
    );
    let expected = concat!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-TARGETDURATION:10\n",
        "#EXT-X-DISCONTINUITY\n",
        "#EXTINF:10.000, no desc\nlivestream-5.ts?hls_ctx=0u6c1xr3&spbhid=T0k\n",
        "#EXTINF:9.960, no desc\nlivestream-6.ts?hls_ctx=0u6c1xr3&spbhid=T0k\n",
    );
    assert_eq!(rw(input), expected);
}

#[test]
fn nginx_rtmp_playlist_with_crlf() {
    let input = "#EXTM3U\r\n#EXT-X-VERSION:3\r\n#EXT-X-MEDIA-SEQUENCE:12\r\n#EXT-X-TARGETDURATION:5\r\n#EXTINF:5.005,\r\nstream-12.ts\r\n#EXTINF:5.005,\r\nstream-13.ts\r\n";
    let expected = "#EXTM3U\r\n#EXT-X-VERSION:3\r\n#EXT-X-MEDIA-SEQUENCE:12\r\n#EXT-X-TARGETDURATION:5\r\n#EXTINF:5.005,\r\nstream-12.ts?spbhid=T0k\r\n#EXTINF:5.005,\r\nstream-13.ts?spbhid=T0k\r\n";
    assert_eq!(rw(input), expected);
}

#[test]
fn fmp4_with_map_and_absolute_urls() {
    let input = concat!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n",
        "#EXT-X-MAP:URI=\"http://origin:8080/live/init.mp4\"\n",
        "#EXTINF:4.000000,\nhttp://origin:8080/live/livestream-0.m4s\n",
        "#EXTINF:4.000000,\n//origin:8080/live/livestream-1.m4s\n",
    );
    let expected = concat!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n",
        "#EXT-X-MAP:URI=\"/live/init.mp4?spbhid=T0k\"\n",
        "#EXTINF:4.000000,\n/live/livestream-0.m4s?spbhid=T0k\n",
        "#EXTINF:4.000000,\n/live/livestream-1.m4s?spbhid=T0k\n",
    );
    assert_eq!(rw(input), expected);
}

#[test]
fn ll_hls_playlist() {
    // After the LL-HLS example of RFC 8216bis, with a delta update (EXT-X-SKIP).
    let input = concat!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-VERSION:9\n",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=12.0\n",
        "#EXT-X-PART-INF:PART-TARGET=0.33334\n#EXT-X-MEDIA-SEQUENCE:266\n",
        "#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n",
        "#EXT-X-MAP:URI=\"init.mp4\"\n",
        "#EXTINF:4.00008,\nfileSequence269.mp4\n",
        "#EXT-X-PART:DURATION=0.33334,URI=\"filePart270.0.mp4\",INDEPENDENT=YES\n",
        "#EXT-X-PART:DURATION=0.33334,URI=\"filePart270.1.mp4\"\n",
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"filePart270.2.mp4\"\n",
        "#EXT-X-RENDITION-REPORT:URI=\"../1M/waitForMSN.php\",LAST-MSN=270,LAST-PART=1\n",
        "#EXT-X-RENDITION-REPORT:URI=\"../4M/waitForMSN.php?_HLS_msn=270\",LAST-MSN=270,LAST-PART=1\n",
    );
    let out = rw(input);
    for needle in [
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=12.0\n",
        "#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n",
        "#EXT-X-MAP:URI=\"init.mp4?spbhid=T0k\"\n",
        "\nfileSequence269.mp4?spbhid=T0k\n",
        "URI=\"filePart270.0.mp4?spbhid=T0k\",INDEPENDENT=YES\n",
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"filePart270.2.mp4?spbhid=T0k\"\n",
        "URI=\"../1M/waitForMSN.php?spbhid=T0k\",LAST-MSN=270",
        "URI=\"../4M/waitForMSN.php?_HLS_msn=270&spbhid=T0k\",LAST-MSN=270",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
    assert_eq!(parse(&out).map(|p| p.uris().count()), Ok(7));
    assert_eq!(check_rewritten(input, &out, "spbhid", "T0k"), Ok(()));
}

#[test]
fn keys() {
    let input = concat!(
        "#EXTM3U\n",
        "#EXT-X-KEY:METHOD=AES-128,URI=\"https://origin/keys/k1.key?auth=abc\",IV=0x00000000000000000000000000000001\n",
        "#EXTINF:6,\nseg1.ts\n",
        "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://fairplay-id\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n",
        "#EXT-X-KEY:METHOD=AES-128,URI=\"data:text/plain;base64,AAECAwQFBgcICQoLDA0ODw==\"\n",
        "#EXT-X-KEY:METHOD=NONE\n",
        "#EXTINF:6,\nseg2.ts\n",
    );
    let expected = concat!(
        "#EXTM3U\n",
        "#EXT-X-KEY:METHOD=AES-128,URI=\"/keys/k1.key?auth=abc&spbhid=T0k\",IV=0x00000000000000000000000000000001\n",
        "#EXTINF:6,\nseg1.ts?spbhid=T0k\n",
        "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://fairplay-id\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n",
        "#EXT-X-KEY:METHOD=AES-128,URI=\"data:text/plain;base64,AAECAwQFBgcICQoLDA0ODw==\"\n",
        "#EXT-X-KEY:METHOD=NONE\n",
        "#EXTINF:6,\nseg2.ts?spbhid=T0k\n",
    );
    assert_eq!(rw(input), expected);
}

#[test]
fn master_with_renditions_and_iframes() {
    let input = concat!(
        "#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n",
        "#EXT-X-SESSION-DATA:DATA-ID=\"com.example.title\",URI=\"title.json\"\n",
        "#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"key.bin\"\n",
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES,URI=\"audio/en/prog.m3u8\"\n",
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",LANGUAGE=\"fr\",NAME=\"Fran\u{e7}ais\",URI=\"audio/fr/prog.m3u8\"\n",
        "#EXT-X-STREAM-INF:BANDWIDTH=2177116,CODECS=\"avc1.640020,mp4a.40.2\",RESOLUTION=960x540,AUDIO=\"aac\"\n",
        "v540/prog.m3u8\n",
        "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=187441,CODECS=\"avc1.640020\",RESOLUTION=960x540,URI=\"v540/iframe.m3u8\"\n",
    );
    let out = rw(input);
    let p = parse(&out).unwrap_or_else(|e| panic!("{e}"));
    let uris: Vec<_> = p.uris().map(|u| u.value).collect();
    assert_eq!(
        uris,
        [
            "title.json?spbhid=T0k",
            "key.bin?spbhid=T0k",
            "audio/en/prog.m3u8?spbhid=T0k",
            "audio/fr/prog.m3u8?spbhid=T0k",
            "v540/prog.m3u8?spbhid=T0k",
            "v540/iframe.m3u8?spbhid=T0k",
        ]
    );
    assert!(out.contains("CODECS=\"avc1.640020,mp4a.40.2\",RESOLUTION=960x540,AUDIO=\"aac\"\n"));
    assert!(out.contains("NAME=\"Fran\u{e7}ais\""));
    assert_eq!(check_rewritten(input, &out, "spbhid", "T0k"), Ok(()));
}

#[test]
fn bom_kept() {
    assert_eq!(
        rw("\u{feff}#EXTM3U\nseg.ts"),
        "\u{feff}#EXTM3U\nseg.ts?spbhid=T0k"
    );
}

#[test]
fn bad_arguments() {
    let p = "#EXTM3U\na.ts\n";
    assert_eq!(rewrite(p, "spbhid", "", "/"), Err(Error::InvalidToken));
    assert_eq!(rewrite(p, "spbhid", "a\"b", "/"), Err(Error::InvalidToken));
    assert_eq!(rewrite(p, "spbhid", "a&b=c", "/"), Err(Error::InvalidToken));
    assert_eq!(
        rewrite(p, "spbhid", &"t".repeat(MAX_TOKEN_LEN + 1), "/"),
        Err(Error::InvalidToken)
    );
    assert_eq!(rewrite(p, "", "t", "/"), Err(Error::InvalidParam));
    assert_eq!(rewrite(p, "a=b", "t", "/"), Err(Error::InvalidParam));
    assert_eq!(
        rewrite_bytes(b"#EXTM3U\n\xff\n", "spbhid", "t", "/"),
        Err(Error::NotUtf8)
    );
    let resolve = Options {
        relative_uris: RelativeUris::Resolve,
        ..Options::default()
    };
    assert_eq!(
        rewrite_with(p, "spbhid", "t", "live/x.m3u8", &resolve),
        Err(Error::InvalidBasePath)
    );
    assert_eq!(
        rewrite_with(p, "spbhid", "t", "/live/x.m3u8?q=1", &resolve).as_deref(),
        Ok("#EXTM3U\n/live/a.ts?spbhid=t\n")
    );
    // The base path is only needed to resolve.
    assert!(rewrite(p, "spbhid", "t", "").is_ok());
}

#[test]
fn output_growth_is_bounded() {
    let resolve = Options {
        relative_uris: RelativeUris::Resolve,
        max_size: 64,
        ..Options::default()
    };
    let base = format!("/{}/x.m3u8", "d".repeat(1000));
    let r = rewrite_with("a\nb\nc\n", "spbhid", "t", &base, &resolve);
    assert!(matches!(r, Err(Error::TooLarge { max: 256, .. })), "{r:?}");
}

fn uri_strategy() -> impl Strategy<Value = String> {
    let path = "[a-zA-Z0-9_./-]{1,20}";
    let query =
        proptest::option::of("[a-z_]{1,6}=[a-zA-Z0-9]{0,6}(&[a-zA-Z_]{1,6}=[0-9]{0,3}){0,2}");
    let prefix = prop_oneof![
        Just(String::new()),
        Just("/".to_string()),
        Just("http://origin:8080/".to_string()),
        Just("https://o.example/".to_string()),
        Just("//o/".to_string()),
    ];
    (prefix, path, query).prop_map(|(prefix, path, query)| match query {
        Some(q) => format!("{prefix}{path}?{q}"),
        None => format!("{prefix}{path}"),
    })
}

fn line_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        uri_strategy(),
        uri_strategy().prop_map(|u| format!("#EXT-X-MAP:URI=\"{u}\",BYTERANGE=\"1@0\"")),
        uri_strategy()
            .prop_map(|u| format!("#EXT-X-PART:DURATION=0.5,URI=\"{u}\",INDEPENDENT=YES")),
        uri_strategy().prop_map(|u| format!("#EXT-X-MEDIA:TYPE=AUDIO,NAME=\"a,b\",URI=\"{u}\"")),
        uri_strategy().prop_map(|u| format!("#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"a,b\"\n{u}")),
        "#EXTINF:[0-9]{1,2}\\.[0-9]{3},[ a-z]{0,8}",
        "#EXT-X-[A-Z-]{1,12}(:[A-Z0-9=,\"-]{0,20})?",
        "#[ a-zA-Z0-9]{0,20}",
        Just(String::new()),
    ]
}

proptest! {
    #[test]
    fn arbitrary_text_keeps_invariants(input in ".{0,300}") {
        prop_assert_eq!(rewrite_playlist(input.as_bytes()), Ok(()));
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        prop_assert_eq!(rewrite_playlist(&input), Ok(()));
    }

    #[test]
    fn every_uri_carries_the_token(lines in proptest::collection::vec(line_strategy(), 0..30), crlf in any::<bool>()) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut input = format!("#EXTM3U{eol}");
        for l in &lines {
            input.push_str(&l.replace('\n', eol));
            input.push_str(eol);
        }
        let out = rewrite(&input, "spbhid", "tok", "/live/s.m3u8").map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(out.starts_with("#EXTM3U"));
        let before = parse(&input).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let after = parse(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(before.uris().count(), after.uris().count());
        for uri in after.uris() {
            let query = uri.value.split_once('?').map_or("", |(_, q)| q);
            prop_assert_eq!(extract_token(query, "spbhid"), Some("tok"), "{}", uri.value);
            prop_assert!(!uri.value.contains("://"), "{}", uri.value);
        }
        for (a, b) in before.lines.iter().zip(&after.lines) {
            if a.uri.is_none() {
                prop_assert_eq!(a, b);
            }
        }
    }
}
