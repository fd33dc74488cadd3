//! The WebRTC media port (PROXY_WEBRTC_SERVER): one UDP socket for every client.
//!
//! Routing, by the first byte of each datagram (RFC 7983):
//! - From an address already bound to a session, any packet (DTLS, SRTP/SRTCP, STUN
//!   consent checks and responses) is sent on to that session's origin. No lookup beyond
//!   one hash of the address, no allocation, no await: the origin-side socket is written
//!   with a non-blocking send.
//! - From any other address only a STUN binding request may open or move a session. Its
//!   USERNAME's server ufrag names the session; the check must carry the client ufrag of
//!   the offer and pass MESSAGE-INTEGRITY keyed with the origin's ice-pwd, or it is dropped
//!   and nothing changes. Sessions signalled by this proxy are known at once; others (a
//!   fleet) are looked up in the balancer by a spawned task, at most [`MAX_PENDING`] at
//!   a time and 256 started a second, so a slow balancer never stalls the clients already
//!   relayed, and a flood of made-up ufrags costs it little. Everything
//!   else from an unknown address is dropped after a look at its first byte.
//! - A session may have several client addresses (a client checking from several
//!   candidates, a NAT rebinding): each one that sent a valid check is bound, and its
//!   packets go to the origin. But a valid check proves only that its sender knows the
//!   origin's ice-pwd, which the client always does, so its source address may be forged:
//!   before the origin's media goes to an address, the proxy sends it a binding request of
//!   its own (USERNAME `<client ufrag>:<server ufrag>`, MESSAGE-INTEGRITY keyed with the
//!   client's ice-pwd from the offer, a random transaction id) and waits for the success
//!   answer: RFC 7675 consent, as browsers ask it. This holds for a session's very first
//!   address too: a relay opened on a proxy (after an idle timeout, on another proxy of the
//!   fleet, after an ICE restart) may join a DTLS association the origin already has, and
//!   a forged first check would then aim live media at a victim. Until consent, only STUN
//!   and DTLS handshake records go to the address; SRTP, SRTCP and DTLS application data
//!   are held back (dropped). Consent is renewed every 5 s and lapses 30 s after the last
//!   answer. The policy ([`stun_ufrag::consent::Consent`]) picks the current address: the
//!   last consented one that sent media or DTLS, or a check with USE-CANDIDATE, or any
//!   valid check once the current one has been silent for a second or has not consented.
//!   The origin's answers to checks go back to the address that sent the check.
//!
//! Each session has ONE connected socket towards the origin's media address and ONE task
//! reading it. A session with no packet from its client for `idle_timeout`
//! (PROXY_IDLE_TIMEOUT, 30 s by default: consent checks come every few seconds, and
//! RFC 7675 lets a sender go on for 30 s without consent) ends, which closes its socket and
//! its task; so does a DELETE of its resource, and shutdown. While a session is live the
//! proxy renews its record in the balancer, whose own expiry (`session_ttl`) then only
//! forgets sessions nobody relays. Signalled sessions no check ever came for are forgotten
//! locally after `session_ttl` too.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lb_core::{OriginId, PickIntent, RtcSession, StreamKey};
use stun_ufrag::consent::{self, Consent, Destination, Transmit};
use stun_ufrag::{classify, IntegrityKey, Message, PacketKind, TransactionId};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use crate::sessions::{Protocol, SessionGuard, Traffic};
use crate::Context;

/// Most balancer lookups of new ufrags in flight; checks for further new ufrags wait for
/// their retransmission.
pub const MAX_PENDING: usize = 256;
/// Most lookups started per tick (256 a second): a flood of checks naming random ufrags
/// costs the balancer no more than this.
const LOOKUPS_PER_TICK: u32 = 64;
/// Most signalled sessions waiting for their first check.
const MAX_KNOWN: usize = 65_536;
/// Most ufrags remembered as unknown to the balancer.
const MAX_MISSING: usize = 4096;
/// How long a ufrag the balancer did not know is not asked for again.
const MISSING_FOR: Duration = Duration::from_secs(2);
/// Check transactions remembered per session, to return the origin's answers to the
/// address that asked.
const TID_RING: usize = 8;
/// Resolution of the idle clock.
const TICK: Duration = Duration::from_millis(250);
/// Largest datagram relayed from an origin (WebRTC stacks stay under the path MTU).
const ORIGIN_DATAGRAM: usize = 4096;
/// Datagrams read in a row before the loop looks at its other inputs.
const BATCH: usize = 64;

/// A session this router may open: what the signalling (or the balancer) knows of it.
pub struct Known {
    pub session: RtcSession,
    /// MESSAGE-INTEGRITY key made of `session.server_pwd`.
    pub integrity: IntegrityKey,
    /// Where the origin receives the session's media.
    pub media: SocketAddr,
    /// Publish or play, when this proxy signalled it.
    pub intent: Option<PickIntent>,
}

enum Control {
    Prime(Box<Known>),
    Forget(String),
    StopAccepting,
}

/// Talks to the router from the signalling side.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Control>,
}

impl Handle {
    /// Makes a signalled session known, so its first check opens it without a lookup.
    pub fn prime(&self, known: Known) {
        if self.tx.try_send(Control::Prime(Box::new(known))).is_err() {
            tracing::debug!("UDP router busy; the session will be looked up in the balancer");
        }
    }

    /// Ends a session (its resource was deleted).
    pub fn forget(&self, ufrag: String) {
        let _ = self.tx.try_send(Control::Forget(ufrag));
    }
}

/// Starts the router on the bound socket.
pub fn start(ctx: Arc<Context>, socket: UdpSocket) -> Handle {
    let (tx, control) = mpsc::channel(1024);
    let (lookup_tx, lookups) = mpsc::channel(MAX_PENDING);
    let idle = ctx.config.idle_timeout.max(TICK);
    let router = Router {
        socket: Arc::new(socket),
        relays: Vec::new(),
        free: Vec::new(),
        by_addr: HashMap::new(),
        by_ufrag: HashMap::new(),
        known: HashMap::new(),
        pending: HashMap::new(),
        missing: HashMap::new(),
        lookup_tx,
        now: 0,
        clock: Instant::now(),
        idle_ticks: ticks(idle),
        known_ticks: ticks(ctx.config.balancer_config.session_ttl),
        renew_ticks: ticks(ctx.config.balancer_config.session_ttl / 3).max(1),
        accepting: true,
        drops: Drops::default(),
        next_id: 0,
        lookups_this_tick: 0,
        ctx: ctx.clone(),
    };
    tokio::spawn(router.run(control, lookups));
    let stop = tx.clone();
    tokio::spawn(async move {
        ctx.lifecycle.stopped_accepting().await;
        let _ = stop.send(Control::StopAccepting).await;
    });
    Handle { tx }
}

fn ticks(d: Duration) -> u64 {
    (d.as_millis() / TICK.as_millis()).max(1) as u64
}

/// One session, owned by the router's task.
struct Relay {
    id: u64,
    ufrag: String,
    client_ufrag: String,
    integrity: IntegrityKey,
    /// Connected to the origin; written without awaiting.
    to_origin: std::net::UdpSocket,
    /// The session's client addresses, which one is current, which have consented.
    consent: Consent,
    /// What the reader was last told of `consent.destination()`.
    published: Destination,
    dest_tx: watch::Sender<Destination>,
    /// Tick of the last packet from the client (any address).
    last_seen: u64,
    shared: Arc<Shared>,
    key: StreamKey,
    origin: OriginId,
    /// Dropping it stops the reader.
    _stop: oneshot::Sender<()>,
}

/// What the reader task shares with the router.
struct Shared {
    /// More than one address is bound: the reader must route check answers by transaction.
    multi: AtomicBool,
    tids: Mutex<TidRing>,
    traffic: Arc<Traffic>,
    /// Origin packets not sent because the current address has not consented.
    held: AtomicU64,
    /// Cancelled when the origin's probes mark it down: the session is closed at the next
    /// tick, and the client, hearing nothing more, renegotiates.
    cut: tokio_util::sync::CancellationToken,
}

#[derive(Default)]
struct TidRing {
    entries: [([u8; 12], Option<SocketAddr>); TID_RING],
    next: usize,
}

impl TidRing {
    fn record(&mut self, tid: [u8; 12], from: SocketAddr) {
        self.entries[self.next] = (tid, Some(from));
        self.next = (self.next + 1) % TID_RING;
    }

    fn find(&self, tid: &[u8]) -> Option<SocketAddr> {
        self.entries
            .iter()
            .find(|(t, a)| a.is_some() && t.as_slice() == tid)
            .and_then(|(_, a)| *a)
    }
}

#[derive(Default)]
struct Drops {
    unknown: u64,
    bad_stun: u64,
    integrity: u64,
    unknown_ufrag: u64,
    to_origin: u64,
}

impl Drops {
    fn any(&self) -> bool {
        self.unknown + self.bad_stun + self.integrity + self.unknown_ufrag + self.to_origin > 0
    }
}

/// A check for a ufrag being looked up; its latest retransmission is replayed when the
/// lookup returns.
struct Pending {
    from: SocketAddr,
    packet: Vec<u8>,
}

type Lookup = (String, Option<Box<Known>>);

struct Router {
    ctx: Arc<Context>,
    socket: Arc<UdpSocket>,
    /// Slab of sessions; `free` lists empty slots.
    relays: Vec<Option<Relay>>,
    free: Vec<usize>,
    by_addr: HashMap<SocketAddr, usize>,
    by_ufrag: HashMap<String, usize>,
    /// Signalled or looked-up sessions not opened yet, with the tick they arrived.
    known: HashMap<String, (Box<Known>, u64)>,
    pending: HashMap<String, Pending>,
    missing: HashMap<String, u64>,
    lookup_tx: mpsc::Sender<Lookup>,
    now: u64,
    /// Time for the consent policy, read once per batch of inputs.
    clock: Instant,
    idle_ticks: u64,
    known_ticks: u64,
    renew_ticks: u64,
    accepting: bool,
    drops: Drops,
    next_id: u64,
    lookups_this_tick: u32,
}

impl Router {
    async fn run(
        mut self,
        mut control: mpsc::Receiver<Control>,
        mut lookups: mpsc::Receiver<Lookup>,
    ) {
        let socket = self.socket.clone();
        let mut buf = vec![0u8; 65_536];
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let lifecycle = self.ctx.lifecycle.clone();
        let forced = lifecycle.forced();
        tokio::pin!(forced);
        loop {
            tokio::select! {
                biased;
                () = &mut forced => break,
                Some(c) = control.recv() => self.on_control(c),
                Some((ufrag, found)) = lookups.recv() => {
                    self.clock = Instant::now();
                    self.on_lookup(ufrag, found);
                }
                _ = tick.tick() => {
                    self.clock = Instant::now();
                    self.on_tick();
                }
                received = socket.recv_from(&mut buf) => {
                    self.clock = Instant::now();
                    match received {
                        Ok((n, from)) => self.on_datagram(&buf[..n], from),
                        Err(e) => tracing::debug!("webrtc recv: {e}"),
                    }
                    // Drain what is already queued before looking at the other inputs.
                    for _ in 0..BATCH {
                        match socket.try_recv_from(&mut buf) {
                            Ok((n, from)) => self.on_datagram(&buf[..n], from),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => tracing::debug!("webrtc recv: {e}"),
                        }
                    }
                }
            }
        }
        let live = self.relays.iter().flatten().count();
        tracing::info!(live, "WebRTC UDP router stopped");
    }

    fn on_control(&mut self, control: Control) {
        match control {
            Control::Prime(known) => {
                let ufrag = known.session.server_ufrag.clone();
                if self.by_ufrag.contains_key(&ufrag) {
                    return;
                }
                self.missing.remove(&ufrag);
                if self.known.len() >= MAX_KNOWN {
                    self.expire_known();
                }
                if self.known.len() < MAX_KNOWN {
                    self.known.insert(ufrag, (known, self.now));
                }
            }
            Control::Forget(ufrag) => {
                self.known.remove(&ufrag);
                self.pending.remove(&ufrag);
                if let Some(&idx) = self.by_ufrag.get(&ufrag) {
                    self.close(idx, "deleted");
                }
            }
            Control::StopAccepting => {
                self.accepting = false;
                self.pending.clear();
            }
        }
    }

    /// One datagram from a client.
    fn on_datagram(&mut self, packet: &[u8], from: SocketAddr) {
        let kind = classify(packet);
        if let Some(&idx) = self.by_addr.get(&from) {
            let (now, clock) = (self.now, self.clock);
            let Some(relay) = self.relays.get_mut(idx).and_then(Option::as_mut) else {
                return;
            };
            match kind {
                PacketKind::Stun => {
                    let Ok(msg) = Message::parse(packet) else {
                        self.drops.bad_stun += 1;
                        return;
                    };
                    if msg.is_binding_request() {
                        match msg.ice_username() {
                            // A check of this session from one of its own addresses.
                            Ok(user) if user.server == relay.ufrag => {
                                relay.record(&msg, from);
                                let out = relay.consent.on_check(
                                    from,
                                    msg.use_candidate(),
                                    clock,
                                    random_tid,
                                );
                                self.after_consent(idx, out.transmit, out.evicted);
                            }
                            // Another session's check (an ICE restart, or the address moved
                            // between sessions): routed, and verified, by its ufrag.
                            Ok(_) => return self.by_ufrag_check(&msg, packet, from),
                            Err(_) => {
                                self.drops.bad_stun += 1;
                                return;
                            }
                        }
                    } else if relay.consent.on_response(from, &msg, clock) {
                        // The answer to the proxy's own consent request: not the origin's.
                        relay.last_seen = now;
                        relay.publish();
                        return;
                    }
                }
                PacketKind::Dtls | PacketKind::Rtp => {
                    let ask = relay.consent.on_traffic(from, clock, random_tid);
                    if ask.is_some() || relay.published != relay.consent.destination() {
                        self.after_consent(idx, ask, None);
                    }
                }
                _ => {
                    self.drops.unknown += 1;
                    return;
                }
            }
            let Some(relay) = self.relays.get_mut(idx).and_then(Option::as_mut) else {
                return;
            };
            if !relay.forward(packet, now) {
                self.drops.to_origin += 1;
            }
            return;
        }
        // An unknown sender: only a binding request may introduce it.
        if kind != PacketKind::Stun {
            self.drops.unknown += 1;
            return;
        }
        match Message::parse(packet) {
            Ok(msg) if msg.is_binding_request() => self.by_ufrag_check(&msg, packet, from),
            _ => self.drops.bad_stun += 1,
        }
    }

    /// A binding request routed by the server ufrag of its USERNAME.
    fn by_ufrag_check(&mut self, msg: &Message<'_>, packet: &[u8], from: SocketAddr) {
        let Ok(user) = msg.ice_username() else {
            self.drops.bad_stun += 1;
            return;
        };
        if let Some(&idx) = self.by_ufrag.get(user.server) {
            let Some(relay) = self.relays.get(idx).and_then(Option::as_ref) else {
                return;
            };
            if !authentic(msg, user.client, &relay.client_ufrag, &relay.integrity) {
                self.drops.integrity += 1;
                tracing::debug!(%from, ufrag = user.server, "check failed MESSAGE-INTEGRITY or names another client ufrag: dropped");
                return;
            }
            self.bind(idx, from);
            self.consent_check(idx, msg, from);
            return self.forward_check(idx, msg, packet, from);
        }
        if let Some((known, _)) = self.known.get(user.server) {
            if !authentic(
                msg,
                user.client,
                &known.session.client_ufrag,
                &known.integrity,
            ) {
                self.drops.integrity += 1;
                tracing::debug!(%from, ufrag = user.server, "check failed MESSAGE-INTEGRITY or names another client ufrag: dropped");
                return;
            }
            if !self.accepting {
                return;
            }
            let Some((known, _)) = self.known.remove(user.server) else {
                return;
            };
            match self.open(known, from) {
                Ok(idx) => {
                    self.consent_check(idx, msg, from);
                    self.forward_check(idx, msg, packet, from);
                }
                Err(e) => tracing::warn!(%from, "cannot open the WebRTC session: {e}"),
            }
            return;
        }
        if !self.accepting || self.missing.contains_key(user.server) {
            self.drops.unknown_ufrag += 1;
            return;
        }
        if let Some(pending) = self.pending.get_mut(user.server) {
            // A retransmission while the lookup runs: keep the latest.
            pending.from = from;
            pending.packet.clear();
            pending.packet.extend_from_slice(packet);
            return;
        }
        if self.pending.len() >= MAX_PENDING || self.lookups_this_tick >= LOOKUPS_PER_TICK {
            self.drops.unknown_ufrag += 1;
            return;
        }
        self.lookups_this_tick += 1;
        let ufrag = user.server.to_owned();
        self.pending.insert(
            ufrag.clone(),
            Pending {
                from,
                packet: packet.to_vec(),
            },
        );
        let (ctx, tx) = (self.ctx.clone(), self.lookup_tx.clone());
        tokio::spawn(async move {
            let wait = ctx
                .config
                .origin_connect_timeout
                .max(Duration::from_secs(1));
            let found = tokio::time::timeout(wait, lookup(&ctx, &ufrag))
                .await
                .unwrap_or(None);
            let _ = tx.send((ufrag, found)).await;
        });
    }

    /// A verified check from `from`, an address bound to session `idx`: the consent
    /// policy may ask the address, or move the session to it.
    fn consent_check(&mut self, idx: usize, msg: &Message<'_>, from: SocketAddr) {
        let clock = self.clock;
        let Some(relay) = self.relays.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        let out = relay
            .consent
            .on_check(from, msg.use_candidate(), clock, random_tid);
        self.after_consent(idx, out.transmit, out.evicted);
    }

    /// After the consent policy of session `idx` ran: its request goes out, an address it
    /// dropped is unbound, and the reader learns where the origin's packets go.
    fn after_consent(
        &mut self,
        idx: usize,
        transmit: Option<Transmit>,
        evicted: Option<SocketAddr>,
    ) {
        if let Some(gone) = evicted {
            if self.by_addr.get(&gone) == Some(&idx) {
                self.by_addr.remove(&gone);
            }
        }
        let Some(relay) = self.relays.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        relay
            .shared
            .multi
            .store(relay.consent.len() > 1, Ordering::Relaxed);
        relay.publish();
        if let Some(t) = transmit {
            send_consent_request(&self.socket, relay.id, &t);
        }
    }

    fn forward_check(&mut self, idx: usize, msg: &Message<'_>, packet: &[u8], from: SocketAddr) {
        let now = self.now;
        let Some(relay) = self.relays.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        relay.record(msg, from);
        if !relay.forward(packet, now) {
            self.drops.to_origin += 1;
        }
    }

    fn on_lookup(&mut self, ufrag: String, found: Option<Box<Known>>) {
        let Some(pending) = self.pending.remove(&ufrag) else {
            return;
        };
        match found {
            Some(known) => {
                tracing::debug!(ufrag, "WebRTC session found in the balancer");
                self.on_control(Control::Prime(known));
                self.on_datagram(&pending.packet, pending.from);
            }
            None => {
                if self.missing.len() >= MAX_MISSING {
                    let (now, keep) = (self.now, ticks(MISSING_FOR));
                    self.missing.retain(|_, at| now.saturating_sub(*at) < keep);
                }
                if self.missing.len() < MAX_MISSING {
                    self.missing.insert(ufrag, self.now);
                }
            }
        }
    }

    /// Opens a session for a verified first check from `from`.
    fn open(&mut self, known: Box<Known>, from: SocketAddr) -> io::Result<usize> {
        if self.relays.len() - self.free.len() >= self.ctx.config.max_connections {
            return Err(io::Error::other(format!(
                "{} WebRTC sessions already (PROXY_MAX_CONNECTIONS)",
                self.ctx.config.max_connections
            )));
        }
        // A client may signal many sessions over one HTTP connection: its IP's limit is
        // held by the sessions themselves.
        let Some(ip_slot) = self.ctx.per_ip.try_acquire(from.ip()) else {
            crate::metrics::refused("webrtc", crate::metrics::Refusal::IpLimit);
            return Err(io::Error::other(
                "the client's IP has as many sessions as it may (PROXY_MAX_CONNECTIONS_PER_IP)",
            ));
        };
        let Known {
            session,
            integrity,
            media,
            intent,
        } = *known;
        // Without the client's ice-pwd no address can be asked for consent: records written
        // by older proxies are not relayed (their clients signal again).
        let Some(client_pwd) = session.client_pwd.as_deref() else {
            return Err(io::Error::other(
                "its record (written by an older proxy) has no client ice-pwd, so consent cannot be checked",
            ));
        };
        let consent = Consent::new(
            &session.client_ufrag,
            &session.server_ufrag,
            client_pwd,
            fastrand::u64(..),
            from,
            self.clock,
        )
        .map_err(|e| io::Error::other(format!("its ufrags are unusable: {e}")))?;
        let local = match media.ip() {
            ip if ip.is_loopback() => SocketAddr::new(ip, 0),
            IpAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            IpAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        };
        let to_origin = std::net::UdpSocket::bind(local)?;
        to_origin.connect(media)?;
        to_origin.set_nonblocking(true)?;
        let from_origin = UdpSocket::from_std(to_origin.try_clone()?)?;
        let intent = intent.unwrap_or(PickIntent::Play);
        let guard = self.ctx.sessions.open(
            Protocol::WebRtc,
            session.key.clone(),
            session.origin.clone(),
            from,
            intent,
        );
        let shared = Arc::new(Shared {
            multi: AtomicBool::new(false),
            tids: Mutex::new(TidRing::default()),
            traffic: guard.traffic().clone(),
            held: AtomicU64::new(0),
            cut: guard.cut().clone(),
        });
        let published = consent.destination();
        let (dest_tx, dest_rx) = watch::channel(published);
        let (stop_tx, stop_rx) = oneshot::channel();
        let id = self.next_id;
        self.next_id += 1;
        let span = tracing::info_span!("webrtc", id, peer = %from, stream = %session.key, origin = %session.origin);
        span.in_scope(|| tracing::info!(ufrag = %session.server_ufrag, ?intent, %media, "WebRTC session open"));
        let reader = read_origin(
            from_origin,
            self.socket.clone(),
            dest_rx,
            shared.clone(),
            stop_rx,
            guard,
        );
        let reader = async move {
            reader.await;
            drop(ip_slot);
        };
        crate::metrics::client_accepted("webrtc");
        self.ctx.lifecycle.spawn_session(reader.instrument(span));
        let relay = Relay {
            id,
            ufrag: session.server_ufrag.clone(),
            client_ufrag: session.client_ufrag,
            integrity,
            to_origin,
            consent,
            published,
            dest_tx,
            last_seen: self.now,
            shared,
            key: session.key,
            origin: session.origin,
            _stop: stop_tx,
        };
        let idx = match self.free.pop() {
            Some(idx) => {
                self.relays[idx] = Some(relay);
                idx
            }
            None => {
                self.relays.push(Some(relay));
                self.relays.len() - 1
            }
        };
        self.by_ufrag.insert(session.server_ufrag, idx);
        self.bind(idx, from);
        Ok(idx)
    }

    /// Binds a verified address to a session (taking it from any other session); the
    /// session's consent policy then decides whether media may go there.
    fn bind(&mut self, idx: usize, from: SocketAddr) {
        if let Some(previous) = self.by_addr.insert(from, idx) {
            if previous != idx {
                if let Some(other) = self.relays.get_mut(previous).and_then(Option::as_mut) {
                    other.consent.forget(from);
                    other
                        .shared
                        .multi
                        .store(other.consent.len() > 1, Ordering::Relaxed);
                }
            }
        }
    }

    fn on_tick(&mut self) {
        self.now += 1;
        self.lookups_this_tick = 0;
        let now = self.now;
        // Idle sessions end, and so do those on an origin marked down.
        let ending: Vec<(usize, &'static str)> = self
            .relays
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let r = r.as_ref()?;
                if r.shared.cut.is_cancelled() {
                    Some((i, "origin marked down"))
                } else {
                    (now.saturating_sub(r.last_seen) >= self.idle_ticks).then_some((i, "idle"))
                }
            })
            .collect();
        for (idx, reason) in ending {
            self.close(idx, reason);
        }
        // Consent: retransmissions, refreshes, and consent that lapsed.
        let clock = self.clock;
        for relay in self.relays.iter_mut().flatten() {
            for t in relay.consent.poll(clock, random_tid) {
                send_consent_request(&self.socket, relay.id, &t);
            }
            relay.publish();
        }
        if now % 4 == 0 {
            self.expire_known();
            let keep = ticks(MISSING_FOR);
            self.missing.retain(|_, at| now.saturating_sub(*at) < keep);
        }
        if now % self.renew_ticks == 0 {
            self.renew();
        }
        if now % ticks(Duration::from_secs(30)) == 0 && self.drops.any() {
            let d = std::mem::take(&mut self.drops);
            tracing::info!(
                unknown_sender = d.unknown,
                bad_stun = d.bad_stun,
                failed_integrity = d.integrity,
                unknown_ufrag = d.unknown_ufrag,
                send_to_origin_failed = d.to_origin,
                "WebRTC UDP datagrams dropped in the last 30 s"
            );
        }
    }

    fn expire_known(&mut self) {
        let (now, ttl) = (self.now, self.known_ticks);
        self.known
            .retain(|_, (_, at)| now.saturating_sub(*at) < ttl);
    }

    /// Keeps the balancer's records of live sessions from expiring, off the packet path.
    fn renew(&self) {
        let ufrags: Vec<String> = self
            .relays
            .iter()
            .flatten()
            .map(|r| r.ufrag.clone())
            .collect();
        if ufrags.is_empty() {
            return;
        }
        let ctx = self.ctx.clone();
        tokio::spawn(async move {
            for ufrag in ufrags {
                if let Err(e) = ctx.balancer.rtc(&ufrag).await {
                    tracing::debug!(
                        ufrag,
                        "cannot renew the WebRTC session in the balancer: {e}"
                    );
                    return;
                }
            }
        });
    }

    fn close(&mut self, idx: usize, reason: &str) {
        let Some(relay) = self.relays.get_mut(idx).and_then(Option::take) else {
            return;
        };
        self.free.push(idx);
        for addr in relay.consent.addrs() {
            if self.by_addr.get(&addr) == Some(&idx) {
                self.by_addr.remove(&addr);
            }
        }
        if self.by_ufrag.get(&relay.ufrag) == Some(&idx) {
            self.by_ufrag.remove(&relay.ufrag);
        }
        let t = &relay.shared.traffic;
        tracing::info!(
            id = relay.id,
            stream = %relay.key,
            origin = %relay.origin,
            reason,
            bytes_to_origin = t.to_origin.load(Ordering::Relaxed),
            bytes_to_client = t.to_client.load(Ordering::Relaxed),
            held_without_consent = relay.shared.held.load(Ordering::Relaxed),
            "WebRTC session closed"
        );
        // Dropping the relay drops its stop sender and its socket: the reader ends.
    }
}

impl Relay {
    /// Tells the reader where the origin's packets go, if that changed.
    fn publish(&mut self) {
        let dest = self.consent.destination();
        if dest == self.published {
            return;
        }
        if dest.addr != self.published.addr {
            tracing::info!(id = self.id, from = %self.published.addr, to = %dest.addr, "WebRTC client address changed");
        }
        if dest.consented != self.published.consented {
            tracing::debug!(id = self.id, client = %dest.addr, consented = dest.consented, "WebRTC client consent");
        }
        self.published = dest;
        let _ = self.dest_tx.send(dest);
    }

    /// Sends a client's packet to the origin, noting when the client was last heard;
    /// whether the socket took it.
    fn forward(&mut self, packet: &[u8], now: u64) -> bool {
        self.last_seen = now;
        self.shared.traffic.add_to_origin(packet.len());
        self.to_origin.send(packet).is_ok()
    }

    fn record(&self, msg: &Message<'_>, from: SocketAddr) {
        if let Ok(mut ring) = self.shared.tids.lock() {
            ring.record(msg.transaction_id().0, from);
        }
    }
}

/// A fresh transaction id for a consent request, from the system's CSPRNG: it is all a
/// forger lacks to answer a request sent to someone else's address.
fn random_tid() -> TransactionId {
    let mut tid = [0u8; 12];
    if let Err(e) = getrandom::fill(&mut tid) {
        // Never seen on a working system; the answer would still have to come from the
        // address asked.
        tracing::error!("the system's random source failed ({e}); consent request ids are weaker");
        tid.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    TransactionId(tid)
}

/// Sends a consent request without waiting: a full socket drops it, and the policy asks
/// again.
fn send_consent_request(socket: &UdpSocket, id: u64, t: &Transmit) {
    match socket.try_send_to(&t.datagram, t.to) {
        Ok(_) => tracing::trace!(id, to = %t.to, "consent request sent"),
        Err(e) => tracing::debug!(id, to = %t.to, "consent request not sent: {e}"),
    }
}

/// Whether a check may open or move a session: the client ufrag the offer named, and
/// MESSAGE-INTEGRITY keyed with the origin's password.
fn authentic(
    msg: &Message<'_>,
    client_ufrag: &str,
    expected_client: &str,
    key: &IntegrityKey,
) -> bool {
    client_ufrag == expected_client && msg.verify_integrity(key).is_ok()
}

/// A session another proxy signalled: the balancer's record and the origin's media address.
async fn lookup(ctx: &Context, ufrag: &str) -> Option<Box<Known>> {
    let session = match ctx.balancer.rtc(ufrag).await {
        Ok(Some(session)) => session,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(ufrag, "cannot look up a WebRTC session: {e}");
            return None;
        }
    };
    if session.client_pwd.is_none() {
        // No consent can be asked without it (see `Router::open`).
        tracing::info!(ufrag, "WebRTC session signalled by an older proxy (no client ice-pwd in its record): not relayed");
        return None;
    }
    let origin = match ctx.balancer.origin(&session.origin).await {
        Ok(Some(status)) => status.origin,
        _ => {
            tracing::info!(ufrag, origin = %session.origin, "the origin of a WebRTC session is gone");
            return None;
        }
    };
    // The address the signalling proxy stored (per-session ports), else the origin's
    // registered one (records of older proxies).
    let stored = session
        .media
        .as_deref()
        .and_then(|m| m.parse::<SocketAddr>().ok());
    let media = match stored {
        Some(media) => media,
        None => match super::signalling::media_address(&origin, None).await {
            Some(media) => media,
            None => {
                tracing::warn!(ufrag, origin = %origin.id, "the origin of a WebRTC session signalled elsewhere registered no WebRTC UDP endpoint");
                return None;
            }
        },
    };
    let intent = session.publishing.map(|publishing| {
        if publishing {
            PickIntent::Publish
        } else {
            PickIntent::Play
        }
    });
    Some(Box::new(Known {
        integrity: IntegrityKey::new(session.server_pwd.as_bytes()),
        session,
        media,
        intent,
    }))
}

/// The one task per session that reads the origin's socket and sends to the client.
async fn read_origin(
    socket: UdpSocket,
    clients: Arc<UdpSocket>,
    mut client: watch::Receiver<Destination>,
    shared: Arc<Shared>,
    stop: oneshot::Receiver<()>,
    _session: SessionGuard,
) {
    let mut buf = vec![0u8; ORIGIN_DATAGRAM];
    let mut dest = *client.borrow_and_update();
    tokio::pin!(stop);
    loop {
        let mut n = tokio::select! {
            biased;
            _ = &mut stop => break,
            received = socket.recv(&mut buf) => match received {
                Ok(n) => n,
                // ICMP port unreachable from an origin that is restarting: keep waiting.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => {
                    tracing::warn!("reading from the origin: {e}");
                    break;
                }
            },
        };
        if client.has_changed().unwrap_or(false) {
            dest = *client.borrow_and_update();
        }
        // Then whatever else is queued, without going back through the select.
        for _ in 0..BATCH {
            let packet = &buf[..n];
            if !dest.consented && !consent::may_precede_consent(packet) {
                // Media waits for the address to consent.
                shared.held.fetch_add(1, Ordering::Relaxed);
                n = match socket.try_recv(&mut buf) {
                    Ok(n) => n,
                    Err(_) => break,
                };
                continue;
            }
            let mut to = dest.addr;
            if shared.multi.load(Ordering::Relaxed) && classify(packet) == PacketKind::Stun {
                // The answer to a check goes to the address that sent it.
                if let (Some(tid), Ok(ring)) = (packet.get(8..20), shared.tids.lock()) {
                    if let Some(asker) = ring.find(tid) {
                        to = asker;
                    }
                }
            }
            shared.traffic.add_to_client(n);
            let sent = match clients.try_send_to(packet, to) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    clients.send_to(packet, to).await.map(|_| ())
                }
                other => other.map(|_| ()),
            };
            if let Err(e) = sent {
                tracing::debug!(%to, "sending to the client: {e}");
            }
            n = match socket.try_recv(&mut buf) {
                Ok(n) => n,
                Err(_) => break,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tid_ring_remembers_the_latest_askers() {
        let mut ring = TidRing::default();
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        for i in 0..TID_RING as u8 {
            ring.record([i; 12], a);
        }
        ring.record([200; 12], b);
        assert_eq!(ring.find(&[200; 12]), Some(b));
        assert_eq!(ring.find(&[0; 12]), None, "the oldest was overwritten");
        assert_eq!(ring.find(&[1; 12]), Some(a));
        assert_eq!(
            TidRing::default().find(&[0; 12]),
            None,
            "empty slots match nothing"
        );
    }
}
