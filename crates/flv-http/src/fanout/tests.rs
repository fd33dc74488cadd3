use super::*;

const META: &[u8] = b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00";
const AVC_HEADER: &[u8] = &[0x17, 0x00, 0, 0, 0, 1, 0x64];
const AAC_HEADER: &[u8] = &[0xAF, 0x00, 0x12, 0x10];

fn key(n: u8) -> Vec<u8> {
    vec![0x17, 0x01, 0, 0, 0, n, n]
}
fn inter(n: u8) -> Vec<u8> {
    vec![0x27, 0x01, 0, 0, 0, n, n]
}
fn audio(n: u8) -> Vec<u8> {
    vec![0xAF, 0x01, n, n]
}

fn small() -> FanOutConfig {
    FanOutConfig {
        max_lag_bytes: 400,
        max_gop_bytes: 10_000,
        max_skips: 2,
    }
}

/// Headers at 0, then `gops` GOPs of a keyframe and 3 inter frames, audio between.
fn stream(f: &mut FanOut, start_ts: u32, gops: u8) {
    f.push_message(18, 0, META);
    f.push_message(9, 0, AVC_HEADER);
    f.push_message(8, 0, AAC_HEADER);
    let mut ts = start_ts;
    for g in 0..gops {
        for i in 0..4u8 {
            let body = if i == 0 { key(g) } else { inter(g * 4 + i) };
            f.push_message(9, ts, &body);
            f.push_message(8, ts + 5, &audio(i));
            ts += 40;
        }
    }
}

fn drain(f: &mut FanOut, c: &mut Cursor) -> Vec<FlvTag> {
    let mut out = Vec::new();
    while f.has_data(c) && !c.is_cut() {
        f.read(c, 1 << 20, &mut out);
    }
    out
}

#[test]
fn late_joiner_gets_metadata_headers_then_the_gop_from_its_keyframe() {
    let mut f = FanOut::default();
    stream(&mut f, 1000, 3);
    let mut c = f.join();
    let tags = drain(&mut f, &mut c);
    assert!(tags[0].is_metadata());
    assert!(tags[1].is_avc_sequence_header());
    assert!(tags[2].is_aac_sequence_header());
    assert!(tags[3].is_keyframe(), "{:?}", tags[3]);
    assert_eq!(&tags[3].body()[..], &key(2)[..]);
    // The last GOP whole: keyframe, 3 inter frames, 4 audio frames.
    assert_eq!(tags.len(), 3 + 8);
    assert!(!f.has_data(&c));
    // Live from here on.
    f.push_message(9, 2000, &inter(99));
    assert_eq!(drain(&mut f, &mut c).len(), 1);
}

#[test]
fn joiner_before_any_keyframe_waits_for_one_but_gets_audio() {
    let mut f = FanOut::default();
    f.push_message(9, 0, AVC_HEADER);
    f.push_message(9, 0, &inter(1));
    let mut c = f.join();
    f.push_message(9, 40, &inter(2));
    f.push_message(8, 45, &audio(1));
    f.push_message(9, 80, &key(3));
    let tags = drain(&mut f, &mut c);
    let video: Vec<_> = tags
        .iter()
        .filter(|t| t.kind == TagKind::Video && !t.is_sequence_header())
        .collect();
    assert!(video[0].is_keyframe());
    assert_eq!(video.len(), 1);
    assert!(tags.iter().any(|t| t.kind == TagKind::Audio));
}

#[test]
fn audio_only_and_video_only_streams_play() {
    let mut f = FanOut::default();
    f.push_message(8, 0, AAC_HEADER);
    for i in 0..10 {
        f.push_message(8, u32::from(i) * 23, &audio(i));
    }
    let mut c = f.join();
    f.push_message(8, 300, &audio(50));
    let tags = drain(&mut f, &mut c);
    assert!(tags[0].is_aac_sequence_header());
    assert_eq!(tags.len(), 2);

    let mut f = FanOut::default();
    f.push_message(9, 0, AVC_HEADER);
    f.push_message(9, 0, &key(0));
    f.push_message(9, 40, &inter(1));
    let mut c = f.join();
    let tags = drain(&mut f, &mut c);
    assert_eq!(tags.len(), 3);
    assert!(tags[1].is_keyframe());
}

#[test]
fn enhanced_rtmp_fourcc_headers_and_keyframes_are_recognised() {
    let mut f = FanOut::default();
    // ExVideoTagHeader: bit 7 set, frame type 1, packet type 0 (SequenceStart), hvc1.
    f.push_message(9, 0, b"\x90hvc1\x01\x02");
    // Frame type 1, packet type 1 (CodedFrames), hvc1, composition time, data.
    f.push_message(9, 0, b"\x91hvc1\x00\x00\x00\xAA");
    f.push_message(9, 40, b"\xA1hvc1\x00\x00\x00\xBB");
    let mut c = f.join();
    let tags = drain(&mut f, &mut c);
    assert!(tags[0].is_hevc_sequence_header());
    assert!(tags[1].is_keyframe());
    assert_eq!(tags.len(), 3);
}

#[test]
fn timestamps_start_at_zero_and_never_go_backwards_across_parts() {
    let mut f = FanOut::default();
    let mut c = f.join();
    stream(&mut f, 50_000, 2);
    let first = drain(&mut f, &mut c);
    assert_eq!(
        first.iter().find(|t| t.is_keyframe()).map(|t| t.timestamp),
        Some(0)
    );
    let end = first.iter().map(|t| t.timestamp).max().unwrap_or(0);
    // A new upstream session whose timestamps start elsewhere.
    f.new_part();
    stream(&mut f, 20_000, 1);
    // A publisher restart on the same upstream: timestamps step back to 0.
    stream(&mut f, 0, 1);
    let second = drain(&mut f, &mut c);
    let media: Vec<u32> = second
        .iter()
        .filter(|t| !t.is_sequence_header() && !t.is_metadata())
        .map(|t| t.timestamp)
        .collect();
    assert!(media[0] > end, "{media:?} after {end}");
    let mut last = end;
    for ts in &media {
        // Audio may trail video by a few ms within a part; never a step back past that.
        assert!(*ts + 10 > last, "{ts} after {last}: {media:?}");
        last = last.max(*ts);
    }
    assert_eq!(f.stats().parts, 3);
    // The new part's sequence headers come first for a late joiner too.
    let mut late = f.join();
    let tags = drain(&mut f, &mut late);
    assert!(tags
        .iter()
        .take(3)
        .all(|t| t.is_sequence_header() || t.is_metadata()));
    assert!(tags[3].is_keyframe());
    assert!(tags[3].timestamp > end);
}

#[test]
fn a_slow_viewer_skips_to_a_keyframe_and_is_cut_if_it_stays_behind() {
    let mut f = FanOut::new(small());
    stream(&mut f, 0, 1);
    let mut fast = f.join();
    let mut slow = f.join();
    drain(&mut f, &mut fast);
    let mut out = Vec::new();
    f.read(&mut slow, 1, &mut out);
    // The slow viewer falls far behind; the fast one keeps reading.
    let mut outcome = ReadOutcome::Read;
    for round in 0..3u8 {
        for g in 0..4u8 {
            f.push_message(9, 1000, &key(round * 10 + g));
            for i in 0..3u8 {
                f.push_message(9, 1000, &inter(i));
            }
            assert!(!drain(&mut f, &mut fast).is_empty());
        }
        out.clear();
        outcome = f.read(&mut slow, 1, &mut out);
        if outcome == ReadOutcome::Skipped {
            let first_video = out
                .iter()
                .find(|t| t.kind == TagKind::Video && !t.is_sequence_header());
            assert!(first_video.is_none_or(|t| t.is_keyframe()), "{out:?}");
        }
    }
    assert_eq!(outcome, ReadOutcome::Cut);
    assert!(slow.is_cut());
    assert_eq!(f.stats().cut, 1);
    assert!(f.stats().skipped >= 2);
    assert!(!fast.is_cut());
}

#[test]
fn a_viewer_that_catches_up_after_a_skip_is_not_cut() {
    let mut f = FanOut::new(small());
    stream(&mut f, 0, 1);
    let mut c = f.join();
    for round in 0..10u8 {
        for i in 0..8u8 {
            let body = if i == 0 { key(round) } else { inter(i) };
            f.push_message(9, u32::from(round) * 1000 + u32::from(i), &body);
        }
        // Reads all of it each round, after falling behind.
        let mut out = Vec::new();
        let first = f.read(&mut c, 1 << 20, &mut out);
        assert_ne!(first, ReadOutcome::Cut);
        drain(&mut f, &mut c);
    }
    assert!(!c.is_cut());
}

#[test]
fn memory_stays_bounded_whatever_the_stream() {
    let mut f = FanOut::new(small());
    let big = vec![0x27u8; 300];
    for i in 0..1000u32 {
        f.push_message(9, i, &big);
        assert!(f.stats().bytes <= 400 + 320, "{:?}", f.stats());
    }
    // A GOP longer than its cap is not kept.
    let mut f = FanOut::new(FanOutConfig {
        max_gop_bytes: 1000,
        ..small()
    });
    f.push_message(9, 0, &key(1));
    for i in 0..100u32 {
        f.push_message(9, i, &big);
    }
    assert!(!f.stats().has_gop);
    assert!(f.stats().bytes <= 400 + 320);
}

#[test]
fn rtmp_messages_other_than_media_and_data_are_ignored() {
    let mut f = FanOut::default();
    assert!(!f.push_message(20, 0, b"\x02\x00\x07_result"));
    assert!(!f.push_message(4, 0, &[0, 0]));
    assert!(f.push_message(15, 0, &[0, 0x02, 0, 0x0a, b'o']));
    assert_eq!(f.stats().tags, 1);
}

#[test]
fn a_new_part_starting_mid_gop_reaches_nobody_before_its_keyframe() {
    let mut f = FanOut::default();
    stream(&mut f, 0, 2);
    let mut live = f.join();
    drain(&mut f, &mut live);
    f.new_part();
    f.push_message(9, 0, AVC_HEADER);
    f.push_message(9, 40, &inter(7));
    f.push_message(8, 45, &audio(7));
    f.push_message(9, 80, &key(8));
    let tags = drain(&mut f, &mut live);
    let video: Vec<_> = tags
        .iter()
        .filter(|t| t.kind == TagKind::Video && !t.is_sequence_header())
        .collect();
    assert_eq!(video.len(), 1, "{tags:?}");
    assert!(video[0].is_keyframe());
    assert!(tags.iter().any(|t| t.kind == TagKind::Audio));
}

#[test]
fn aggregate_messages_are_split_into_tags() {
    let mut f = FanOut::default();
    let mut agg = Vec::new();
    for (i, body) in [key(1), inter(2)].iter().enumerate() {
        let ts = 1000 + 40 * i as u32;
        let [_, s0, s1, s2] = (body.len() as u32).to_be_bytes();
        let [e, t0, t1, t2] = ts.to_be_bytes();
        agg.extend_from_slice(&[9, s0, s1, s2, t0, t1, t2, e, 0, 0, 0]);
        agg.extend_from_slice(body);
        agg.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
    }
    agg.extend_from_slice(&[9, 0, 0, 99]);
    assert_eq!(f.push_aggregate(500, &agg), 2);
    let mut c = f.join();
    let tags = drain(&mut f, &mut c);
    assert_eq!(tags.len(), 2);
    assert_eq!(tags[1].timestamp - tags[0].timestamp, 40);
}

mod ts {
    use super::super::*;

    fn packet(pid: u16, pusi: bool, rai: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x47, (u8::from(pusi) << 6) | (pid >> 8) as u8, pid as u8];
        let room = 184 - payload.len();
        if rai || room > 0 {
            p.push(0x30);
            p.push((room - 1) as u8);
            if room > 1 {
                p.push(if rai { 0x40 } else { 0 });
                p.extend(std::iter::repeat_n(0xFF, room - 2));
            }
        } else {
            p.push(0x10);
        }
        p.extend_from_slice(payload);
        assert_eq!(p.len(), 188);
        p
    }

    fn pat() -> Vec<u8> {
        packet(
            0,
            true,
            false,
            &[
                0, 0x00, 0xB0, 13, 0, 1, 0xC1, 0, 0, 0, 1, 0xF0, 0, 1, 2, 3, 4,
            ],
        )
    }

    fn pmt() -> Vec<u8> {
        packet(
            0x1000,
            true,
            false,
            &[
                0, 0x02, 0xB0, 23, 0, 1, 0xC1, 0, 0, 0xE1, 0x00, 0xF0, 0, 0x1B, 0xE1, 0x00, 0xF0,
                0, 0x0F, 0xE1, 0x01, 0xF0, 0, 1, 2, 3, 4,
            ],
        )
    }

    fn pes(nal: u8) -> Vec<u8> {
        vec![
            0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1, 0, 0, 0, 1, nal, 0xAA,
        ]
    }

    #[test]
    fn finds_tables_and_random_access_points() {
        let mut a = TsAccess::new();
        assert_eq!(a.classify(&pat()), PacketClass::Pat);
        assert_eq!(a.classify(&pmt()), PacketClass::Pmt);
        assert!(a.has_video());
        assert_eq!(
            a.classify(&packet(0x100, true, true, &[1])),
            PacketClass::RandomAccess
        );
        assert_eq!(
            a.classify(&packet(0x100, true, false, &pes(0x65))),
            PacketClass::RandomAccess
        );
        assert_eq!(
            a.classify(&packet(0x100, true, false, &pes(0x41))),
            PacketClass::Video
        );
        assert_eq!(
            a.classify(&packet(0x100, false, false, &pes(0x65))),
            PacketClass::Video
        );
        assert_eq!(
            a.classify(&packet(0x101, true, true, &[1])),
            PacketClass::Other
        );
        assert_eq!(a.classify(&[0x47; 10]), PacketClass::Other);
    }

    #[test]
    fn late_joiner_starts_at_pat_pmt_and_a_keyframe() {
        let mut f = TsFanOut::default();
        let mut stream = Vec::new();
        stream.extend(pat());
        stream.extend(pmt());
        for gop in 0..3 {
            stream.extend(packet(0x100, true, false, &pes(0x65)));
            stream.extend(packet(0x101, true, false, &[gop]));
            stream.extend(packet(0x100, true, false, &pes(0x41)));
        }
        // Split anywhere, with garbage up front.
        f.push(&[1, 2, 3]);
        for piece in stream.chunks(100) {
            f.push(piece);
        }
        let mut c = f.join();
        let mut out = Vec::new();
        f.read(&mut c, 1 << 20, &mut out);
        let bytes: Vec<u8> = out.iter().flat_map(|c| c.bytes.to_vec()).collect();
        assert_eq!(bytes.len(), 5 * 188);
        assert_eq!(&bytes[..188], &pat()[..]);
        assert_eq!(&bytes[188..376], &pmt()[..]);
        assert_eq!(
            &bytes[376..564],
            &packet(0x100, true, false, &pes(0x65))[..]
        );
        assert_eq!(bytes[564 + 187], 2, "the last GOP's audio");
        assert_eq!(f.resyncs(), 1);
    }
}

mod arbitrary {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn fanout_invariants_hold_on_arbitrary_messages(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
            prop_assert!(crate::fuzzing::fanout(&data).is_ok(), "{:?}", crate::fuzzing::fanout(&data));
        }

        #[test]
        fn ts_fanout_hands_out_whole_packets_of_arbitrary_input(
            mut data in proptest::collection::vec(any::<u8>(), 0..8192),
            syncs in proptest::collection::vec(0usize..8192, 0..64),
        ) {
            // Sync bytes sprinkled in, so that some packets line up.
            for i in syncs {
                if let Some(b) = data.get_mut(i) {
                    *b = 0x47;
                }
            }
            prop_assert!(crate::fuzzing::ts_fanout(&data).is_ok(), "{:?}", crate::fuzzing::ts_fanout(&data));
        }
    }
}
