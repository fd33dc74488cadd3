//! The fuzz corpus (`fuzz/corpus/<target>/`), replayed through the fuzz targets' code on
//! every `cargo test`: each input once crashed or widened coverage.

use std::path::{Path, PathBuf};

use lb_core::fuzzing;

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
fn fuzz_corpus_registration_replays() {
    let mut accepted = 0;
    for (path, data) in corpus("registration") {
        fuzzing::registration(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        accepted += usize::from(
            lb_core::Registration::from_json(&data)
                .and_then(|r| r.into_origin())
                .is_ok(),
        );
    }
    assert!(
        accepted > 0,
        "the corpus should hold at least one valid registration"
    );
}

#[test]
fn fuzz_corpus_stream_key_replays() {
    for (path, data) in corpus("stream_key") {
        fuzzing::stream_key(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn fuzz_corpus_fleet_token_replays() {
    let keys = lb_core::token::FleetKeys::new(b"fuzz", None).unwrap();
    let mut verified = 0;
    for (path, data) in corpus("fleet_token") {
        fuzzing::fleet_token(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let text = String::from_utf8_lossy(&data);
        if keys
            .verify(&text, lb_core::token::TokenKind::Hls, b"", 0)
            .is_ok()
        {
            verified += 1;
        }
    }
    assert!(
        verified > 0,
        "the corpus should hold a token signed with the fuzz key"
    );
}
