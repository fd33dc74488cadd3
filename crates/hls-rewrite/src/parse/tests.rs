use super::*;

fn parsed(input: &str) -> Playlist<'_> {
    parse(input).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn media_playlist_lines_and_uris() {
    let input = "#EXTM3U\r\n#EXT-X-VERSION:3\r\n# a comment\r\n\r\n#EXTINF:10.000, no desc\r\n  livestream-0.ts?hls_ctx=x  \r\n#EXT-X-ENDLIST";
    let p = parsed(input);
    assert!(p.is_extm3u());
    assert!(!p.bom);
    assert_eq!(p.kind(), PlaylistKind::Media);
    assert_eq!(p.lines.len(), 7);
    assert_eq!(
        p.lines[1].kind,
        LineKind::Tag {
            name: "EXT-X-VERSION",
            value: Some("3")
        }
    );
    assert_eq!(p.lines[2].kind, LineKind::Comment);
    assert_eq!(p.lines[3].kind, LineKind::Blank);
    assert_eq!(p.lines[0].ending, "\r\n");
    assert_eq!(p.lines[6].ending, "");
    assert_eq!(
        p.lines[6].kind,
        LineKind::Tag {
            name: "EXT-X-ENDLIST",
            value: None
        }
    );
    let uris: Vec<_> = p.uris().collect();
    assert_eq!(uris.len(), 1);
    assert_eq!(uris[0].value, "livestream-0.ts?hls_ctx=x");
    assert_eq!(uris[0].context, UriContext::Segment);
    assert_eq!(
        p.lines[5].text.get(uris[0].range.clone()),
        Some(uris[0].value)
    );
}

#[test]
fn master_playlist_contexts() {
    let input = concat!(
        "#EXTM3U\n",
        "#EXT-X-SESSION-DATA:DATA-ID=\"com.example\",URI=\"data.json\"\n",
        "#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"k.key\"\n",
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"en\",URI=\"audio/en.m3u8\"\n",
        "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"cc1\",INSTREAM-ID=\"CC1\"\n",
        "#EXT-X-STREAM-INF:BANDWIDTH=1280000,AUDIO=\"aac\"\n",
        "video/720.m3u8\n",
        "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,URI=\"video/720-iframe.m3u8\"\n",
    );
    let p = parsed(input);
    assert_eq!(p.kind(), PlaylistKind::Master);
    let got: Vec<_> = p.uris().map(|u| (u.context, u.value)).collect();
    assert_eq!(
        got,
        [
            (UriContext::SessionData, "data.json"),
            (UriContext::SessionKey, "k.key"),
            (UriContext::Media, "audio/en.m3u8"),
            (UriContext::Variant, "video/720.m3u8"),
            (UriContext::IFrameStream, "video/720-iframe.m3u8"),
        ]
    );
}

#[test]
fn ll_hls_contexts() {
    let input = concat!(
        "#EXTM3U\n",
        "#EXT-X-MAP:URI=\"init.mp4\"\n",
        "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://key\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n",
        "#EXT-X-PART:DURATION=0.33334,URI=\"seg10.1.m4s\",INDEPENDENT=YES\n",
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg10.2.m4s\"\n",
        "#EXT-X-RENDITION-REPORT:URI=\"../1M/live.m3u8\",LAST-MSN=10,LAST-PART=1\n",
    );
    let got: Vec<_> = parsed(input).uris().map(|u| u.context).collect();
    use UriContext::*;
    assert_eq!(got, [Map, Key, Part, PreloadHint, RenditionReport]);
}

#[test]
fn bom_and_leading_blanks() {
    let p = parsed("\u{feff}#EXTM3U\n #EXTINF:1,\n\tseg.ts\n");
    assert!(p.bom);
    assert!(p.is_extm3u());
    assert_eq!(p.lines[0].text, "#EXTM3U");
    assert_eq!(
        p.lines[1].kind,
        LineKind::Tag {
            name: "EXTINF",
            value: Some("1,")
        }
    );
    assert_eq!(p.lines[2].uri.as_ref().map(|u| u.range.clone()), Some(1..7));
}

#[test]
fn variant_context_only_right_after_stream_inf() {
    let p = parsed("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n# comment\n\na.m3u8\nb.ts\n");
    let got: Vec<_> = p.uris().map(|u| u.context).collect();
    assert_eq!(got, [UriContext::Variant, UriContext::Segment]);
}

#[test]
fn tag_without_uri_attribute_and_unknown_tags() {
    let p = parsed("#EXTM3U\n#EXT-X-KEY:METHOD=NONE\n#EXT-X-FOO:URI=\"x\"\n#EXTX\n");
    assert_eq!(p.uris().count(), 0);
    assert_eq!(p.kind(), PlaylistKind::Unknown);
}

#[test]
fn limits() {
    let options = Options {
        max_size: 10,
        ..Options::default()
    };
    assert_eq!(
        parse_with("#EXTM3U\nabcdef\n", &options),
        Err(Error::TooLarge { size: 15, max: 10 })
    );
    let options = Options {
        max_lines: 2,
        ..Options::default()
    };
    assert!(parse_with("a\nb\n", &options).is_ok());
    assert_eq!(
        parse_with("a\nb\nc", &options),
        Err(Error::TooManyLines { max: 2 })
    );
}

#[test]
fn empty_and_odd_inputs() {
    assert_eq!(parsed("").lines.len(), 0);
    assert!(!parsed("").is_extm3u());
    assert_eq!(parsed("\n").lines.len(), 1);
    assert_eq!(parsed("\r").lines[0].uri, None);
    assert_eq!(parsed("#").lines[0].kind, LineKind::Comment);
}
