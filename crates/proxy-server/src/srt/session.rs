//! One SRT connection, in one task: the origin is picked, the client's handshake replayed
//! to it through a socket of the session's own, and then that socket is read and its
//! packets relayed to the client until the session ends.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lb_core::{Endpoint, Origin, OriginId, PickIntent, StreamKey};
use srt_streamid::packet::control_type;
use srt_streamid::{
    classify, dest_socket_id, Accepted, ControlHeader, Handshake, Listener, Mode, OriginStep,
    PacketKind, RejectReason, Relay, Session, SessionIds, HEADER_LEN,
};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{wall_clock, ClientKey, Event, Route, DRAIN, MAX_DATAGRAM};
use crate::limits::IpGuard;
use crate::metrics;
use crate::origin_link::{check_capacity, pick, suspect};
use crate::sessions::{Protocol, SessionGuard, Traffic};
use crate::Context;

/// How often a handshake packet the origin has not answered is sent again (libsrt's pace).
const RESEND: Duration = Duration::from_millis(250);

/// What the receive loop hands to a new session's task.
pub(super) struct Setup {
    pub ctx: Arc<Context>,
    /// The client-facing socket.
    pub front: Arc<UdpSocket>,
    pub listener: Arc<Listener>,
    pub events: mpsc::Sender<Event>,
    pub client: ClientKey,
    /// The client's conclusion, whole.
    pub conclusion: Vec<u8>,
    /// When it arrived: the handshakes replayed to the origin carry its timestamp plus
    /// the time since (see `srt_streamid::proxy`).
    pub received: Instant,
    pub key: StreamKey,
    pub mode: Mode,
    /// The proxy's socket id for this connection, on both sides.
    pub id: u32,
    pub serial: u64,
    /// The client IP's slot, held for as long as the session runs.
    pub ip_slot: IpGuard,
}

/// Why the client is turned away.
struct Refusal {
    reason: RejectReason,
    /// The origin's own rejection, translated; `None` for a refusal of the proxy's.
    from_origin: Option<Vec<u8>>,
    why: String,
    /// The origin is at its connection limit.
    full: bool,
}

impl Refusal {
    fn local(reason: RejectReason, why: impl Into<String>) -> Self {
        Refusal {
            reason,
            from_origin: None,
            why: why.into(),
            full: false,
        }
    }
}

/// Both legs up.
struct Up {
    origin: Origin,
    endpoint: SocketAddr,
    socket: Arc<UdpSocket>,
    to_client: Vec<u8>,
    relay: Relay,
}

/// Runs one connection from its accepted conclusion to its end.
pub(super) async fn run(setup: Setup) {
    let Ok(conclusion) = Handshake::parse(&setup.conclusion) else {
        // Parsed once already by the receive loop; give the id back regardless.
        let _ = setup
            .events
            .send(Event::Ended {
                id: setup.id,
                serial: setup.serial,
            })
            .await;
        return;
    };
    let intent = match setup.mode {
        Mode::Publish | Mode::Bidirectional => PickIntent::Publish,
        Mode::Request => PickIntent::Play,
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let up = match connect(&setup, &conclusion, intent, &mut buf).await {
        Ok(up) => up,
        Err(refusal) => {
            let counted = match (&refusal.from_origin, refusal.reason) {
                (Some(_), _) => metrics::Refusal::OriginRefused,
                (None, RejectReason::BadGateway) => metrics::Refusal::OriginUnreachable,
                (None, _) if refusal.full => metrics::Refusal::OriginFull,
                (None, _) => metrics::Refusal::NoOrigin,
            };
            metrics::refused("srt", counted);
            let reply = refusal.from_origin.unwrap_or_else(|| {
                let (client, _) = setup.client;
                setup
                    .listener
                    .reject(&conclusion, client, refusal.reason, wall_clock())
                    .to_vec()
            });
            tracing::info!(
                stream = %setup.key,
                mode = ?setup.mode,
                reject = refusal.reason.code(),
                "SRT connection refused: {}",
                refusal.why
            );
            let answered = Event::Answered {
                client: setup.client,
                serial: setup.serial,
                reply,
                route: None,
            };
            let _ = setup.events.send(answered).await;
            return;
        }
    };
    let Setup {
        ctx,
        front,
        events,
        client,
        key,
        mode,
        id,
        serial,
        ip_slot: _ip_slot,
        ..
    } = setup;
    let guard = ctx.sessions.open(
        Protocol::Srt,
        key.clone(),
        up.origin.id.clone(),
        client.0,
        intent,
    );
    let traffic = guard.traffic().clone();
    let cut = guard.cut().clone();
    let stop = CancellationToken::new();
    let (answered_tx, answered_rx) = oneshot::channel();
    let route = Route {
        serial,
        client: client.0,
        origin_socket_id: up.relay.origin_socket_id,
        origin: up.socket.clone(),
        traffic: traffic.clone(),
        stop: stop.clone(),
        closing: false,
        answered: Some(answered_tx),
    };
    tracing::info!(
        stream = %key,
        origin = %up.origin.id,
        endpoint = %up.endpoint,
        ?mode,
        "SRT session started"
    );
    let mut live = Live {
        front,
        origin: up.socket,
        client: client.0,
        relay: up.relay,
        id,
        serial,
        traffic,
        events: events.clone(),
        key,
        started: Instant::now(),
        ended: false,
        _guard: guard,
    };
    let answered = Event::Answered {
        client,
        serial,
        reply: up.to_client,
        route: Some(route),
    };
    if events.send(answered).await.is_err() || answered_rx.await.is_err() {
        return;
    }
    let idle = ctx.config.idle_timeout;
    let reason = live.relay(&stop, &cut, idle, &mut buf).await;
    live.end(reason);
    let _ = events.send(Event::Ended { id, serial }).await;
}

/// Picks the origin and replays the handshake to it, within the origin-connect timeout.
/// An origin that cannot be reached (its port unreachable, or silent until the deadline)
/// is marked down. One that said so at once (port unreachable) is replaced: the stream is
/// picked again, as [`crate::origin_link::link_tcp`] does for TCP, up to
/// `origin_connect_attempts` origins. A silent one is not: its client has waited the whole
/// timeout already (libsrt's callers give up after 3 s), and its next attempt is placed
/// elsewhere by the mark.
async fn connect(
    s: &Setup,
    conclusion: &Handshake<'_>,
    intent: PickIntent,
    buf: &mut [u8],
) -> Result<Up, Refusal> {
    let timeout = s.ctx.config.origin_connect_timeout;
    let mut deadline = Instant::now() + timeout;
    let attempts = s.ctx.config.origin_connect_attempts.max(1);
    let mut tried: Vec<OriginId> = Vec::new();
    let mut failed: Option<Refusal> = None;
    loop {
        let picked = tokio::time::timeout_at(deadline.into(), pick(&s.ctx, &s.key, intent)).await;
        let origin = match (picked, failed.take()) {
            (Ok(Ok(origin)), None) => origin,
            (Ok(Ok(origin)), Some(_)) if !tried.contains(&origin.id) => {
                metrics::origin_retry("srt");
                tracing::info!(origin = %origin.id, attempt = tried.len() + 1, "placing on another origin after a failed handshake");
                origin
            }
            // No other origin, a balancer ignoring marks, or no time left: why the last
            // origin failed says more.
            (_, Some(failure)) => return Err(failure),
            (Ok(Err(e)), None) => {
                let refusal = Refusal::local(RejectReason::Unavailable, e.to_string());
                return Err(refusal);
            }
            (Err(_), None) => {
                let why = format!("the balancer did not answer within {timeout:?}");
                return Err(Refusal::local(RejectReason::Unavailable, why));
            }
        };
        if let Err(e) = check_capacity(&s.ctx, &origin) {
            let refusal = Refusal::local(RejectReason::Unavailable, e.to_string());
            return Err(Refusal {
                full: true,
                ..refusal
            });
        }
        match handshake(s, conclusion, origin, deadline, buf).await {
            Ok(up) => return Ok(up),
            Err((refusal, Failure::Refused | Failure::Local)) => return Err(refusal),
            Err((refusal, Failure::Silent(origin))) => {
                let reason = format!("connect failed: {}", refusal.why);
                suspect(&s.ctx, &origin, &reason, "srt").await;
                return Err(refusal);
            }
            Err((refusal, Failure::Unreachable(origin))) => {
                let reason = format!("connect failed: {}", refusal.why);
                suspect(&s.ctx, &origin, &reason, "srt").await;
                if tried.len() + 1 >= attempts {
                    return Err(refusal);
                }
                tried.push(origin.id);
                failed = Some(refusal);
                // A fresh timeout for the next origin: this one failed at once.
                deadline = Instant::now() + timeout;
            }
        }
    }
}

/// How a handshake with an origin failed.
enum Failure {
    /// The origin answered (with a rejection), or has no SRT endpoint.
    Refused,
    /// The origin cannot be reached: port unreachable, unresolvable.
    Unreachable(Origin),
    /// The origin did not answer before the deadline.
    Silent(Origin),
    /// The proxy could not open a socket (out of descriptors or ports): no origin's fault.
    Local,
}

/// Replays the handshake to `origin`.
async fn handshake(
    s: &Setup,
    conclusion: &Handshake<'_>,
    origin: Origin,
    deadline: Instant,
    buf: &mut [u8],
) -> Result<Up, (Refusal, Failure)> {
    let timeout = s.ctx.config.origin_connect_timeout;
    let Some(endpoint) = origin.srt.first().cloned() else {
        let why = format!("origin {} has no srt endpoint", origin.id);
        let refusal = Refusal::local(RejectReason::Unavailable, why);
        return Err((refusal, Failure::Refused));
    };
    let refusal = |why: String| {
        let why = format!("origin {} unreachable at {endpoint}: {why}", origin.id);
        Refusal::local(RejectReason::BadGateway, why)
    };
    let unreachable = |why: String| (refusal(why), Failure::Unreachable(origin.clone()));
    let addr = resolve(&endpoint, deadline).await.map_err(&unreachable)?;
    let socket = socket_toward(addr).await.map_err(|e| {
        if crate::origin_link::is_local_exhaustion(&e) {
            crate::origin_link::local_exhaustion_seen(&e);
            let why = format!("the proxy is short of resources: {e}");
            (
                Refusal::local(RejectReason::Unavailable, why),
                Failure::Local,
            )
        } else {
            unreachable(e.to_string())
        }
    })?;

    let ids = SessionIds {
        toward_client: s.id,
        toward_origin: s.id,
    };
    let accepted = Accepted {
        handshake: *conclusion,
        streamid: None,
    };
    // The session's clock: monotonic, from the conclusion's arrival.
    let clock = || s.received.elapsed();
    let mut session = Session::new(&accepted, s.client.0, addr, ids, Duration::ZERO);
    let mut next_resend = Instant::now();
    loop {
        if Instant::now() >= next_resend {
            if let Some(packet) = session.to_origin(clock()) {
                send(&socket, &packet).await.map_err(&unreachable)?;
            }
            next_resend = Instant::now() + RESEND;
        }
        let wake = next_resend.min(deadline);
        let n = tokio::select! {
            received = socket.recv(buf) => received.map_err(|e| unreachable(io_reason(&e)))?,
            () = tokio::time::sleep_until(wake.into()) => {
                if Instant::now() >= deadline {
                    let why = format!("no handshake answer within {timeout:?}");
                    return Err((refusal(why), Failure::Silent(origin.clone())));
                }
                continue;
            }
        };
        let Some(answer) = buf.get(..n).and_then(|b| Handshake::parse(b).ok()) else {
            continue;
        };
        match session.on_origin(&answer, clock()) {
            Ok(OriginStep::SendToOrigin(packet)) => {
                send(&socket, &packet).await.map_err(&unreachable)?;
                next_resend = Instant::now() + RESEND;
            }
            Ok(OriginStep::Connected { to_client, relay }) => {
                return Ok(Up {
                    origin,
                    endpoint: addr,
                    socket: Arc::new(socket),
                    to_client,
                    relay,
                });
            }
            Ok(OriginStep::Rejected { to_client, reason }) => {
                let refusal = Refusal {
                    reason,
                    from_origin: Some(to_client),
                    why: format!(
                        "origin {} rejected it ({reason:?}, {})",
                        origin.id,
                        reason.code()
                    ),
                    full: false,
                };
                return Err((refusal, Failure::Refused));
            }
            Ok(OriginStep::Nothing) => {}
            Err(e) => tracing::debug!("srt: origin handshake ignored: {e}"),
        }
    }
}

async fn send(socket: &UdpSocket, packet: &[u8]) -> Result<(), String> {
    socket
        .send(packet)
        .await
        .map(|_| ())
        .map_err(|e| io_reason(&e))
}

fn io_reason(e: &std::io::Error) -> String {
    if e.kind() == ErrorKind::ConnectionRefused {
        "nothing listens there (port unreachable)".into()
    } else {
        e.to_string()
    }
}

async fn resolve(endpoint: &Endpoint, deadline: Instant) -> Result<SocketAddr, String> {
    if let Ok(ip) = endpoint.host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, endpoint.port));
    }
    let lookup = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port));
    match tokio::time::timeout_at(deadline.into(), lookup).await {
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

/// A relaying session. Dropping it (the proxy's forced shutdown) still logs its end and
/// closes both legs.
struct Live {
    front: Arc<UdpSocket>,
    origin: Arc<UdpSocket>,
    client: SocketAddr,
    relay: Relay,
    id: u32,
    serial: u64,
    traffic: Arc<Traffic>,
    events: mpsc::Sender<Event>,
    key: StreamKey,
    started: Instant,
    ended: bool,
    _guard: SessionGuard,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    ClientShutdown,
    OriginShutdown,
    OriginGone,
    OriginDown,
    ClientSilent,
    OriginSilent,
    ProxyShutdown,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            End::ClientShutdown => "client shutdown",
            End::OriginShutdown => "origin shutdown",
            End::OriginGone => "origin unreachable",
            End::OriginDown => "origin marked down by its probes",
            End::ClientSilent => "idle: nothing from the client",
            End::OriginSilent => "idle: nothing from the origin",
            End::ProxyShutdown => "proxy shutdown",
        }
    }

    /// Whether the proxy ends it (and must tell both peers).
    fn by_proxy(self) -> bool {
        !matches!(self, End::ClientShutdown | End::OriginShutdown)
    }
}

impl Live {
    /// Relays the origin's packets to the client until the session ends. The client's
    /// packets are relayed by the receive loop, which cancels `stop` on their SHUTDOWN;
    /// `cut` is cancelled when the origin's probes mark it down.
    async fn relay(
        &mut self,
        stop: &CancellationToken,
        cut: &CancellationToken,
        idle: Duration,
        buf: &mut [u8],
    ) -> End {
        let mut tick = tokio::time::interval(
            (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5)),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut seen_up, mut seen_down) = (0, 0);
        let (mut heard_client, mut heard_origin) = (Instant::now(), Instant::now());
        // Made once: each poll of a fresh one would register with the token again.
        let stopped = stop.cancelled();
        let origin_down = cut.cancelled();
        tokio::pin!(stopped, origin_down);
        loop {
            tokio::select! {
                biased;
                () = &mut stopped => return End::ClientShutdown,
                () = &mut origin_down => return End::OriginDown,
                received = self.origin.recv(buf) => {
                    let mut received = received;
                    for _ in 0..DRAIN {
                        match received {
                            Ok(n) => {
                                let packet = buf.get_mut(..n).unwrap_or_default();
                                if let Some(end) = self.to_client(packet).await {
                                    return end;
                                }
                            }
                            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                                return End::OriginGone;
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) => tracing::debug!("srt: origin recv: {e}"),
                        }
                        received = self.origin.try_recv(buf);
                    }
                }
                _ = tick.tick() => {
                    // Silence measured from the byte counters: nothing on the packet path.
                    let now = Instant::now();
                    let up = self.traffic.to_origin.load(Ordering::Relaxed);
                    if up != seen_up {
                        (seen_up, heard_client) = (up, now);
                    }
                    let down = self.traffic.to_client.load(Ordering::Relaxed);
                    if down != seen_down {
                        (seen_down, heard_origin) = (down, now);
                    }
                    // SRT peers send keep-alives every second: a silent side is gone.
                    if now.duration_since(heard_client) >= idle {
                        return End::ClientSilent;
                    }
                    if now.duration_since(heard_origin) >= idle {
                        return End::OriginSilent;
                    }
                }
            }
        }
    }

    /// The per-packet path toward the client; `Some` when the session ends with it.
    async fn to_client(&self, packet: &mut [u8]) -> Option<End> {
        if dest_socket_id(packet) != Some(self.id) {
            return None;
        }
        let end = match classify(packet) {
            // The handshake is over; a late duplicate answer is not for the client.
            Some(PacketKind::Handshake) | None => return None,
            Some(PacketKind::Shutdown) => Some(End::OriginShutdown),
            Some(_) => None,
        };
        self.relay.origin_to_client(packet).ok()?;
        match self.front.send_to(packet, self.client).await {
            Ok(n) => {
                self.traffic.add_to_client(n);
            }
            Err(e) => tracing::debug!("srt: send to client: {e}"),
        }
        end
    }

    /// Logs the end and, when the proxy ends it, tells both peers.
    fn end(&mut self, reason: End) {
        if self.ended {
            return;
        }
        self.ended = true;
        if reason.by_proxy() {
            let _ = self
                .front
                .try_send_to(&shutdown(self.relay.client_socket_id), self.client);
            let _ = self.origin.try_send(&shutdown(self.relay.origin_socket_id));
        }
        tracing::info!(
            stream = %self.key,
            reason = reason.as_str(),
            bytes_to_origin = self.traffic.to_origin.load(Ordering::Relaxed),
            bytes_to_client = self.traffic.to_client.load(Ordering::Relaxed),
            seconds = self.started.elapsed().as_secs(),
            "SRT session ended"
        );
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if !self.ended {
            self.end(End::ProxyShutdown);
            let _ = self.events.try_send(Event::Ended {
                id: self.id,
                serial: self.serial,
            });
        }
    }
}

/// A SHUTDOWN control packet to `dest` (header and the 4-byte empty body libsrt sends).
fn shutdown(dest: u32) -> [u8; HEADER_LEN + 4] {
    let mut packet = [0u8; HEADER_LEN + 4];
    let header = ControlHeader {
        dest_socket_id: dest,
        ..ControlHeader::new(control_type::SHUTDOWN)
    };
    packet[..HEADER_LEN].copy_from_slice(&header.encode());
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_packet_is_what_libsrt_sends() {
        let captured =
            include_bytes!("../../../srt-streamid/tests/data/session_c2o_shutdown_0.bin");
        let ours = shutdown(0x39d0_28ed);
        assert_eq!(classify(&ours), Some(PacketKind::Shutdown));
        assert_eq!(dest_socket_id(&ours), Some(0x39d0_28ed));
        // Same bytes apart from the timestamp.
        assert_eq!(ours[..8], captured[..8]);
        assert_eq!(ours[12..], captured[12..]);
    }
}
