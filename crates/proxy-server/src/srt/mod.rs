//! SRT front-end (PROXY_SRT_SERVER): the sockets and tasks around
//! [`srt_streamid::Router`], which makes every decision.
//!
//! One UDP socket faces the clients. Its receive loop ([`Front`]) owns the router and
//! never waits for anything but the socket, its event queue and the router's timer. It
//! reads up to [`udp_batch::BATCH`] datagrams per system call (`recvmmsg`):
//!
//! - each datagram goes through [`Router::handle_datagram`]: a packet of a live session is
//!   readdressed there and gathered with the batch's next ones for the same session
//!   ([`ToOrigin`]); the run leaves on the session's origin socket in one `sendmsg` with
//!   `UDP_SEGMENT` (no lock, no allocation, no await, no per-packet counter update);
//!   handshakes are answered through [`Router::poll_transmit`];
//! - a conclusion that opens a connection ([`Action::Open`]) gets a task
//!   ([`session::run`]) that asks the balancer, replays the handshake to the origin
//!   through its own connected UDP socket ([`dial`]), and reads that socket for the rest
//!   of the session;
//! - the task hands the decided session back as an [`Event`]: the router installs the
//!   route and queues the answer; once it is sent, the task is told to relay.
//!
//! A SHUTDOWN from either side is relayed and ends the session; so does silence from
//! either side for `idle_timeout`.

mod dial;
mod session;

use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use lb_core::StreamKey;
use srt_streamid::{Action, Limits, Opening, Refusal, RejectReason, Router, Session};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::limits::LogThrottle;
use crate::metrics;
use crate::sessions::Traffic;
use crate::udp_batch::{self, Batch, Run};
use crate::Context;

/// Largest datagram relayed. libsrt's payloads fit a 1500-byte MTU; jumbo frames fit too.
const MAX_DATAGRAM: usize = 9216;
/// Handshakes waiting for the balancer or an origin at once; beyond it, refused.
const MAX_PENDING: usize = 1024;
/// `recvmmsg` calls a session's task makes per wake-up (each up to [`udp_batch::BATCH`]
/// datagrams) before it looks at its other inputs.
const DRAIN: usize = 2;
/// `recvmmsg` calls per wake-up of the receive loop (each up to [`udp_batch::BATCH`]
/// datagrams) before it looks at its events again.
const ROUNDS: usize = 4;
/// Refusals for a limit are logged once a second at most: a flood must not flood the log.
static REFUSAL_LOG: LazyLock<LogThrottle> =
    LazyLock::new(|| LogThrottle::new(Duration::from_secs(1)));

/// The router's limits under a configuration.
fn limits(config: &crate::Config) -> Limits {
    Limits {
        max_sessions: config.max_connections.max(1),
        max_pending: MAX_PENDING,
        answer_ttl: config.handshake_timeout,
    }
}

/// Binds the listener, if configured, and serves it until shutdown.
pub async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let Some(addr) = ctx.config.srt_listen else {
        return Ok(());
    };
    let socket = crate::bind_udp("srt", addr).await?;
    let state =
        udp_batch::state(socket.local_addr()?).context("probing the kernel for UDP batching")?;
    let socket = Arc::new(socket);
    let (events_tx, events_rx) = mpsc::channel(MAX_PENDING);
    let front = Front {
        router: Router::new(random_key()?, limits(&ctx.live())),
        ctx,
        socket,
        state: Arc::new(state),
        events: events_tx,
        clock: Clock(Instant::now()),
        to_origin: ToOrigin::default(),
    };
    tokio::spawn(front.run(events_rx));
    Ok(())
}

/// The key of the SYN cookies and socket ids, from the operating system's CSPRNG.
fn random_key() -> anyhow::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .context("reading the SRT key from /dev/urandom")?;
    Ok(key)
}

/// The one clock of the SRT state machines: monotonic, from the front's start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock(Instant);

impl Clock {
    fn now(self) -> Duration {
        self.0.elapsed()
    }

    /// The instant a time on this clock falls at, for a timer.
    fn at(self, t: Duration) -> tokio::time::Instant {
        (self.0 + t).into()
    }
}

/// Where a session's task is, as the receive loop tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The client has not been sent the origin's answer yet: the origin's packets wait
    /// (a libsrt caller ignores data before the answer).
    Answering,
    Relaying,
    /// The client said SHUTDOWN (relayed already).
    ClientShutdown,
}

/// What the router keeps per live route: the origin leg.
pub(crate) struct Leg {
    /// Connected to `to`.
    origin: Arc<UdpSocket>,
    to: SocketAddr,
    traffic: Arc<Traffic>,
    phase: watch::Sender<Phase>,
}

/// What a session's task tells the receive loop.
pub(crate) enum Event {
    /// The handshake is decided; `leg` is set when connected.
    Answered {
        session: Box<Session>,
        leg: Option<Leg>,
    },
    /// The session ended; its id can be given out again.
    Ended { id: u32 },
}

/// The receive loop's state.
struct Front {
    ctx: Arc<Context>,
    socket: Arc<UdpSocket>,
    /// Batched reads and segmented sends, for every socket of the relay.
    state: Arc<quinn_udp::UdpSocketState>,
    router: Router<Leg>,
    events: mpsc::Sender<Event>,
    clock: Clock,
    to_origin: ToOrigin,
}

/// A batch's consecutive packets for one session's origin, gathered for one segmented
/// send. A publisher's packets come in bursts (libsrt sends what the encoder hands it at
/// once: about six 1316-byte packets per read at 40 Mbit/s), and on loopback each
/// `sendto` also pays for the origin's whole receive path and its wake-up; one send per
/// run pays those once.
#[derive(Default)]
struct ToOrigin {
    run: Run,
    /// The session the run is for: its socket and its byte counts.
    leg: Option<(Arc<UdpSocket>, Arc<Traffic>)>,
}

impl ToOrigin {
    /// Adds a readdressed packet for `leg`, first sending what was gathered for another
    /// session or what the packet cannot join.
    fn push(&mut self, state: &quinn_udp::UdpSocketState, leg: &Leg, datagram: &[u8]) {
        let same = matches!(&self.leg, Some((socket, _)) if Arc::ptr_eq(socket, &leg.origin));
        if !same {
            self.flush(state);
            self.leg = Some((leg.origin.clone(), leg.traffic.clone()));
        }
        let max = state.max_gso_segments();
        if !self.run.push(leg.to, datagram, max) {
            self.flush(state);
            // An empty run takes any datagram.
            self.run.push(leg.to, datagram, max);
        }
    }

    /// Sends the run. Never waits: a full socket buffer drops it, as the network would.
    fn flush(&mut self, state: &quinn_udp::UdpSocketState) {
        if let (Some(transmit), Some((socket, traffic))) = (self.run.transmit(), &self.leg) {
            match udp_batch::try_send(state, &**socket, &transmit) {
                Ok(()) => traffic.add_to_origin(self.run.bytes()),
                Err(e) => tracing::debug!("srt: send to origin: {e}"),
            }
        }
        self.run.clear();
    }

    /// Sends the run and lets go of its session (whose socket may close).
    fn finish(&mut self, state: &quinn_udp::UdpSocketState) {
        self.flush(state);
        self.leg = None;
    }
}

impl Front {
    async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        let (socket, state) = (self.socket.clone(), self.state.clone());
        let life = self.ctx.lifecycle.clone();
        let stopped = life.stopped_accepting();
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(stopped, timer);
        let (mut accepting, mut armed) = (true, None);
        // A reloaded session cap and handshake timeout are taken up when the reload
        // happens: no timer wakes an idle port to look for one.
        let mut reloads = self.ctx.live_changes();
        let mut batch = Batch::new(MAX_DATAGRAM);
        loop {
            // Reset only when the router's next deadline changes: not once per wake-up.
            let next = self.router.poll_timeout();
            if next != armed {
                if let Some(at) = next {
                    timer.as_mut().reset(self.clock.at(at));
                }
                armed = next;
            }
            tokio::select! {
                biased;
                Some(event) = events.recv() => self.on_event(event),
                () = &mut stopped, if accepting => {
                    accepting = false;
                    self.router.stop_accepting();
                    tracing::info!(protocol = "srt", "stopped accepting");
                }
                Ok(()) = reloads.changed() => self.router.set_limits(limits(&self.ctx.live())),
                () = &mut timer, if armed.is_some() => {
                    armed = None;
                    self.router.handle_timeout(self.clock.now());
                }
                ready = socket.readable() => {
                    if let Err(e) = ready {
                        tracing::debug!("srt recv: {e}");
                    }
                    // One reading of the clock per wake-up: the router needs it only for
                    // handshakes, which do not care about microseconds.
                    let now = self.clock.now();
                    for _ in 0..ROUNDS {
                        match batch.try_recv(&socket, &state) {
                            Ok(_) => {
                                for (from, datagram) in batch.datagrams() {
                                    self.on_datagram(now, datagram, from);
                                }
                                self.to_origin.finish(&state);
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                            // ICMP errors reported on some platforms; nothing to do.
                            Err(e) => tracing::debug!("srt recv: {e}"),
                        }
                    }
                }
            }
            self.flush();
        }
    }

    fn on_datagram(&mut self, now: Duration, datagram: &mut [u8], from: SocketAddr) {
        match self.router.handle_datagram(now, from, datagram) {
            Action::Forward { to: leg, last } => {
                self.to_origin.push(&self.state, leg, datagram);
                if last {
                    // The SHUTDOWN leaves before its task hears of it.
                    self.to_origin.finish(&self.state);
                    let _ = leg.phase.send(Phase::ClientShutdown);
                }
            }
            Action::Open(opening) => self.open(now, *opening),
            Action::Handshake => {}
            Action::Refused(refusal) => refused(&refusal, from),
            Action::Dropped(Some(e)) => tracing::debug!(peer = %from, "srt: dropped: {e}"),
            Action::Dropped(None) => {}
        }
    }

    /// A new connection: the stream must be one the balancer can place, and the client's
    /// IP must have room; then its task takes it.
    fn open(&mut self, now: Duration, opening: Opening) {
        let Opening { session, streamid } = opening;
        let peer = session.client_addr();
        let (key, mode) = match StreamKey::from_srt_streamid(&streamid) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::info!(%peer, streamid, "SRT connection refused: {e}");
                return self.router.refuse(session, RejectReason::BadRequest, now);
            }
        };
        let Some(ip_slot) = self.ctx.per_ip.try_acquire(peer.ip()) else {
            metrics::refused("srt", metrics::Refusal::IpLimit);
            if let Some(held_back) = REFUSAL_LOG.allow() {
                tracing::warn!(%peer, stream = %key, limit = self.ctx.per_ip.limit(), held_back, "SRT connection refused: the client's IP has as many sessions as it may");
            }
            return self.router.refuse(session, RejectReason::Overload, now);
        };
        metrics::client_accepted("srt");
        let id = session.ids().toward_client;
        let span =
            tracing::info_span!("srt", %peer, id = format_args!("{id:#010x}"), stream = %key);
        let setup = session::Setup {
            ctx: self.ctx.clone(),
            front: self.socket.clone(),
            state: self.state.clone(),
            events: self.events.clone(),
            clock: self.clock,
            session,
            key,
            mode,
            ip_slot,
        };
        self.ctx
            .lifecycle
            .spawn_session(session::run(setup).instrument(span));
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Answered { session, leg } => {
                let id = session.ids().toward_client;
                // The route first, so that the client's first packets find it; then the
                // answer; then the origin's packets.
                self.router.answered(*session, leg, self.clock.now());
                self.flush();
                if let Some(leg) = self.router.route(id) {
                    let _ = leg.phase.send(Phase::Relaying);
                }
            }
            Event::Ended { id } => self.router.ended(id),
        }
    }

    /// Sends what the router has to say. Never waits: a full socket buffer drops the
    /// datagram, as the network would.
    fn flush(&mut self) {
        while let Some(t) = self.router.poll_transmit() {
            if let Err(e) = self.socket.try_send_to(&t.payload, t.to) {
                tracing::debug!(peer = %t.to, "srt send: {e}");
            }
        }
    }
}

/// Logs and counts a conclusion the router turned away.
fn refused(refusal: &Refusal, peer: SocketAddr) {
    match refusal {
        Refusal::BadStreamId(e) => {
            tracing::info!(%peer, "SRT connection refused: bad streamid: {e}");
        }
        Refusal::NoStreamId => tracing::info!(%peer, "SRT connection refused: no streamid"),
        Refusal::NotAccepting => {}
        Refusal::Full { open, pending } => {
            metrics::refused("srt", metrics::Refusal::ConnectionLimit);
            if let Some(held_back) = REFUSAL_LOG.allow() {
                tracing::warn!(%peer, open, pending, held_back, "SRT connection refused: session limit reached");
            }
        }
    }
}
