//! The proxy's client session towards an origin, and the relay after it, fed arbitrary
//! origin bytes.
#![no_main]

#[path = "../common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::client_session(data);
});
