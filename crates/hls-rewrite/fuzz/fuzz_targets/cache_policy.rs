//! The edge cache's policy and LRU on arbitrary input (an origin's Cache-Control, a
//! playlist's timing tags, a request's query), with their invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = hls_rewrite::fuzzing::cache_policy(data) {
        panic!("{e}");
    }
});
