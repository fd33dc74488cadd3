use proptest::prelude::*;

use super::*;
use crate::TagKind;

fn tag_bytes(kind: u8, ts: u32, body: &[u8]) -> Vec<u8> {
    let size = u32::try_from(body.len()).unwrap_or(0);
    let [_, s0, s1, s2] = size.to_be_bytes();
    let [e, t0, t1, t2] = ts.to_be_bytes();
    let mut out = vec![kind, s0, s1, s2, t0, t1, t2, e, 0, 0, 0];
    out.extend_from_slice(body);
    out.extend_from_slice(&(size + 11).to_be_bytes());
    out
}

fn sample() -> Vec<u8> {
    let mut out = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
    out.extend(tag_bytes(
        18,
        0,
        b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00",
    ));
    out.extend(tag_bytes(9, 0, &[0x17, 0x00, 0, 0, 0, 1, 0x64]));
    out.extend(tag_bytes(8, 0, &[0xAF, 0x00, 0x12, 0x10]));
    out.extend(tag_bytes(9, 0, &[0x17, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x65]));
    out.extend(tag_bytes(8, 23, &[0xAF, 0x01, 0x21]));
    out.extend(tag_bytes(9, 40, &[0x27, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x41]));
    out.extend(tag_bytes(9, 0x0100_0000, b"\x91hvc1\x00\x00\x00"));
    out
}

fn read_all(reader: &mut FlvReader) -> Result<Vec<FlvTag>, Error> {
    let mut tags = Vec::new();
    while let Some(tag) = reader.next_tag()? {
        tags.push(tag);
    }
    Ok(tags)
}

fn read_split(data: &[u8], cuts: &[usize]) -> Result<Vec<FlvTag>, Error> {
    let mut reader = FlvReader::new();
    let mut tags = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&data.len())) {
        let cut = cut.clamp(start, data.len());
        reader.push_slice(data.get(start..cut).unwrap_or_default());
        tags.extend(read_all(&mut reader)?);
        start = cut;
    }
    Ok(tags)
}

#[test]
fn reads_whole_stream() {
    let data = sample();
    let mut reader = FlvReader::new();
    reader.push(Bytes::from(data));
    let tags = read_all(&mut reader).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reader.buffered(), 0);
    let h = reader.header().copied();
    assert_eq!(h.map(|h| (h.has_audio, h.has_video)), Some((true, true)));
    let kinds: Vec<_> = tags.iter().map(|t| t.kind).collect();
    use TagKind::*;
    assert_eq!(kinds, [Script, Video, Audio, Video, Audio, Video, Video]);
    assert!(tags[0].is_metadata());
    assert!(tags[1].is_avc_sequence_header());
    assert!(tags[2].is_aac_sequence_header());
    assert!(tags[3].is_keyframe());
    assert!(!tags[5].is_keyframe());
    assert!(tags[6].is_keyframe());
    assert_eq!(tags[4].timestamp, 23);
    assert_eq!(tags[6].timestamp, 0x0100_0000);
}

#[test]
fn every_split_point_gives_same_tags() {
    let data = sample();
    let whole = read_split(&data, &[]).unwrap_or_else(|e| panic!("{e}"));
    for cut in 0..=data.len() {
        assert_eq!(
            read_split(&data, &[cut]).as_ref(),
            Ok(&whole),
            "cut at {cut}"
        );
    }
    let byte_by_byte: Vec<usize> = (0..data.len()).collect();
    assert_eq!(read_split(&data, &byte_by_byte), Ok(whole));
}

#[test]
fn units_rebuild_the_stream() {
    let data = sample();
    let mut reader = FlvReader::new();
    reader.push_slice(&data);
    let tags = read_all(&mut reader).unwrap_or_else(|e| panic!("{e}"));
    let mut rebuilt = reader
        .header()
        .map(|h| h.to_bytes().to_vec())
        .unwrap_or_default();
    for t in &tags {
        rebuilt.extend_from_slice(t.bytes());
    }
    assert_eq!(rebuilt, data);
}

#[test]
fn zero_copy_inside_one_chunk() {
    let chunk = Bytes::from(sample());
    let range = chunk.as_ptr() as usize..chunk.as_ptr() as usize + chunk.len();
    let mut reader = FlvReader::new();
    reader.push(chunk.clone());
    let tags = read_all(&mut reader).unwrap_or_else(|e| panic!("{e}"));
    for t in tags {
        assert!(range.contains(&(t.bytes().as_ptr() as usize)));
    }
}

#[test]
fn refuses_non_flv_early() {
    let mut reader = FlvReader::new();
    reader.push_slice(b"<h");
    assert_eq!(reader.next_tag(), Err(Error::NotFlv));
    assert_eq!(reader.next_tag(), Err(Error::NotFlv));
    let mut reader = FlvReader::new();
    reader.push_slice(b"FL");
    assert_eq!(reader.next_tag(), Ok(None));
}

#[test]
fn header_errors() {
    let mut r = FlvReader::new();
    r.push_slice(b"FLV\x02\x05\x00\x00\x00\x09");
    assert_eq!(r.next_tag(), Err(Error::UnsupportedVersion(2)));
    let mut r = FlvReader::new();
    r.push_slice(b"FLV\x01\x05\x00\x00\x00\x08");
    assert_eq!(r.next_tag(), Err(Error::BadDataOffset(8)));
    let mut r = FlvReader::new();
    r.push_slice(b"FLV\x01\x05\xff\xff\xff\xff");
    assert_eq!(r.next_tag(), Err(Error::BadDataOffset(u32::MAX)));
}

#[test]
fn larger_data_offset_is_skipped() {
    let mut data = b"FLV\x01\x01\x00\x00\x00\x0c\xaa\xbb\xcc\x00\x00\x00\x00".to_vec();
    data.extend(tag_bytes(9, 5, &[0x17, 0x01]));
    let tags = read_split(&data, &[10]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0].timestamp, 5);
}

#[test]
fn tag_size_limit() {
    let config = ReaderConfig {
        max_tag_size: 4,
        ..ReaderConfig::default()
    };
    let mut r = FlvReader::with_config(config);
    r.push_slice(b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00");
    r.push_slice(&tag_bytes(9, 0, &[1, 2, 3, 4, 5]));
    assert_eq!(r.next_tag(), Err(Error::TagTooLarge { size: 5, max: 4 }));
    // The limit is checked from the header alone, before the body arrives.
    let config = ReaderConfig {
        max_tag_size: 1 << 20,
        ..ReaderConfig::default()
    };
    let mut r = FlvReader::with_config(config);
    r.push_slice(b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00\x09\xff\xff\xff");
    assert_eq!(
        r.next_tag(),
        Err(Error::TagTooLarge {
            size: 0xFF_FFFF,
            max: 1 << 20
        })
    );
}

#[test]
fn previous_tag_size_strictness() {
    let mut data = b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
    let mut t = tag_bytes(9, 0, &[0x17, 0x01]);
    if let Some(last) = t.last_mut() {
        *last = 0;
    }
    data.extend(t);
    let mut lax = FlvReader::new();
    lax.push_slice(&data);
    assert_eq!(
        lax.next_tag().map(|t| t.map(|t| t.previous_tag_size)),
        Ok(Some(0))
    );
    let config = ReaderConfig {
        strict_previous_tag_size: true,
        ..ReaderConfig::default()
    };
    let mut strict = FlvReader::with_config(config);
    strict.push_slice(&data);
    assert_eq!(
        strict.next_tag(),
        Err(Error::PreviousTagSizeMismatch {
            expected: 13,
            found: 0
        })
    );
}

#[test]
fn bare_tags_without_header() {
    let config = ReaderConfig {
        expect_header: false,
        ..ReaderConfig::default()
    };
    let mut r = FlvReader::with_config(config);
    r.push_slice(&tag_bytes(8, 7, &[0xAF, 0x01]));
    let tag = r.next_tag();
    assert_eq!(tag.map(|t| t.map(|t| t.timestamp)), Ok(Some(7)));
    assert!(r.header().is_none());
}

proptest! {
    #[test]
    fn splits_never_change_the_result(cuts in proptest::collection::vec(0usize..200, 0..12)) {
        let data = sample();
        let mut cuts = cuts;
        cuts.sort_unstable();
        prop_assert_eq!(read_split(&data, &cuts), read_split(&data, &[]));
    }

    #[test]
    fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512), cut in 0usize..600) {
        let mut data = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        data.extend(tail);
        let whole = read_split(&data, &[]);
        prop_assert_eq!(read_split(&data, &[cut]), whole);
    }
}
