//! Real playlists written by ffmpeg: rewritten, checked line by line, and read back by
//! ffprobe through the rewritten URIs; and a replay of the fuzz corpus.

use std::path::{Path, PathBuf};
use std::process::Command;

use hls_rewrite::{
    extract_token, fuzzing, parse, rewrite, rewrite_with, AbsoluteUrls, Options, PlaylistKind,
    UriContext,
};

const PARAM: &str = "spbhid";
const TOKEN: &str = "t0k-9";

/// Runs a tool, failing loudly (never skipping) when it is not installed.
fn run(tool: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(tool).args(args).current_dir(dir).output().unwrap_or_else(|e| {
        panic!("cannot run {tool} ({e}): these tests need ffmpeg and ffprobe; install them with `apt-get install ffmpeg`")
    });
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hls-rewrite-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    dir
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

fn ffmpeg_hls(dir: &Path, extra: &[&str], out: &str) {
    let mut args = vec![
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x120:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine",
        "-c:v",
        "libx264",
        "-g",
        "25",
        "-c:a",
        "aac",
        "-t",
        "3",
        "-f",
        "hls",
        "-hls_time",
        "1",
        "-hls_list_size",
        "0",
    ];
    args.extend_from_slice(extra);
    args.push(out);
    run("ffmpeg", &args, dir);
}

/// Packet counts per codec type, as ffprobe reads the playlist.
fn probe(dir: &Path, playlist: &str) -> Vec<(String, usize)> {
    let args = [
        "-v",
        "error",
        // The rewritten names end in `?spbhid=..`: let the file protocol accept them.
        "-allowed_extensions",
        "ALL",
        "-allowed_segment_extensions",
        "ALL",
        "-extension_picky",
        "0",
        "-show_entries",
        "packet=codec_type",
        "-of",
        "csv=p=0",
        playlist,
    ];
    let out = run("ffprobe", &args, dir);
    let mut counts: Vec<(String, usize)> = Vec::new();
    for line in out.lines().filter(|l| !l.is_empty()) {
        match counts.iter_mut().find(|(k, _)| k == line) {
            Some((_, n)) => *n += 1,
            None => counts.push((line.to_owned(), 1)),
        }
    }
    counts.sort();
    counts
}

fn rewritten(input: &str) -> String {
    let out = rewrite(input, PARAM, TOKEN, "/live/x.m3u8").unwrap_or_else(|e| panic!("{e}"));
    fuzzing::check_rewritten(input, &out, PARAM, TOKEN).unwrap_or_else(|e| panic!("{e}"));
    out
}

/// Makes every rewritten URI of `playlist` (a relative file name) exist on disk: media
/// playlists rewritten in turn, other files copied.
fn materialize(dir: &Path, playlist: &str) {
    let parsed = parse(playlist).unwrap_or_else(|e| panic!("{e}"));
    for uri in parsed.uris() {
        let (file, query) = uri.value.split_once('?').unwrap_or((uri.value, ""));
        assert_eq!(extract_token(query, PARAM), Some(TOKEN), "{}", uri.value);
        if file.ends_with(".m3u8") {
            let inner = rewritten(&read(dir, file));
            std::fs::write(dir.join(uri.value), &inner).unwrap_or_else(|e| panic!("{e}"));
            materialize(dir, &inner);
        } else {
            std::fs::copy(dir.join(file), dir.join(uri.value))
                .unwrap_or_else(|e| panic!("copy {file}: {e}"));
        }
    }
}

#[test]
fn ffmpeg_ts_media_playlist() {
    let dir = scratch("ts");
    ffmpeg_hls(&dir, &["-hls_segment_filename", "live-%d.ts"], "live.m3u8");
    let input = read(&dir, "live.m3u8");
    let out = rewritten(&input);
    let parsed = parse(&out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.kind(), PlaylistKind::Media);
    assert!(parsed.uris().count() >= 3);
    assert!(parsed.uris().all(|u| u.context == UriContext::Segment));
    materialize(&dir, &out);
    std::fs::write(dir.join("rw.m3u8"), &out).unwrap_or_else(|e| panic!("{e}"));
    let before = probe(&dir, "live.m3u8");
    assert!(!before.is_empty());
    assert_eq!(probe(&dir, "rw.m3u8"), before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ffmpeg_fmp4_master_with_audio_rendition() {
    let dir = scratch("fmp4");
    let extra = [
        "-hls_segment_type",
        "fmp4",
        "-master_pl_name",
        "master.m3u8",
        "-var_stream_map",
        "v:0,agroup:aud a:0,agroup:aud",
        "-hls_segment_filename",
        "v%v-%d.m4s",
    ];
    ffmpeg_hls(&dir, &extra, "out%v.m3u8");
    let master = read(&dir, "master.m3u8");
    let out = rewritten(&master);
    let parsed = parse(&out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.kind(), PlaylistKind::Master);
    let contexts: Vec<_> = parsed.uris().map(|u| u.context).collect();
    assert!(contexts.contains(&UriContext::Media), "{contexts:?}");
    assert!(contexts.contains(&UriContext::Variant), "{contexts:?}");
    let media = rewritten(&read(&dir, "out0.m3u8"));
    let media = parse(&media).unwrap_or_else(|e| panic!("{e}"));
    assert!(media
        .uris()
        .any(|u| u.context == UriContext::Map && u.value.ends_with("?spbhid=t0k-9")));

    materialize(&dir, &out);
    std::fs::write(dir.join("rw.m3u8"), &out).unwrap_or_else(|e| panic!("{e}"));
    let before = probe(&dir, "master.m3u8");
    assert!(
        before.len() >= 2,
        "expected audio and video packets: {before:?}"
    );
    assert_eq!(probe(&dir, "rw.m3u8"), before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ffmpeg_encrypted_playlist_with_absolute_urls() {
    let dir = scratch("aes");
    std::fs::write(dir.join("k.key"), [7u8; 16]).unwrap_or_else(|e| panic!("{e}"));
    let info = format!(
        "https://keys.example.com/k.key?id=7\n{}\n",
        dir.join("k.key").display()
    );
    std::fs::write(dir.join("k.info"), info).unwrap_or_else(|e| panic!("{e}"));
    let extra = [
        "-hls_key_info_file",
        "k.info",
        "-hls_base_url",
        "http://origin:8080/live/",
    ];
    ffmpeg_hls(&dir, &extra, "enc.m3u8");
    let input = read(&dir, "enc.m3u8");
    assert!(input.contains("http://origin:8080/live/enc0.ts"), "{input}");

    // Default: every absolute URL comes back through the proxy.
    let out = rewritten(&input);
    assert!(out.contains("URI=\"/k.key?id=7&spbhid=t0k-9\""), "{out}");
    assert!(out.contains("\n/live/enc0.ts?spbhid=t0k-9\n"), "{out}");
    assert!(!out.contains("://"), "{out}");

    // Only the origin's URLs: the third-party key server stays as it is.
    let options = Options {
        absolute_urls: AbsoluteUrls::ToPathForHosts(vec!["origin:8080".into()]),
        ..Options::default()
    };
    let out = rewrite_with(&input, PARAM, TOKEN, "/live/enc.m3u8", &options)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.contains("URI=\"https://keys.example.com/k.key?id=7\""),
        "{out}"
    );
    assert!(out.contains("\n/live/enc1.ts?spbhid=t0k-9\n"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fuzz_corpus_replays() {
    replay("rewrite", fuzzing::rewrite_playlist);
}

#[test]
fn fuzz_corpus_cache_policy_replays() {
    replay("cache_policy", fuzzing::cache_policy);
}

#[test]
fn fuzz_corpus_rewrite_options_replays() {
    replay("rewrite_options", fuzzing::rewrite_options);
}

fn replay(target: &str, check: fn(&[u8]) -> Result<(), String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()));
    let mut count = 0;
    for path in entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
    {
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        check(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        count += 1;
    }
    assert!(count > 0, "empty corpus {}", dir.display());
}
