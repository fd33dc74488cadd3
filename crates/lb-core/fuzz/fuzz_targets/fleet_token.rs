//! The fleet token parser and verifier (`lb_core::token`) on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = lb_core::fuzzing::fleet_token(data) {
        panic!("{e}");
    }
});
