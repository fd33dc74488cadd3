//! Percent-decoding and query parameter lookup on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = flv_http::fuzzing::query_text(data) {
        panic!("{e}");
    }
});
