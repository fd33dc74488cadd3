//! Registration bodies (SRS's heartbeat JSON, `summaries` included) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = lb_core::fuzzing::registration(data) {
        panic!("{e}");
    }
});
