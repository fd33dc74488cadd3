//! AMF0 and command decoding of arbitrary bytes, with a round-trip check.
#![no_main]

#[path = "../common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::amf0_decode(data));
