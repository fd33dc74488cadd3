//! The FLV/RTMP fan-out on arbitrary messages, parts and viewers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = flv_http::fuzzing::fanout(data) {
        panic!("{e}");
    }
});
