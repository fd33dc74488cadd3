//! Reaching an origin for one SRT connection: the stream is picked through
//! [`with_origins`], and the client's handshake replayed to the origin through a socket
//! of the session's own, [`srt_streamid::Session`] deciding what to send and when.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lb_core::{Endpoint, Origin, PickIntent, StreamKey};
use srt_streamid::{Outcome, RejectReason, Session};
use tokio::net::UdpSocket;

use super::{Clock, MAX_DATAGRAM};
use crate::metrics;
use crate::origin_link::LinkError;
use crate::origin_link::{is_local_exhaustion, local_exhaustion_seen, suspect, with_origins, Leg};
use crate::Context;

/// A handshake with an origin that got an answer.
pub(super) enum Dialed {
    /// Both legs up: the session holds the origin's answer.
    Connected { session: Session, socket: UdpSocket },
    /// The origin refused: the session holds its rejection.
    Rejected(Session),
}

/// What the client is told when no origin took it.
pub(super) fn reject_reason(e: &LinkError) -> RejectReason {
    match e {
        LinkError::Unreachable { .. } | LinkError::Failed { .. } => RejectReason::BadGateway,
        LinkError::Unavailable(_)
        | LinkError::NoEndpoint { .. }
        | LinkError::Full { .. }
        | LinkError::Local(_) => RejectReason::Unavailable,
    }
}

/// Picks the origin and replays the handshake to it, within the origin-connect timeout,
/// through [`with_origins`]. An origin that cannot be reached (its port unreachable, or
/// silent until the deadline) is marked down. One that said so at once (port
/// unreachable) is replaced ([`LinkError::Unreachable`]: with_origins picks again), with
/// a fresh timeout. A silent one is not ([`LinkError::Failed`]): its client has waited
/// the whole timeout already (libsrt's callers give up after 3 s), and its next attempt
/// is placed elsewhere by the mark. The balancer has until the deadline too.
pub(super) async fn connect(
    ctx: &Context,
    clock: Clock,
    template: &Session,
    key: &StreamKey,
    intent: PickIntent,
) -> Result<(Origin, Dialed), LinkError> {
    let timeout = ctx.live().origin_connect_timeout;
    // Until when the balancer may take to pick (nanoseconds on `clock`), or DIALING while
    // an attempt runs on a deadline of its own; an attempt that fails at once gives the
    // next pick a fresh timeout.
    let deadline = AtomicU64::new(nanos(clock.now() + timeout));
    let deadline = &deadline;
    let tried = AtomicU64::new(0);
    let tried = &tried;
    let linked = with_origins(ctx, key, intent, Leg::Srt, |origin| async move {
        let at = Duration::from_nanos(deadline.swap(DIALING, Ordering::Relaxed));
        if tried.fetch_add(1, Ordering::Relaxed) > 0 {
            tracing::info!(origin = %origin.id, "placing on another origin after a failed handshake");
        }
        let dialed = handshake(ctx, clock, template, &origin, at).await;
        if let Err(LinkError::Unreachable { .. }) = &dialed {
            deadline.store(nanos(clock.now() + timeout), Ordering::Relaxed);
        }
        dialed.map(|d| (origin, d))
    });
    let picking_too_long = async {
        loop {
            match deadline.load(Ordering::Relaxed) {
                DIALING => tokio::time::sleep(timeout).await,
                at if clock.now() >= Duration::from_nanos(at) => break,
                at => tokio::time::sleep_until(clock.at(Duration::from_nanos(at))).await,
            }
        }
    };
    tokio::select! {
        biased;
        linked = linked => linked.map(|(_, linked)| linked),
        () = picking_too_long => {
            metrics::refused("srt", metrics::Refusal::NoOrigin);
            let why = format!("the balancer did not answer within {timeout:?}");
            Err(LinkError::Unavailable(lb_core::Error::Unavailable(why)))
        }
    }
}

/// The pick deadline while an attempt has its own.
const DIALING: u64 = u64::MAX;

fn nanos(t: Duration) -> u64 {
    u64::try_from(t.as_nanos()).unwrap_or(DIALING - 1)
}

/// Replays the handshake to `origin`, to be answered by `deadline` (on `clock`).
async fn handshake(
    ctx: &Context,
    clock: Clock,
    template: &Session,
    origin: &Origin,
    deadline: Duration,
) -> Result<Dialed, LinkError> {
    let Some(endpoint) = origin.srt.first() else {
        let (origin, protocol) = (origin.id.to_string(), "srt");
        return Err(LinkError::NoEndpoint { origin, protocol });
    };
    let failed = |reason: String| async {
        let e = LinkError::Unreachable {
            origin: origin.id.to_string(),
            endpoint: endpoint.to_string(),
            reason,
        };
        suspect(ctx, origin, &format!("connect failed: {e}"), Leg::Srt).await;
        e
    };
    let addr = match resolve(endpoint, clock.at(deadline)).await {
        Ok(addr) => addr,
        Err(why) => return Err(failed(why).await),
    };
    let socket = match socket_toward(addr).await {
        Ok(socket) => socket,
        Err(e) if is_local_exhaustion(&e) => {
            local_exhaustion_seen(&e);
            return Err(LinkError::Local(e.to_string()));
        }
        Err(e) => return Err(failed(e.to_string()).await),
    };
    let mut session = template.clone();
    session.dial(addr, clock.now(), deadline);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        while let Some(packet) = session.poll_transmit() {
            if let Err(e) = socket.send(&packet).await {
                return Err(failed(io_reason(&e)).await);
            }
        }
        let wake = match (session.outcome(), session.poll_timeout()) {
            (Some(Outcome::Connected(_)), _) => return Ok(Dialed::Connected { session, socket }),
            (Some(Outcome::Rejected(_)), _) => return Ok(Dialed::Rejected(session)),
            (Some(Outcome::Refused(_)), _) | (None, None) => {
                let timeout = ctx.live().origin_connect_timeout;
                let reason =
                    format!("unreachable at {endpoint}: no handshake answer within {timeout:?}");
                suspect(ctx, origin, &format!("connect failed: {reason}"), Leg::Srt).await;
                return Err(LinkError::Failed {
                    origin: origin.id.to_string(),
                    reason,
                });
            }
            (None, Some(wake)) => wake,
        };
        tokio::select! {
            received = socket.recv(&mut buf) => match received {
                Ok(n) => {
                    let datagram = buf.get(..n).unwrap_or_default();
                    if let Err(e) = session.handle_datagram(clock.now(), datagram) {
                        tracing::debug!("srt: origin handshake ignored: {e}");
                    }
                }
                Err(e) => return Err(failed(io_reason(&e)).await),
            },
            () = tokio::time::sleep_until(clock.at(wake)) => session.handle_timeout(clock.now()),
        }
    }
}

fn io_reason(e: &std::io::Error) -> String {
    if e.kind() == ErrorKind::ConnectionRefused {
        "nothing listens there (port unreachable)".into()
    } else {
        e.to_string()
    }
}

async fn resolve(
    endpoint: &Endpoint,
    deadline: tokio::time::Instant,
) -> Result<SocketAddr, String> {
    if let Ok(ip) = endpoint.host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, endpoint.port));
    }
    let lookup = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port));
    match tokio::time::timeout_at(deadline, lookup).await {
        Ok(Ok(mut addrs)) => addrs.next().ok_or_else(|| "the name has no address".into()),
        Ok(Err(e)) => Err(format!("cannot resolve: {e}")),
        Err(_) => Err("name resolution timed out".into()),
    }
}

/// A socket of the session's own, connected to the origin: the kernel delivers only the
/// origin's packets to it, and reports an unreachable port.
async fn socket_toward(origin: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: IpAddr = match origin.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(ip) if ip.is_loopback() => Ipv6Addr::LOCALHOST.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind(SocketAddr::new(local, 0)).await?;
    socket.connect(origin).await?;
    Ok(socket)
}
