//! HTTP/1 request and response heads (the raw media path's) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = flv_http::fuzzing::heads(data) {
        panic!("{e}");
    }
});
