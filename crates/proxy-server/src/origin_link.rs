//! Reaching the origin of a stream: ask the balancer, then connect to one of the origin's
//! endpoints for the protocol, within the origin-connect timeout.

use std::time::{Duration, Instant};

use dashmap::DashMap;
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
    NoEndpoint {
        origin: String,
        protocol: &'static str,
    },
    /// The chosen origin did not accept the connection in time.
    #[error("origin {origin} unreachable at {endpoint}: {reason}")]
    Unreachable {
        origin: String,
        endpoint: String,
        reason: String,
    },
}

/// The origin the balancer places the stream on. While the balancer's shared state is
/// unreachable, a stream this proxy routed recently keeps its origin.
pub async fn pick(ctx: &Context, key: &StreamKey, intent: PickIntent) -> Result<Origin, LinkError> {
    let mut picked = ctx.balancer.pick(key, intent).await;
    if matches!(picked, Err(lb_core::Error::NoOrigin { registered: 0, .. }))
        && !ctx.config.static_origins.is_empty()
    {
        // The shared state was wiped (a Redis restart): put the static origins back now
        // rather than at the next periodic check.
        crate::restore_static_origins(ctx).await;
        picked = ctx.balancer.pick(key, intent).await;
    }
    match picked {
        Ok(origin) => {
            tracing::debug!(stream = %key, origin = %origin.id, ?intent, "picked");
            ctx.recent.placements.remember(key.clone(), &origin);
            Ok(origin)
        }
        Err(e) if state_lost(&e) => ctx
            .recent
            .placements
            .recall(key)
            .ok_or(LinkError::Unavailable(e)),
        Err(e) => Err(LinkError::Unavailable(e)),
    }
}

/// Whether the balancer cannot be asked, or has forgotten every origin (a Redis restarted
/// without persistence, before the origins' next heartbeats): then recent routes serve.
fn state_lost(e: &lb_core::Error) -> bool {
    matches!(
        e,
        lb_core::Error::Unavailable(_) | lb_core::Error::NoOrigin { registered: 0, .. }
    )
}

/// The live origin of an HLS affinity token, with the same fallback as [`pick`].
pub async fn origin_of_hls_token(ctx: &Context, token: &str) -> Result<Option<Origin>, LinkError> {
    let session = match ctx.balancer.hls(token).await {
        Ok(session) => session,
        Err(e @ lb_core::Error::Unavailable(_)) => {
            return ctx
                .recent
                .tokens
                .recall(token)
                .map(Some)
                .ok_or(LinkError::Unavailable(e))
        }
        Err(e) => return Err(LinkError::Unavailable(e)),
    };
    let Some(session) = session else {
        // A token this proxy issued or used lately, that the shared store lost.
        return Ok(ctx.recent.tokens.recall(token));
    };
    let origin = match ctx
        .balancer
        .origin(&session.origin)
        .await
        .map_err(LinkError::Unavailable)?
    {
        Some(status) => status.alive.then_some(status.origin),
        // Known to the session but not to the balancer: forgotten, not dead.
        None => ctx.recent.tokens.recall(token),
    };
    if let Some(origin) = &origin {
        ctx.recent.tokens.remember(token.to_owned(), origin);
    }
    Ok(origin)
}

/// What this proxy routed lately, kept only to ride out an unreachable balancer (a Redis
/// restart) without breaking viewers who come back for more of the same stream.
#[derive(Default)]
pub struct RecentRoutes {
    pub placements: Recent<StreamKey>,
    pub tokens: Recent<String>,
}

/// Entries older than this are not trusted.
const RECENT_FOR: Duration = Duration::from_secs(120);
/// Most entries kept; beyond it new routes are not remembered until a sweep.
const RECENT_MAX: usize = 100_000;

/// A bounded map of recent routes.
pub struct Recent<K: std::hash::Hash + Eq>(DashMap<K, (Origin, Instant)>);

impl<K: std::hash::Hash + Eq> Default for Recent<K> {
    fn default() -> Self {
        Recent(DashMap::new())
    }
}

impl<K: std::hash::Hash + Eq + std::fmt::Debug> Recent<K> {
    pub fn remember(&self, key: K, origin: &Origin) {
        if self.0.len() < RECENT_MAX || self.0.contains_key(&key) {
            self.0.insert(key, (origin.clone(), Instant::now()));
        }
    }

    pub fn recall<Q>(&self, key: &Q) -> Option<Origin>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let entry = self.0.get(key)?;
        let (origin, at) = entry.value();
        (at.elapsed() < RECENT_FOR).then(|| {
            tracing::info!(origin = %origin.id, "balancer unavailable: using this proxy's recent route");
            origin.clone()
        })
    }

    /// Forgets what is too old to be trusted.
    pub fn sweep(&self) {
        self.0.retain(|_, (_, at)| at.elapsed() < RECENT_FOR);
    }
}

/// Connects to the first of `endpoints` that accepts within the origin-connect timeout.
pub async fn connect_tcp(
    ctx: &Context,
    origin: &Origin,
    endpoints: &[Endpoint],
    protocol: &'static str,
) -> Result<(TcpStream, Endpoint), LinkError> {
    let mut last = None;
    for endpoint in endpoints {
        let attempt = tokio::time::timeout(
            ctx.config.origin_connect_timeout,
            TcpStream::connect((endpoint.host.as_str(), endpoint.port)),
        )
        .await;
        let reason = match attempt {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, endpoint.clone()));
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {:?}", ctx.config.origin_connect_timeout),
        };
        tracing::warn!(origin = %origin.id, %endpoint, protocol, "origin connect failed: {reason}");
        last = Some(LinkError::Unreachable {
            origin: origin.id.to_string(),
            endpoint: endpoint.to_string(),
            reason,
        });
    }
    Err(last.unwrap_or_else(|| LinkError::NoEndpoint {
        origin: origin.id.to_string(),
        protocol,
    }))
}
