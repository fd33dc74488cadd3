//! Request classification on arbitrary method, path, query and host strings.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = flv_http::fuzzing::classify_request(data) {
        panic!("{e}");
    }
});
