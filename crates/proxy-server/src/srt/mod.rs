//! SRT front-end (PROXY_SRT_SERVER).
//!
//! One UDP socket faces the clients. Its receive loop ([`Front`]) owns every routing table
//! and never waits for anything but the socket and its own event queue:
//!
//! - an INDUCTION (destination socket id 0) is answered on the spot with a stateless SYN
//!   cookie ([`Listener::answer_induction`]);
//! - a CONCLUSION whose cookie checks out names the stream in its streamid; the loop
//!   allocates the proxy's socket id for the connection and spawns one task for it
//!   ([`session::run`]) that asks the balancer, replays the handshake to the origin through
//!   its own connected UDP socket, and reads that socket for the rest of the session;
//! - the task's outcome comes back as an [`Event`]: the loop installs the route, then sends
//!   the answer (the origin's, translated, or a rejection) and keeps it to answer
//!   retransmitted conclusions;
//! - every other datagram is routed by its destination socket id, in a map the loop owns:
//!   the id is rewritten in place and the datagram is sent on the session's origin socket.
//!   No lock, no allocation, no await on that path.
//!
//! Packets from the origin are read by the session's task and sent to the client from the
//! shared client-facing socket. A SHUTDOWN from either side is relayed and ends the session;
//! so does silence from either side for `idle_timeout`.

mod session;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use lb_core::StreamKey;
use srt_streamid::{
    classify, dest_socket_id, set_dest_socket_id, Error as SrtError, Handshake, HandshakeType,
    Listener, PacketKind, RejectReason, SynCookies,
};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::limits::LogThrottle;
use crate::metrics::{self, Refusal};
use crate::sessions::Traffic;
use crate::Context;

/// Largest datagram relayed. libsrt's payloads fit a 1500-byte MTU; jumbo frames fit too.
const MAX_DATAGRAM: usize = 9216;
/// Handshakes waiting for the balancer or an origin at once; beyond it, refused.
const MAX_PENDING: usize = 1024;
/// Datagrams read per wake-up before the loop looks at its events again.
const DRAIN: usize = 64;
/// Socket ids stay below the bit libsrt reserves for groups (`SRTGROUP_MASK`).
const ID_RANGE: std::ops::Range<u32> = 1..1 << 30;
/// Refusals for a limit are logged once a second at most: a flood must not flood the log.
static REFUSAL_LOG: LazyLock<LogThrottle> =
    LazyLock::new(|| LogThrottle::new(Duration::from_secs(1)));

/// Binds the listener, if configured, and serves it until shutdown.
pub async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let Some(addr) = ctx.config.srt_listen else {
        return Ok(());
    };
    let socket = Arc::new(crate::bind_udp("srt", addr).await?);
    let listener_id = fastrand::u32(ID_RANGE);
    let listener = Listener::new(SynCookies::new(random_key()?), listener_id);
    let (events_tx, events_rx) = mpsc::channel(MAX_PENDING);
    let front = Front {
        max_sessions: ctx.config.max_connections.max(1),
        ctx,
        socket,
        listener: Arc::new(listener),
        listener_id,
        events: events_tx,
        routes: HashMap::default(),
        handshakes: HashMap::new(),
        pending: 0,
        next_serial: 0,
        accepting: true,
    };
    tokio::spawn(front.run(events_rx));
    Ok(())
}

/// The SYN cookie key, from the operating system's CSPRNG.
fn random_key() -> anyhow::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .context("reading the SRT SYN cookie key from /dev/urandom")?;
    Ok(key)
}

/// The clock SYN cookies are bucketed by.
fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// A client connection as its handshake names it: its address and its own socket id.
type ClientKey = (SocketAddr, u32);

/// Hashes the proxy's own socket ids (random, chosen here) with one multiplication.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type IdMap<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;

/// What the loop knows of one of its socket ids.
enum Slot {
    /// The session's task is still asking the balancer or handshaking with the origin.
    Pending { serial: u64 },
    /// Both legs are up.
    Live(Route),
}

/// How to forward a client's packets, installed when the origin has accepted.
pub(crate) struct Route {
    serial: u64,
    client: SocketAddr,
    origin_socket_id: u32,
    origin: Arc<UdpSocket>,
    traffic: Arc<Traffic>,
    /// Cancelled when the client sends SHUTDOWN: the session's task ends.
    stop: CancellationToken,
    closing: bool,
    /// Told once the client has been sent the origin's answer: only then does the task
    /// relay the origin's packets (a libsrt caller ignores data before the answer).
    answered: Option<oneshot::Sender<()>>,
}

/// A conclusion being handled or answered.
struct Handshaking {
    id: u32,
    serial: u64,
    /// The answer sent, repeated for retransmitted conclusions.
    reply: Option<Vec<u8>>,
    /// When the answer is forgotten (set once there is one).
    expires: Option<Instant>,
}

/// What a session's task tells the receive loop.
pub(crate) enum Event {
    /// The handshake is over: send `reply` to the client, and relay if `route` is set.
    Answered {
        client: ClientKey,
        serial: u64,
        reply: Vec<u8>,
        route: Option<Route>,
    },
    /// The session ended; its id can be reused.
    Ended { id: u32, serial: u64 },
}

/// The receive loop's state.
struct Front {
    ctx: Arc<Context>,
    socket: Arc<UdpSocket>,
    listener: Arc<Listener>,
    /// The socket id the listener gives in its induction answers.
    listener_id: u32,
    events: mpsc::Sender<Event>,
    /// The proxy's socket ids toward clients: pending and live sessions.
    routes: IdMap<Slot>,
    /// Conclusions in progress or recently answered, by client.
    handshakes: HashMap<ClientKey, Handshaking>,
    pending: usize,
    max_sessions: usize,
    next_serial: u64,
    accepting: bool,
}

impl Front {
    async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        let socket = self.socket.clone();
        let life = self.ctx.lifecycle.clone();
        let stopped = life.stopped_accepting();
        tokio::pin!(stopped);
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            tokio::select! {
                biased;
                Some(event) = events.recv() => self.on_event(event),
                () = &mut stopped, if self.accepting => {
                    self.accepting = false;
                    tracing::info!(protocol = "srt", "stopped accepting");
                }
                _ = sweep.tick() => self.sweep(),
                received = socket.recv_from(&mut buf) => {
                    match received {
                        Ok((n, from)) => self.on_datagram(&mut buf[..n], from),
                        // ICMP errors reported on some platforms; nothing to do.
                        Err(e) => tracing::debug!("srt recv: {e}"),
                    }
                    for _ in 0..DRAIN {
                        match socket.try_recv_from(&mut buf) {
                            Ok((n, from)) => self.on_datagram(&mut buf[..n], from),
                            Err(_) => break,
                        }
                    }
                }
            }
        }
    }

    fn on_datagram(&mut self, datagram: &mut [u8], from: SocketAddr) {
        let Some(dest) = dest_socket_id(datagram) else {
            return;
        };
        if dest != 0 {
            if let Some(Slot::Live(route)) = self.routes.get_mut(&dest) {
                relay_to_origin(route, datagram, from);
                return;
            }
        }
        if classify(datagram) != Some(PacketKind::Handshake) {
            return;
        }
        let hs = match Handshake::parse(datagram) {
            Ok(hs) => hs,
            Err(e) => {
                tracing::debug!(peer = %from, "srt: malformed handshake dropped: {e}");
                return;
            }
        };
        match hs.kind {
            HandshakeType::Induction => {
                match self.listener.answer_induction(&hs, from, wall_clock()) {
                    Ok(answer) => self.send(&answer, from),
                    Err(e) => tracing::debug!(peer = %from, "srt: induction dropped: {e}"),
                }
            }
            HandshakeType::Conclusion => self.on_conclusion(hs, from),
            other => tracing::debug!(peer = %from, "srt: {other:?} handshake dropped"),
        }
    }

    fn on_conclusion(&mut self, hs: Handshake<'_>, from: SocketAddr) {
        let client = (from, hs.socket_id);
        if let Some(known) = self.handshakes.get(&client) {
            // A retransmission: the stored answer again, or nothing while the origin has
            // not answered (the answer goes out when it comes).
            if let Some(reply) = &known.reply {
                let _ = self.socket.try_send_to(reply, from);
            }
            return;
        }
        let now = wall_clock();
        let accepted = match self.listener.accept_conclusion(hs, from, now) {
            Ok(accepted) => accepted,
            // Not from the address the cookie was issued to (or no cookie at all): an
            // answer could be reflected at a spoofed victim, so say nothing.
            Err(e @ (SrtError::BadCookie { .. } | SrtError::UnsupportedVersion(_))) => {
                tracing::debug!(peer = %from, "srt: conclusion dropped: {e}");
                return;
            }
            Err(e) => {
                tracing::info!(peer = %from, "SRT connection refused: bad streamid: {e}");
                return self.reject(&hs, from, RejectReason::BadRequest);
            }
        };
        let Some(streamid) = accepted.streamid.clone() else {
            tracing::info!(peer = %from, "SRT connection refused: no streamid");
            return self.reject(&hs, from, RejectReason::BadRequest);
        };
        let (key, mode) = match StreamKey::from_srt_streamid(&streamid) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::info!(peer = %from, streamid, "SRT connection refused: {e}");
                return self.reject(&hs, from, RejectReason::BadRequest);
            }
        };
        if !self.accepting {
            return self.reject(&hs, from, RejectReason::Unavailable);
        }
        let full = self.routes.len() >= self.max_sessions
            || self.pending >= MAX_PENDING
            || self.handshakes.len() >= self.max_sessions + MAX_PENDING;
        if full {
            metrics::refused("srt", Refusal::ConnectionLimit);
            if let Some(held_back) = REFUSAL_LOG.allow() {
                tracing::warn!(
                    peer = %from,
                    stream = %key,
                    live = self.routes.len(),
                    pending = self.pending,
                    held_back,
                    "SRT connection refused: session limit reached"
                );
            }
            return self.reject(&hs, from, RejectReason::Overload);
        }
        let Some(ip_slot) = self.ctx.per_ip.try_acquire(from.ip()) else {
            metrics::refused("srt", Refusal::IpLimit);
            if let Some(held_back) = REFUSAL_LOG.allow() {
                tracing::warn!(peer = %from, stream = %key, limit = self.ctx.per_ip.limit(), held_back, "SRT connection refused: the client's IP has as many sessions as it may");
            }
            return self.reject(&hs, from, RejectReason::Overload);
        };
        metrics::client_accepted("srt");
        let id = self.free_id();
        let serial = self.next_serial;
        self.next_serial += 1;
        self.routes.insert(id, Slot::Pending { serial });
        self.handshakes.insert(
            client,
            Handshaking {
                id,
                serial,
                reply: None,
                expires: None,
            },
        );
        self.pending += 1;
        let peer = from;
        let span =
            tracing::info_span!("srt", %peer, id = format_args!("{id:#010x}"), stream = %key);
        let setup = session::Setup {
            ctx: self.ctx.clone(),
            front: self.socket.clone(),
            listener: self.listener.clone(),
            events: self.events.clone(),
            client,
            conclusion: datagram_of(&accepted.handshake),
            received: Instant::now(),
            key,
            mode,
            id,
            serial,
            ip_slot,
        };
        self.ctx
            .lifecycle
            .spawn_session(session::run(setup).instrument(span));
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Answered {
                client,
                serial,
                reply,
                route,
            } => {
                let Some(entry) = self
                    .handshakes
                    .get_mut(&client)
                    .filter(|h| h.serial == serial)
                else {
                    // Cannot happen (pending entries are kept until answered); end it anyway.
                    if let Some(route) = route {
                        route.stop.cancel();
                    }
                    return;
                };
                let id = entry.id;
                if matches!(self.routes.get(&id), Some(Slot::Pending { serial: s }) if *s == serial)
                {
                    self.pending -= 1;
                }
                // The route first, so that the client's first packets find it; then the
                // answer; then the origin's packets.
                let answered = match route {
                    Some(mut route) => {
                        let answered = route.answered.take();
                        self.routes.insert(id, Slot::Live(route));
                        answered
                    }
                    None => {
                        self.routes.remove(&id);
                        None
                    }
                };
                let _ = self.socket.try_send_to(&reply, client.0);
                if let Some(answered) = answered {
                    let _ = answered.send(());
                }
                entry.reply = Some(reply);
                entry.expires = Some(Instant::now() + self.ctx.config.handshake_timeout);
            }
            Event::Ended { id, serial } => {
                let ours = match self.routes.get(&id) {
                    Some(Slot::Live(route)) => route.serial == serial,
                    Some(Slot::Pending { serial: s }) => {
                        let ours = *s == serial;
                        if ours {
                            self.pending -= 1;
                        }
                        ours
                    }
                    None => false,
                };
                if ours {
                    self.routes.remove(&id);
                }
            }
        }
    }

    /// Forgets answers old enough that no client still retransmits its conclusion.
    fn sweep(&mut self) {
        let now = Instant::now();
        self.handshakes
            .retain(|_, h| h.expires.is_none_or(|at| at > now));
    }

    fn free_id(&self) -> u32 {
        loop {
            let id = fastrand::u32(ID_RANGE);
            if id != self.listener_id && !self.routes.contains_key(&id) {
                return id;
            }
        }
    }

    fn reject(&self, hs: &Handshake<'_>, to: SocketAddr, reason: RejectReason) {
        self.send(&self.listener.reject(hs, to, reason, wall_clock()), to);
    }

    /// Never waits: a full socket buffer drops the datagram, as the network would.
    fn send(&self, datagram: &[u8], to: SocketAddr) {
        if let Err(e) = self.socket.try_send_to(datagram, to) {
            tracing::debug!(peer = %to, "srt send: {e}");
        }
    }
}

/// The per-packet path toward the origin.
#[inline]
fn relay_to_origin(route: &mut Route, datagram: &mut [u8], from: SocketAddr) {
    // Only the client the route was made for may use it.
    if from != route.client {
        return;
    }
    let shutdown = classify(datagram) == Some(PacketKind::Shutdown);
    if set_dest_socket_id(datagram, route.origin_socket_id).is_err() {
        return;
    }
    if route.origin.try_send(datagram).is_ok() {
        route.traffic.add_to_origin(datagram.len());
    }
    if shutdown && !route.closing {
        route.closing = true;
        route.stop.cancel();
    }
}

/// The whole datagram of a handshake (re-encoded exactly as received).
fn datagram_of(hs: &Handshake<'_>) -> Vec<u8> {
    hs.to_vec()
}
