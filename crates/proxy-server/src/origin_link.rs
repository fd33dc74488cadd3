//! Reaching the origin of a stream: ask the balancer, then connect to one of the origin's
//! endpoints for the protocol, within the origin-connect timeout.

use lb_core::{Endpoint, Origin, PickIntent, StreamKey};
use tokio::net::TcpStream;

use crate::Context;

/// Why a client could not be linked to an origin. Front-ends turn it into their
/// protocol's refusal: no origin is "unavailable" (HTTP 503, SRT 1503), an unreachable
/// origin is "bad gateway" (HTTP 502, SRT 1502).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The balancer has no origin for the stream, or cannot be asked.
    #[error("{0}")]
    Unavailable(lb_core::Error),
    /// The chosen origin has no endpoint for this protocol.
    #[error("origin {origin} has no {protocol} endpoint")]
    NoEndpoint { origin: String, protocol: &'static str },
    /// The chosen origin did not accept the connection in time.
    #[error("origin {origin} unreachable at {endpoint}: {reason}")]
    Unreachable { origin: String, endpoint: String, reason: String },
}

/// The origin the balancer places the stream on.
pub async fn pick(ctx: &Context, key: &StreamKey, intent: PickIntent) -> Result<Origin, LinkError> {
    let origin = ctx.balancer.pick(key, intent).await.map_err(LinkError::Unavailable)?;
    tracing::debug!(stream = %key, origin = %origin.id, ?intent, "picked");
    Ok(origin)
}

/// Connects to the first of `endpoints` that accepts within the origin-connect timeout.
pub async fn connect_tcp(ctx: &Context, origin: &Origin, endpoints: &[Endpoint], protocol: &'static str) -> Result<(TcpStream, Endpoint), LinkError> {
    let mut last = None;
    for endpoint in endpoints {
        let attempt = tokio::time::timeout(ctx.config.origin_connect_timeout, TcpStream::connect((endpoint.host.as_str(), endpoint.port))).await;
        let reason = match attempt {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, endpoint.clone()));
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {:?}", ctx.config.origin_connect_timeout),
        };
        tracing::warn!(origin = %origin.id, %endpoint, protocol, "origin connect failed: {reason}");
        last = Some(LinkError::Unreachable { origin: origin.id.to_string(), endpoint: endpoint.to_string(), reason });
    }
    Err(last.unwrap_or_else(|| LinkError::NoEndpoint { origin: origin.id.to_string(), protocol }))
}
