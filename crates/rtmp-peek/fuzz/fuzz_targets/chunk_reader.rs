//! Chunk reader, ServerSession and Relay fed arbitrary bytes.
#![no_main]

#[path = "../common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::chunk_reader(data));
