//! End-to-end tests: the real `proxy-server` binary on ephemeral loopback ports, driven
//! by real programs (ffmpeg, ffprobe, redis-server, nginx) where one exists.
//!
//! One test binary for the crate; each area is a module.

mod fleet;
mod harness;
mod media_http;
mod rtmp;
mod srt;
mod system_api;
mod webrtc;
