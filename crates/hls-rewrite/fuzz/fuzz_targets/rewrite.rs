//! Playlist rewriting on arbitrary input, with its invariants (lines kept, URIs tagged,
//! idempotent).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = hls_rewrite::fuzzing::rewrite_playlist(data) {
        panic!("{e}");
    }
});
