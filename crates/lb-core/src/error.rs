use crate::OriginId;

/// Everything that can go wrong in naming a stream, describing an origin or balancing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request does not name a stream the proxy can route.
    #[error("invalid stream name: {0}")]
    InvalidStream(String),
    /// A registration body is not what SRS sends (malformed JSON, a missing or bad field).
    #[error("invalid registration: {0}")]
    InvalidRegistration(String),
    /// An endpoint (`1935`, `tcp://0.0.0.0:1935`, ...) cannot be understood.
    #[error("invalid endpoint {value:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// No origin can take the stream.
    #[error(
        "no origin available: {registered} known, {alive} alive, {accepting} accepting new streams"
    )]
    NoOrigin {
        /// Origins known to the balancer.
        registered: usize,
        /// Of those, how many are alive.
        alive: usize,
        /// Of those, how many accept new streams (alive, not draining, not full).
        accepting: usize,
    },
    /// A health mark or a connection report the balancer refuses (a proxy id too long,
    /// too many entries).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// An origin named by id is not known.
    #[error("unknown origin {0}")]
    UnknownOrigin(OriginId),
    /// A fleet routing token is refused (see [`crate::token`]).
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// The balancer's shared state cannot be reached (e.g. Redis is down).
    #[error("balancer state unavailable: {0}")]
    Unavailable(String),
}
