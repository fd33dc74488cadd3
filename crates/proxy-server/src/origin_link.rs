//! Reaching the origin of a stream: ask the balancer, then connect to one of the origin's
//! endpoints for the protocol, within the origin-connect timeout. An origin that does not
//! accept the connection is marked down for `suspect_for` and the stream picked again
//! ([`link_tcp`]), so a dead origin costs a client a delay (none for a refused connect, the
//! connect timeout for a silent origin), not an error.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use lb_core::token::{Claims, Refused, TokenKind};
use lb_core::{
    Candidate, Endpoint, Origin, OriginId, OriginStatus, PickIntent, Rendezvous, StreamKey,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::metrics::{self, Refusal};
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
    /// The origin holding the stream already has its `max_connections` through this proxy.
    #[error("origin {origin} is at its connection limit ({max})")]
    Full { origin: String, max: u32 },
    /// The origin accepted the connection, then failed the request (closed it, or sent
    /// something that is not HTTP).
    #[error("origin {origin} failed: {reason}")]
    Failed { origin: String, reason: String },
    /// The proxy could not open a connection for reasons of its own (out of file
    /// descriptors or local ports): the origin is not to blame and is not marked.
    #[error("the proxy is short of resources: {0}")]
    Local(String),
}

impl LinkError {
    /// The `reason` label this error is counted under when it turns a client away.
    pub fn refusal(&self) -> Refusal {
        match self {
            LinkError::Unavailable(_) => Refusal::NoOrigin,
            LinkError::NoEndpoint { .. }
            | LinkError::Unreachable { .. }
            | LinkError::Failed { .. } => Refusal::OriginUnreachable,
            LinkError::Full { .. } => Refusal::OriginFull,
            LinkError::Local(_) => Refusal::LocalResources,
        }
    }
}

/// The two ends of a client's TCP connection to the proxy: what a PROXY protocol header
/// tells the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddrs {
    /// The client.
    pub peer: SocketAddr,
    /// The proxy's address the client connected to.
    pub local: SocketAddr,
}

impl ClientAddrs {
    /// The addresses of an accepted connection from `peer`.
    pub fn of(stream: &TcpStream, peer: SocketAddr) -> Self {
        ClientAddrs {
            peer,
            // Cannot fail on a connected socket; the peer is a harmless stand-in.
            local: stream.local_addr().unwrap_or(peer),
        }
    }
}

/// A protocol's leg to an origin: which of the origin's endpoints it uses, how it is
/// named in logs and metrics, and whether it starts with a PROXY protocol header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// RTMP, to the origin's `rtmp` endpoints.
    Rtmp,
    /// HTTP-FLV/TS and HLS, to its `http` endpoints.
    Http,
    /// WHIP/WHEP signalling, to its HTTP API (`api`).
    Api,
    /// SRT, to its `srt` endpoints.
    Srt,
}

impl Leg {
    /// The origin's endpoints for this leg.
    pub fn endpoints(self, origin: &Origin) -> &[Endpoint] {
        match self {
            Leg::Rtmp => &origin.rtmp,
            Leg::Http => &origin.http,
            Leg::Api => &origin.api,
            Leg::Srt => &origin.srt,
        }
    }

    /// The `protocol` label of logs and metrics: the client listener's name.
    pub fn label(self) -> &'static str {
        match self {
            Leg::Rtmp => "rtmp",
            Leg::Http => "http",
            Leg::Api => "http-api",
            Leg::Srt => "srt",
        }
    }

    /// Whether this leg starts with a PROXY protocol header, as configured.
    pub fn proxy_header(self, legs: &crate::config::ProxyProtocolLegs) -> bool {
        match self {
            Leg::Rtmp => legs.rtmp,
            Leg::Http => legs.http,
            Leg::Api => legs.api,
            Leg::Srt => false,
        }
    }
}

/// The origin the balancer places the stream on. While the balancer's shared state is
/// unreachable, a stream this proxy routed recently keeps its origin, and any other is
/// placed by rendezvous over the origins last known ([`fallback_pick`]), as every proxy of
/// the fleet places it.
pub async fn pick(ctx: &Context, key: &StreamKey, intent: PickIntent) -> Result<Origin, LinkError> {
    let started = Instant::now();
    let mut picked = ctx.balancer.pick(key, intent).await;
    metrics::pick_took(ctx.balancer.name(), started.elapsed());
    if matches!(picked, Err(lb_core::Error::NoOrigin { registered: 0, .. }))
        && !ctx.live().static_origins.is_empty()
    {
        // The shared state was wiped (a Redis restart): put the static origins back now
        // rather than at the next periodic check.
        crate::upkeep::restore_static_origins(ctx).await;
        picked = ctx.balancer.pick(key, intent).await;
    }
    match picked {
        Ok(origin) => {
            tracing::debug!(stream = %key, origin = %origin.id, ?intent, "picked");
            ctx.recent.placements.remember(key.clone(), &origin);
            Ok(origin)
        }
        Err(e) if state_lost(&e) => match ctx.recent.placements.recall(key) {
            Some(origin) => Ok(origin),
            None => match fallback_pick(ctx, key, intent) {
                Some(origin) => {
                    tracing::warn!(stream = %key, origin = %origin.id, "balancer unavailable ({e}): placed by rendezvous over the last known origins");
                    ctx.recent.placements.remember(key.clone(), &origin);
                    Ok(origin)
                }
                None => Err(LinkError::Unavailable(e)),
            },
        },
        Err(e) => Err(LinkError::Unavailable(e)),
    }
}

/// The origins new streams are placed over while the balancer's shared state cannot be
/// reached: those the balancer last read, and the configured static origins it may not
/// have read (a Redis restarted empty).
pub fn fallback_origins(ctx: &Context) -> Vec<OriginStatus> {
    let mut statuses = ctx.balancer.last_known_origins().unwrap_or_default();
    for (origin, draining) in &ctx.config.static_origins {
        if !statuses.iter().any(|s| s.origin.id == origin.id) {
            statuses.push(OriginStatus {
                origin: origin.clone(),
                alive: true,
                draining: *draining,
                since_heartbeat: Duration::ZERO,
                streams: 0,
                down: None,
                connections: 0,
            });
        }
    }
    statuses
}

/// Pure rendezvous (no load bound: the counts of a stale snapshot differ between proxies)
/// over the [`fallback_origins`] that were alive (and, for a publisher, not draining): the
/// same answer on every proxy that last saw the same origins.
fn fallback_pick(ctx: &Context, key: &StreamKey, intent: PickIntent) -> Option<Origin> {
    let statuses = fallback_origins(ctx);
    let candidates: Vec<Candidate<'_>> = statuses
        .iter()
        .filter(|s| s.alive && !(s.draining && intent == PickIntent::Publish))
        .map(|s| Candidate {
            origin: &s.origin,
            streams: 0,
            connections: 0,
        })
        .collect();
    let first = *Rendezvous::order(key, &candidates).first()?;
    ::metrics::counter!("proxy_fallback_placements_total").increment(1);
    Some(candidates[first].origin.clone())
}

/// Seconds since the Unix epoch, as tokens count them.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A signed HLS affinity token for a stream on an origin, when the fleet has a secret
/// (`PROXY_FLEET_SECRET`); `None` otherwise (or for an origin id too long to carry), and
/// the caller makes and stores a token as before.
pub fn signed_hls_token(ctx: &Context, key: &StreamKey, origin: &Origin) -> Option<String> {
    let live = ctx.live();
    let keys = live.fleet_keys.as_ref()?;
    let expires = unix_now().saturating_add(live.fleet_token_ttl.as_secs());
    keys.sign(
        &Claims {
            kind: TokenKind::Hls,
            origin: origin.id.clone(),
            subject: key.to_string(),
            expires: u32::try_from(expires).unwrap_or(u32::MAX),
        },
        b"",
    )
}

/// The token to put in a playlist a client fetched with `token`: a signed one renewed
/// (a fresh expiry, so a player that keeps polling keeps valid segment URLs), any other
/// as it is.
pub fn renewed_hls_token(ctx: &Context, token: &str) -> String {
    let live = ctx.live();
    let renewed = live.fleet_keys.as_ref().and_then(|keys| {
        let claims = keys.verify(token, TokenKind::Hls, b"", unix_now()).ok()?;
        let expires = unix_now().saturating_add(live.fleet_token_ttl.as_secs());
        keys.sign(
            &Claims {
                expires: u32::try_from(expires).unwrap_or(u32::MAX),
                ..claims
            },
            b"",
        )
    });
    renewed.unwrap_or_else(|| token.to_owned())
}

/// Whether `token` is a signed HLS token that is authentic but expired: a playlist request
/// carrying one is placed again as if it carried none (a player back from a long pause).
pub fn hls_token_expired(ctx: &Context, token: &str) -> bool {
    ctx.live().fleet_keys.as_ref().is_some_and(|keys| {
        keys.verify(token, TokenKind::Hls, b"", unix_now()) == Err(Refused::Expired)
    })
}

/// An origin by id if it is alive: the balancer's answer or, while it cannot be asked (or
/// has forgotten the origin), the [`fallback_origins`].
pub async fn live_origin(ctx: &Context, id: &OriginId) -> Result<Option<Origin>, LinkError> {
    match ctx.balancer.origin(id).await {
        Ok(Some(status)) => Ok(status.alive.then_some(status.origin)),
        Ok(None) | Err(lb_core::Error::Unavailable(_)) => Ok(fallback_origins(ctx)
            .into_iter()
            .find(|s| &s.origin.id == id && s.alive)
            .map(|s| s.origin)),
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

/// The live origin of an HLS affinity token, with the same fallback as [`pick`]. A token
/// signed with the fleet's secret names its origin itself: no store is asked.
pub async fn origin_of_hls_token(ctx: &Context, token: &str) -> Result<Option<Origin>, LinkError> {
    if let Some(keys) = ctx.live().fleet_keys.clone() {
        match keys.verify(token, TokenKind::Hls, b"", unix_now()) {
            Ok(claims) => return live_origin(ctx, &claims.origin).await,
            // Not a signed token: one stored before the fleet had a secret.
            Err(Refused::Malformed) => {}
            Err(Refused::Forged | Refused::Expired) => return Ok(None),
        }
    }
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
    leg: Leg,
) -> Result<(TcpStream, Endpoint), LinkError> {
    let protocol = leg.label();
    let mut last = None;
    for endpoint in leg.endpoints(origin) {
        let started = Instant::now();
        let attempt = tokio::time::timeout(
            ctx.live().origin_connect_timeout,
            TcpStream::connect((endpoint.host.as_str(), endpoint.port)),
        )
        .await;
        let reason = match attempt {
            Ok(Ok(stream)) => {
                metrics::origin_connect_took(protocol, started.elapsed());
                let _ = stream.set_nodelay(true);
                return Ok((stream, endpoint.clone()));
            }
            Ok(Err(e)) if is_local_exhaustion(&e) => {
                local_exhaustion_seen(&e);
                return Err(LinkError::Local(e.to_string()));
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {:?}", ctx.live().origin_connect_timeout),
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

/// Forgets the placement a player's pick just made, when the origin said it has no such
/// stream (an HTTP error, a refused RTMP play, a rejected SRT request, a refused WHEP
/// offer): a play of a stream that does not exist leaves nothing behind. The balancer
/// keeps placements a publisher made, and placements on other origins; a publisher's
/// refusal is left to expire (see [`lb_core::BalancerConfig::tentative_ttl`]).
pub async fn release_refused_play(
    ctx: &Context,
    intent: PickIntent,
    key: &StreamKey,
    origin: &lb_core::OriginId,
) {
    if intent != PickIntent::Play {
        return;
    }
    if let Err(e) = ctx.balancer.release(key, origin).await {
        tracing::debug!(stream = %key, %origin, "cannot release the placement: {e}");
    }
}

/// Whether a failed `socket()`, `connect()` or `bind()` says the proxy itself is short of
/// something (file descriptors, local ports, kernel memory), not that the peer is at fault.
/// Such a failure never marks an origin down: with a low descriptor limit a handful of
/// idle clients would otherwise take every healthy origin down, fleet-wide.
pub fn is_local_exhaustion(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::EADDRNOTAVAIL | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Logs a local shortage, at most once a second (the refusal is counted where the client
/// is turned away).
pub fn local_exhaustion_seen(e: &std::io::Error) {
    static THROTTLE: std::sync::OnceLock<crate::limits::LogThrottle> = std::sync::OnceLock::new();
    let throttle = THROTTLE.get_or_init(|| crate::limits::LogThrottle::new(Duration::from_secs(1)));
    if let Some(held_back) = throttle.allow() {
        tracing::error!(held_back, "the proxy is short of resources, no origin is blamed: {e} (raise the descriptor limit, LimitNOFILE, or lower the connection limits)");
    }
}

/// Picks the stream's origin and connects to it for `client`; an origin that does not
/// accept is marked down (see [`connect_to`]) and the stream picked again, until
/// `origin_connect_attempts` origins have been tried or the balancer offers one already
/// tried (it ignores marks, or has no other). The client then gets the last connect error,
/// counted as a refusal.
pub async fn link_tcp(
    ctx: &Context,
    key: &StreamKey,
    intent: PickIntent,
    leg: Leg,
    client: ClientAddrs,
) -> Result<(Origin, TcpStream, Endpoint), LinkError> {
    let linked = with_origins(ctx, key, intent, leg, |origin| async move {
        connect_to(ctx, &origin, leg, client).await
    })
    .await;
    linked.map(|(origin, (stream, endpoint))| (origin, stream, endpoint))
}

/// Picks the stream's origin and runs `attempt` on it. An attempt that fails with
/// [`LinkError::Unreachable`] (it marked the origin down, see [`suspect`]) is followed by
/// another pick, until `origin_connect_attempts` origins have been tried or the balancer
/// offers one already tried (it ignores marks, or has no other). The client then gets the
/// last failure, counted as a refusal.
pub async fn with_origins<T, F, Fut>(
    ctx: &Context,
    key: &StreamKey,
    intent: PickIntent,
    leg: Leg,
    mut attempt: F,
) -> Result<(Origin, T), LinkError>
where
    F: FnMut(Origin) -> Fut,
    Fut: std::future::Future<Output = Result<T, LinkError>>,
{
    let protocol = leg.label();
    let attempts = ctx.live().origin_connect_attempts;
    let mut tried: Vec<lb_core::OriginId> = Vec::new();
    let mut failed: Option<LinkError> = None;
    let linked = loop {
        let origin = match (pick(ctx, key, intent).await, failed.take()) {
            (Ok(origin), None) => origin,
            (Ok(origin), Some(_)) if !tried.contains(&origin.id) => {
                metrics::origin_retry(protocol);
                tracing::info!(stream = %key, origin = %origin.id, attempt = tried.len() + 1, "placing on another origin after a failed connect");
                origin
            }
            // No other origin (or a balancer that ignores marks): why the last one failed
            // says more than "none left".
            (_, Some(failure)) => break Err(failure),
            (Err(e), None) => break Err(e),
        };
        if let Err(e) = check_capacity(ctx, &origin) {
            break Err(e);
        }
        match attempt(origin.clone()).await {
            Ok(done) => break Ok((origin, done)),
            Err(e @ LinkError::Unreachable { .. }) if tried.len() + 1 < attempts => {
                tried.push(origin.id);
                failed = Some(e);
            }
            Err(e) => break Err(e),
        }
    };
    if let Err(e) = &linked {
        metrics::refused(protocol, e.refusal());
    }
    linked
}

/// Refuses a client when this proxy already relays `max_connections` sessions to the
/// origin (the balancer keeps new streams off full origins fleet-wide; this holds the
/// limit for streams already placed there).
pub fn check_capacity(ctx: &Context, origin: &Origin) -> Result<(), LinkError> {
    match origin.max_connections {
        Some(max) if ctx.sessions.count_for_origin(&origin.id) >= max as usize => {
            Err(LinkError::Full {
                origin: origin.id.to_string(),
                max,
            })
        }
        _ => Ok(()),
    }
}

/// Connects to `origin` (the first of `endpoints` that accepts) for `client`, sending the
/// PROXY protocol header first when the leg is configured for it. An origin that does
/// not accept is counted and marked down for `suspect_for` (unless that is zero), so that
/// the balancer places the next client elsewhere.
pub async fn connect_to(
    ctx: &Context,
    origin: &Origin,
    leg: Leg,
    client: ClientAddrs,
) -> Result<(TcpStream, Endpoint), LinkError> {
    let legs = ctx.live().origin_proxy_protocol;
    let linked = match connect_tcp(ctx, origin, leg).await {
        Ok((mut stream, endpoint)) if leg.proxy_header(&legs) => {
            let header = crate::proxy_protocol::header(legs.version, client.peer, client.local);
            match stream.write_all(&header).await {
                Ok(()) => Ok((stream, endpoint)),
                Err(e) => Err(LinkError::Unreachable {
                    origin: origin.id.to_string(),
                    endpoint: endpoint.to_string(),
                    reason: format!("writing the PROXY protocol header: {e}"),
                }),
            }
        }
        linked => linked,
    };
    if let Err(LinkError::Unreachable {
        endpoint, reason, ..
    }) = &linked
    {
        suspect(
            ctx,
            origin,
            &format!("connect failed: {endpoint}: {reason}"),
            leg,
        )
        .await;
    }
    linked
}

/// Counts a failed connect and holds the origin down for `suspect_for`.
pub async fn suspect(ctx: &Context, origin: &Origin, reason: &str, leg: Leg) {
    let protocol = leg.label();
    metrics::origin_connect_failed(protocol);
    let hold = ctx.live().suspect_for;
    if hold.is_zero() {
        return;
    }
    match ctx.balancer.mark_down(&origin.id, reason, hold).await {
        Ok(()) => {
            metrics::origin_marked("connect");
            tracing::warn!(origin = %origin.id, ?hold, "origin marked down: {reason}");
        }
        Err(e) => {
            tracing::warn!(origin = %origin.id, "cannot mark the origin down ({reason}): {e}")
        }
    }
}
