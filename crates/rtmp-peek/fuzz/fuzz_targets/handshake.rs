//! Server and client handshakes, and a server session from its first byte, fed arbitrary
//! bytes.
#![no_main]

#[path = "../common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::handshake(data);
});
