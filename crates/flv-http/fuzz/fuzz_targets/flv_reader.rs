//! The FLV reader on arbitrary bytes, read whole and split into arbitrary chunks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = flv_http::fuzzing::flv_reader(data) {
        panic!("{e}");
    }
});
