//! Every stream-key constructor (RTMP, HTTP, WHIP/WHEP query, SRT streamid, parts) on
//! arbitrary strings.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = lb_core::fuzzing::stream_key(data) {
        panic!("{e}");
    }
});
