use super::*;

fn video(body: &[u8]) -> VideoInfo {
    match video_info(body) {
        Some(v) => v,
        None => panic!("no video info in {body:02x?}"),
    }
}

#[test]
fn legacy_avc() {
    let seq = video(&[0x17, 0x00, 0, 0, 0, 1]);
    assert_eq!(seq.frame_type, FrameType::Key);
    assert_eq!(seq.codec, Some(VideoCodec::Avc));
    assert_eq!(seq.packet, VideoPacket::SequenceHeader);
    assert!(!seq.enhanced);
    assert_eq!(
        video(&[0x17, 0x01, 0, 0, 0]).packet,
        VideoPacket::CodedFrames
    );
    let inter = video(&[0x27, 0x01, 0, 0, 0]);
    assert_eq!(
        (inter.frame_type, inter.packet),
        (FrameType::Inter, VideoPacket::CodedFrames)
    );
    assert_eq!(
        video(&[0x17, 0x02, 0, 0, 0]).packet,
        VideoPacket::EndOfSequence
    );
    assert_eq!(video_info(&[0x17]), None);
    assert_eq!(video_info(&[]), None);
}

#[test]
fn legacy_hevc_and_others() {
    let seq = video(&[0x1C, 0x00]);
    assert_eq!(
        (seq.codec, seq.packet),
        (Some(VideoCodec::Hevc), VideoPacket::SequenceHeader)
    );
    let vp6 = video(&[0x14]);
    assert_eq!(
        (vp6.codec, vp6.packet),
        (Some(VideoCodec::Vp6), VideoPacket::CodedFrames)
    );
    assert_eq!(video(&[0x57, 0x00]).packet, VideoPacket::Command);
    assert_eq!(video(&[0x0F]).codec, Some(VideoCodec::Legacy(15)));
}

#[test]
fn enhanced_video() {
    // IsExHeader | Key << 4 | SequenceStart, FourCC hvc1.
    let seq = video(b"\x90hvc1\x01\x02");
    assert!(seq.enhanced);
    assert_eq!(
        (seq.frame_type, seq.codec, seq.packet),
        (
            FrameType::Key,
            Some(VideoCodec::Hevc),
            VideoPacket::SequenceHeader
        )
    );
    let key = video(b"\x91av01rest");
    assert_eq!(
        (key.codec, key.packet),
        (Some(VideoCodec::Av1), VideoPacket::CodedFrames)
    );
    let x = video(b"\x93vp09");
    assert_eq!(
        (x.codec, x.packet),
        (Some(VideoCodec::Vp9), VideoPacket::CodedFrames)
    );
    let inter = video(b"\xa1hvc1");
    assert_eq!(inter.frame_type, FrameType::Inter);
    assert_eq!(video(b"\x92avc1").packet, VideoPacket::EndOfSequence);
    assert_eq!(video(b"\x94hvc1").packet, VideoPacket::Metadata);
    assert_eq!(video(b"\x95av01").packet, VideoPacket::SequenceHeader);
    assert_eq!(
        video(b"\x91abcd").codec,
        Some(VideoCodec::Other(FourCc(*b"abcd")))
    );
    assert_eq!(video_info(b"\x91hv"), None);
}

#[test]
fn enhanced_command_multitrack_modex() {
    let cmd = video(b"\xd0\x01");
    assert_eq!(
        (cmd.frame_type, cmd.packet, cmd.codec),
        (FrameType::Command, VideoPacket::Command, None)
    );
    // Multitrack, OneTrack (0) carrying CodedFrames, FourCC av01.
    let mt = video(b"\x96\x01av01\x00");
    assert!(mt.multitrack);
    assert_eq!(
        (mt.codec, mt.packet),
        (Some(VideoCodec::Av1), VideoPacket::CodedFrames)
    );
    // ManyTracksManyCodecs (2) with SequenceStart: FourCCs are per track.
    let many = video(b"\x96\x20\x00hvc1");
    assert_eq!(
        (many.codec, many.packet),
        (None, VideoPacket::SequenceHeader)
    );
    // ModEx with 3 bytes of data (size byte 2 = 3 - 1), then CodedFrames, FourCC.
    let modex = video(b"\x97\x02abc\x01hvc1");
    assert_eq!(
        (modex.codec, modex.packet),
        (Some(VideoCodec::Hevc), VideoPacket::CodedFrames)
    );
    // ModEx with the 16-bit size form: 0xFF then UI16 (2 -> 3 bytes).
    let long = video(b"\x97\xff\x00\x02abc\x00avc1");
    assert_eq!(long.packet, VideoPacket::SequenceHeader);
    assert_eq!(video_info(b"\x97\x09abc"), None);
    // A chain of ModEx rounds is bounded.
    let chain: Vec<u8> = std::iter::once(0x97)
        .chain([0u8, 0, 0x07].repeat(40))
        .collect();
    assert_eq!(video_info(&chain), None);
}

#[test]
fn audio() {
    let seq = audio_info(&[0xAF, 0x00, 0x12, 0x10]);
    assert_eq!(
        seq,
        Some(AudioInfo {
            codec: Some(AudioCodec::Aac),
            packet: AudioPacket::SequenceHeader,
            enhanced: false,
            multitrack: false
        })
    );
    assert_eq!(
        audio_info(&[0xAF, 0x01]).map(|a| a.packet),
        Some(AudioPacket::Frames)
    );
    assert_eq!(
        audio_info(&[0x2F]).map(|a| (a.codec, a.packet)),
        Some((Some(AudioCodec::Mp3), AudioPacket::Frames))
    );
    assert_eq!(audio_info(&[0xAF]), None);
    let opus = audio_info(b"\x90Opus");
    assert_eq!(
        opus.map(|a| (a.codec, a.packet, a.enhanced)),
        Some((Some(AudioCodec::Opus), AudioPacket::SequenceHeader, true))
    );
    assert_eq!(
        audio_info(b"\x91fLaC").map(|a| a.codec),
        Some(Some(AudioCodec::Flac))
    );
    assert_eq!(
        audio_info(b"\x94ac-3").map(|a| a.packet),
        Some(AudioPacket::MultichannelConfig)
    );
    let mt = audio_info(b"\x95\x11mp4a");
    assert_eq!(
        mt.map(|a| (a.codec, a.packet, a.multitrack)),
        Some((Some(AudioCodec::Aac), AudioPacket::Frames, true))
    );
    assert_eq!(audio_info(b"\x95\x20").map(|a| a.codec), Some(None));
    assert_eq!(audio_info(b"\x90Op"), None);
}

#[test]
fn fourcc_display() {
    assert_eq!(FourCc::HVC1.to_string(), "hvc1");
    assert_eq!(FourCc(*b"a\x00b\n").to_string(), "a\\x00b\\x0a");
}
