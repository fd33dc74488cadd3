//! End-to-end tests: the real `proxy-server` binary on ephemeral loopback ports, driven
//! by real programs (ffmpeg, ffprobe, redis-server, nginx) where one exists.
//!
//! One test binary for the crate; each area is a module.

mod console;
mod deploy;
mod edge;
mod edge_hls;
mod failover;
mod fleet;
mod harness;
mod hostile;
mod hostile_rtmp;
mod limits;
mod media_http;
mod media_raw;
mod observability;
mod rendezvous;
mod rtmp;
mod srt;
mod system_api;
mod tls;
mod webrtc;
