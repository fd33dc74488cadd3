//! What the proxy counts, through the `metrics` facade: front-ends call these functions,
//! and the System API's `/metrics` renders them for Prometheus. Without an installed
//! recorder (an embedding tool that does not want them) every call is nearly free.
//!
//! Names and labels (every name starts with `proxy_`):
//! - `proxy_client_connections_total{protocol}`: clients accepted by a listener.
//! - `proxy_refusals_total{protocol,reason}`: clients turned away, by [`Refusal`] reason.
//! - `proxy_sessions_active{protocol}`: live relayed sessions (gauge).
//! - `proxy_bytes_total{protocol,direction}`: bytes relayed, `to_origin` or `to_client`.
//! - `proxy_origin_connect_failures_total{protocol}`: connects to an origin that failed.
//! - `proxy_origin_retries_total{protocol}`: clients re-placed on another origin after one.
//! - `proxy_origin_marks_total{reason}`: origins marked down (`probe`, `connect`) or up.
//! - `proxy_picks_total{balancer,outcome}`, `proxy_redis_errors_total{operation}`: from the
//!   balancer crates.
//! - `proxy_origin_*{origin}` gauges: set from the balancer when `/metrics` is scraped.

use metrics::{counter, gauge};

/// Why a client was turned away; the `reason` label of `proxy_refusals_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The global connection limit is reached.
    ConnectionLimit,
    /// The client's IP has as many connections as it may.
    IpLimit,
    /// The client did not say which stream it wants in time.
    HandshakeTimeout,
    /// The request is malformed or names no routable stream.
    BadRequest,
    /// No origin can take the stream (none alive, all draining or full).
    NoOrigin,
    /// The origin holding the stream is at its connection limit.
    OriginFull,
    /// No origin accepted the proxy's connection.
    OriginUnreachable,
    /// The origin answered with a refusal (e.g. an `on_publish` hook said no).
    OriginRefused,
}

impl Refusal {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::ConnectionLimit => "connection_limit",
            Refusal::IpLimit => "ip_limit",
            Refusal::HandshakeTimeout => "handshake_timeout",
            Refusal::BadRequest => "bad_request",
            Refusal::NoOrigin => "no_origin",
            Refusal::OriginFull => "origin_full",
            Refusal::OriginUnreachable => "origin_unreachable",
            Refusal::OriginRefused => "origin_refused",
        }
    }
}

/// A client accepted by the `protocol` listener (`rtmp`, `http`, `http-api`, `srt`,
/// `webrtc`).
pub fn client_accepted(protocol: &'static str) {
    counter!("proxy_client_connections_total", "protocol" => protocol).increment(1);
}

/// A client turned away.
pub fn refused(protocol: &'static str, reason: Refusal) {
    counter!("proxy_refusals_total", "protocol" => protocol, "reason" => reason.as_str())
        .increment(1);
}

/// A connect to an origin failed.
pub fn origin_connect_failed(protocol: &'static str) {
    counter!("proxy_origin_connect_failures_total", "protocol" => protocol).increment(1);
}

/// A client is being placed on another origin after a failed connect.
pub fn origin_retry(protocol: &'static str) {
    counter!("proxy_origin_retries_total", "protocol" => protocol).increment(1);
}

/// An origin was marked down (`probe`, `connect`) or back up (`up`).
pub fn origin_marked(reason: &'static str) {
    counter!("proxy_origin_marks_total", "reason" => reason).increment(1);
}

/// Live sessions of a protocol went up or down by one.
pub fn session_opened(protocol: &'static str) {
    gauge!("proxy_sessions_active", "protocol" => protocol).increment(1.0);
}

/// See [`session_opened`].
pub fn session_closed(protocol: &'static str) {
    gauge!("proxy_sessions_active", "protocol" => protocol).decrement(1.0);
}
