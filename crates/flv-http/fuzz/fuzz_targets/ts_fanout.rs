//! The TS fan-out and random-access finder on arbitrary bytes, split arbitrarily.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = flv_http::fuzzing::ts_fanout(data) {
        panic!("{e}");
    }
});
