//! Playlist rewriting with every URI policy and small limits, and the token query helpers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = hls_rewrite::fuzzing::rewrite_options(data) {
        panic!("{e}");
    }
});
