//! Real-world checks: FLV written by ffmpeg, read split at random points and compared with
//! what ffprobe reports; and a replay of the fuzz corpus through the fuzz targets' code.

use std::path::{Path, PathBuf};
use std::process::Command;

use flv_http::{fuzzing, FlvReader, FlvTag, TagKind, VideoCodec, VideoPacket};

/// Runs a tool, failing loudly (never skipping) when it is not installed.
fn run(tool: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {tool} ({e}): these tests need ffmpeg and ffprobe; install them with `apt-get install ffmpeg`")
    });
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("flv-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    dir.join(name)
}

fn ffmpeg_flv(name: &str, extra: &[&str]) -> (PathBuf, Vec<u8>) {
    let path = scratch(name);
    let out = path.to_string_lossy().into_owned();
    let mut args = vec![
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-t", "2", "-f", "flv", &out]);
    run("ffmpeg", &args);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {out}: {e}"));
    (path, bytes)
}

/// (video packets, video keyframes, audio packets) as ffprobe sees them.
fn ffprobe_counts(path: &Path) -> (usize, usize, usize) {
    let path = path.to_string_lossy();
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "packet=codec_type,flags",
            "-of",
            "csv=p=0",
            &path,
        ],
    );
    let text = String::from_utf8_lossy(&out);
    let (mut video, mut keys, mut audio) = (0, 0, 0);
    for line in text.lines() {
        match line.split_once(',') {
            Some(("video", flags)) => {
                video += 1;
                keys += usize::from(flags.contains('K'));
            }
            Some(("audio", _)) => audio += 1,
            _ => {}
        }
    }
    (video, keys, audio)
}

/// Deterministic split points (xorshift), so a failure reproduces.
fn read_randomly_split(data: &[u8], mut seed: u64) -> Vec<FlvTag> {
    let mut reader = FlvReader::new();
    let mut tags = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Mostly small pieces, sometimes large ones, sometimes a single byte.
        let size = match seed % 4 {
            0 => 1,
            1 => (seed >> 8) as usize % 16 + 1,
            2 => (seed >> 8) as usize % 4096 + 1,
            _ => (seed >> 8) as usize % 65536 + 1,
        };
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        reader.push_slice(chunk);
        while let Some(tag) = reader
            .next_tag()
            .unwrap_or_else(|e| panic!("read error: {e}"))
        {
            tags.push(tag);
        }
    }
    assert_eq!(
        reader.buffered(),
        0,
        "bytes left over at the end of the file"
    );
    tags
}

fn check_against_ffprobe(name: &str, extra: &[&str], codec: VideoCodec) {
    let (path, data) = ffmpeg_flv(name, extra);
    let (video, keys, audio) = ffprobe_counts(&path);
    assert!(
        video > 0 && keys > 0 && audio > 0,
        "ffprobe saw {video} video, {keys} keys, {audio} audio"
    );

    let reference = read_randomly_split(&data, 1);
    for seed in 2..12u64 {
        assert_eq!(
            read_randomly_split(&data, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            reference
        );
    }
    let count = |pred: fn(&FlvTag) -> bool| reference.iter().filter(|t| pred(t)).count();
    let coded = |t: &FlvTag| {
        t.video
            .is_some_and(|v| v.packet == VideoPacket::CodedFrames)
    };
    let audio_frame = |t: &FlvTag| t.kind == TagKind::Audio && !t.is_sequence_header();
    assert_eq!(count(coded), video, "video frames");
    assert_eq!(count(FlvTag::is_keyframe), keys, "keyframes");
    assert_eq!(count(audio_frame), audio, "audio frames");
    assert_eq!(count(FlvTag::is_video_sequence_header), 1);
    assert_eq!(count(FlvTag::is_aac_sequence_header), 1);
    assert!(
        reference.first().is_some_and(FlvTag::is_metadata),
        "first tag is onMetaData"
    );
    assert!(reference
        .iter()
        .all(|t| t.previous_tag_size == t.data_size() + 11));
    let first_video = reference.iter().find(|t| t.kind == TagKind::Video);
    assert_eq!(
        first_video.and_then(|t| t.video).and_then(|v| v.codec),
        Some(codec)
    );
    // The stream rebuilt from the header and the tags is the file.
    let mut reader = FlvReader::new();
    reader.push_slice(&data);
    let header = reader.next_tag().ok().and(reader.header().copied());
    let mut rebuilt = header.map(|h| h.to_bytes().to_vec()).unwrap_or_default();
    reference
        .iter()
        .for_each(|t| rebuilt.extend_from_slice(t.bytes()));
    assert_eq!(rebuilt, data);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn ffmpeg_h264_aac_matches_ffprobe() {
    check_against_ffprobe(
        "h264.flv",
        &["-c:v", "libx264", "-g", "25", "-c:a", "aac"],
        VideoCodec::Avc,
    );
}

#[test]
fn ffmpeg_h264_short_gop_matches_ffprobe() {
    let extra = [
        "-c:v", "libx264", "-g", "7", "-bf", "2", "-c:a", "aac", "-ar", "22050",
    ];
    check_against_ffprobe("h264-gop7.flv", &extra, VideoCodec::Avc);
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()));
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| {
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, data)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
}

#[test]
fn fuzz_corpus_flv_reader_replays() {
    let mut tags = 0;
    for (path, data) in corpus("flv_reader") {
        tags += fuzzing::flv_reader(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    assert!(tags > 0, "the corpus should hold at least one readable FLV");
}

#[test]
fn fuzz_corpus_query_text_replays() {
    for (path, data) in corpus("query_text") {
        fuzzing::query_text(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn fuzz_corpus_classify_replays() {
    for (path, data) in corpus("classify") {
        fuzzing::classify_request(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn fuzz_corpus_fanout_replays() {
    let mut read = 0;
    for (path, data) in corpus("fanout") {
        read += fuzzing::fanout(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    assert!(read > 0, "the corpus should hand viewers some tags");
}

#[test]
fn fuzz_corpus_ts_fanout_replays() {
    let mut packets = 0;
    for (path, data) in corpus("ts_fanout") {
        packets += fuzzing::ts_fanout(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    assert!(packets > 0, "the corpus should hand viewers some packets");
}

#[test]
fn fuzz_corpus_heads_replays() {
    let mut complete = 0;
    for (path, data) in corpus("heads") {
        complete += fuzzing::heads(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    assert!(
        complete >= 2,
        "the corpus holds whole request and response heads"
    );
}
