//! The WebRTC media port (PROXY_WEBRTC_SERVER): one UDP socket for every client, wired to
//! the sans-IO [`Router`] of `stun-ufrag`, which makes every routing decision (see its
//! docs: checks verified by ufrag and MESSAGE-INTEGRITY, RFC 7675 consent before media goes
//! to an address, lookups bounded and rate-limited, idle sessions closed).
//!
//! This shell owns what the router does not: the sockets, the clock, the tasks, metrics
//! and logs. One task runs the router: it reads the shared socket (up to
//! [`udp_batch::BATCH`] datagrams per `recvmmsg`, the clock read once per batch), feeds
//! each datagram in and does what comes back, without awaiting on the packet path; it
//! spawns the balancer lookups the router asks for and feeds their answers back, wakes
//! at [`Router::poll_timeout`] (never while it has no session: an idle port costs
//! nothing), and takes up a reload's idle timeout and session cap when the reload
//! happens. The datagrams of one session to its origin are gathered over the whole
//! wake-up (every `recvmmsg` of it), each session's in its own order, and leave in one
//! segmented send per session ([`udp_batch::Run`], see [`Uplinks`]): many clients sending
//! at once interleave in the socket's queue, so gathering only consecutive datagrams
//! would cost one system call per packet.
//!
//! Each session has ONE connected socket towards the origin's media address (written by
//! the router task, non-blocking) and ONE task reading it ([`super::origin`]), which sends
//! to the client as the session's [`Downlink`] says; the router task hands it each new
//! `Downlink` before it sends the datagram that caused it. A session ends when the router
//! closes it (idle for PROXY_IDLE_TIMEOUT, its resource deleted), when its origin is
//! marked down (`Sessions::cut_origin`), or at shutdown; that drops its socket and ends its
//! task. While it is live the proxy renews its record in the balancer, whose own expiry
//! (`session_ttl`) then only forgets sessions nobody relays.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn_udp::UdpSocketState;
use stun_ufrag::router::{self, Action, CloseReason, DropReason, Event, Router, SessionId};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::origin::Relay;
use super::records::{self, Known, Route};
use crate::udp_batch::{self, Batch, Run};
use crate::Context;

/// `recvmmsg` calls in a row (each up to [`udp_batch::BATCH`] datagrams) before the loop
/// looks at its other inputs.
const ROUNDS: usize = 8;
/// The most bytes gathered for one session's origin before they are sent (a dozen RTP
/// packets): a wake-up keeps up to one such buffer per session it saw, GSO gains little
/// beyond it.
const UP_RUN: usize = 16 * 1024;
/// Gathering buffers kept between wake-ups; more are made when a wake-up sees more
/// sessions, and dropped after it.
const SPARE_RUNS: usize = 64;
/// Largest datagram read from a client, whole (anything a UDP socket can receive).
const DATAGRAM: usize = 65_536;

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
pub fn start(ctx: Arc<Context>, socket: UdpSocket) -> io::Result<Handle> {
    let state = Arc::new(udp_batch::state(socket.local_addr()?)?);
    let (tx, control) = mpsc::channel(1024);
    let (lookup_tx, lookups) = mpsc::channel(router::MAX_PENDING);
    let ttl = ctx.config.balancer_config.session_ttl;
    let config = router::Config {
        idle_timeout: ctx.config.idle_timeout,
        known_ttl: ttl,
        renew_every: ttl / 3,
        max_sessions: ctx.config.max_connections,
    };
    let shell = Shell {
        router: Router::new(config, Box::new(fill_random), Instant::now()),
        socket: Arc::new(socket),
        state,
        up: Uplinks::default(),
        relays: Vec::new(),
        lookup_tx,
        ctx: ctx.clone(),
    };
    tokio::spawn(shell.run(control, lookups));
    let stop = tx.clone();
    tokio::spawn(async move {
        ctx.lifecycle.stopped_accepting().await;
        let _ = stop.send(Control::StopAccepting).await;
    });
    Ok(Handle { tx })
}

type Lookup = (String, Option<Known>);

/// Datagrams on their way to origins, one [`Run`] per session seen in this wake-up.
/// Sessions' datagrams interleave in the client socket's queue (each client sends on its
/// own), so a run per session, not per consecutive stretch, is what lets one `sendmsg`
/// carry several. A session's datagrams keep their order; different sessions go to
/// different origin sockets, whose relative order nobody sees.
#[derive(Default)]
struct Uplinks {
    runs: Vec<(SessionId, Run)>,
    /// By session slot: 1 + the index of its run in `runs`, or 0.
    at: Vec<usize>,
    spare: Vec<Run>,
}

impl Uplinks {
    fn find(&self, id: SessionId) -> Option<usize> {
        let i = self.at.get(id.slot()).copied()?.checked_sub(1)?;
        (self.runs.get(i)?.0 == id).then_some(i)
    }

    /// Session `id`'s run, a new (empty) one if it has none.
    fn run(&mut self, id: SessionId) -> &mut Run {
        let i = match self.find(id) {
            Some(i) => i,
            None => {
                let run = self.spare.pop().unwrap_or_else(|| Run::with_limit(UP_RUN));
                self.runs.push((id, run));
                if self.at.len() <= id.slot() {
                    self.at.resize(id.slot() + 1, 0);
                }
                self.at[id.slot()] = self.runs.len();
                self.runs.len() - 1
            }
        };
        &mut self.runs[i].1
    }

    fn recycle(&mut self, mut run: Run) {
        if self.spare.len() < SPARE_RUNS {
            run.clear();
            self.spare.push(run);
        }
    }
}

struct Shell {
    ctx: Arc<Context>,
    router: Router<Route>,
    socket: Arc<UdpSocket>,
    /// The client socket's batching state; it also segments the sends to origins.
    state: Arc<UdpSocketState>,
    /// Datagrams on their way to origins, per session, until the end of the wake-up.
    up: Uplinks,
    relays: Vec<Option<Relay>>,
    lookup_tx: mpsc::Sender<Lookup>,
}

impl Shell {
    async fn run(
        mut self,
        mut control: mpsc::Receiver<Control>,
        mut lookups: mpsc::Receiver<Lookup>,
    ) {
        let (socket, state) = (self.socket.clone(), self.state.clone());
        let mut batch = Batch::new(DATAGRAM);
        // `None`: the router has nothing timed to do (no session), and is not woken.
        let mut deadline = self.router.poll_timeout();
        let timer = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now).into());
        tokio::pin!(timer);
        let mut reloads = self.ctx.live_changes();
        let lifecycle = self.ctx.lifecycle.clone();
        let forced = lifecycle.forced();
        tokio::pin!(forced);
        loop {
            tokio::select! {
                biased;
                () = &mut forced => break,
                Some(c) = control.recv() => {
                    match c {
                        Control::Prime(known) => self.router.prime(Instant::now(), *known),
                        Control::Forget(ufrag) => self.router.forget(&ufrag),
                        Control::StopAccepting => self.router.stop_accepting(),
                    }
                    self.act(Action::Consumed, None);
                }
                Some((ufrag, found)) = lookups.recv() => {
                    let action = self.router.handle_lookup(Instant::now(), &ufrag, found);
                    self.act(action, None);
                }
                Ok(()) = reloads.changed() => {
                    let live = self.ctx.live();
                    self.router.set_limits(live.idle_timeout, live.max_connections);
                }
                () = &mut timer, if deadline.is_some() => {
                    // Sessions whose origin was marked down end now (the router ticks
                    // while any session is open).
                    let cut = self.relays.iter().flatten().filter(|r| r.is_cut());
                    for id in cut.map(|r| r.id).collect::<Vec<_>>() {
                        self.router.close(id, CloseReason::Closed("origin marked down"));
                    }
                    self.router.handle_timeout(Instant::now());
                    self.act(Action::Consumed, None);
                }
                ready = socket.readable() => {
                    if let Err(e) = ready {
                        tracing::debug!("webrtc recv: {e}");
                    }
                    let now = Instant::now();
                    // What is already queued, a batch per call, before the other inputs.
                    for _ in 0..ROUNDS {
                        match batch.try_recv(&socket, &state) {
                            Ok(_) => {
                                for (from, datagram) in batch.datagrams() {
                                    self.on_datagram(now, from, datagram);
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => tracing::debug!("webrtc recv: {e}"),
                        }
                    }
                }
            }
            self.flush_up();
            let next = self.router.poll_timeout();
            if next != deadline {
                deadline = next;
                if let Some(at) = deadline {
                    timer.as_mut().reset(at.into());
                }
            }
        }
        tracing::info!(live = self.router.len(), "WebRTC UDP router stopped");
    }

    fn on_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        match self.router.handle_datagram(now, from, datagram) {
            Action::Drop(DropReason::FailedIntegrity) => {
                tracing::debug!(%from, "check failed MESSAGE-INTEGRITY or names another client ufrag: dropped");
            }
            action => self.act(action, Some(datagram)),
        }
    }

    /// Does what the router decided about `datagram`, then sends what it queued. A new
    /// route reaches the origin's reader before the datagram reaches the origin.
    fn act(&mut self, action: Action, datagram: Option<&[u8]>) {
        let forward = match action {
            Action::ToOrigin(id) => Some(id),
            Action::Open(id) => match self.open(id) {
                Ok(()) => Some(id),
                Err(e) => {
                    self.router.abort(id);
                    tracing::warn!("cannot open the WebRTC session: {e}");
                    None
                }
            },
            Action::Lookup(ufrag) => {
                self.lookup(ufrag);
                None
            }
            Action::Drop(reason @ (DropReason::TooManySessions | DropReason::UnusableUfrags)) => {
                tracing::warn!("cannot open the WebRTC session: {reason:?}");
                None
            }
            Action::ToClient(_) | Action::Consumed | Action::Drop(_) => None,
        };
        self.events();
        if let (Some(id), Some(datagram)) = (forward, datagram) {
            self.send_to_origin(id, datagram);
        }
        while let Some(t) = self.router.poll_transmit() {
            match t.to {
                router::Target::Client(to) => match self.socket.try_send_to(&t.datagram, to) {
                    // A full socket drops it; the consent policy asks again.
                    Ok(_) => tracing::trace!(id = %t.session, %to, "consent request sent"),
                    Err(e) => {
                        tracing::debug!(id = %t.session, %to, "consent request not sent: {e}")
                    }
                },
                router::Target::Origin => self.send_to_origin(t.session, &t.datagram),
            }
        }
    }

    /// Queues `datagram` for session `id`'s origin, after what is queued for the same
    /// session (what cannot join it leaves first); other sessions' queues wait.
    fn send_to_origin(&mut self, id: SessionId, datagram: &[u8]) {
        let max = self.state.max_gso_segments();
        let Some(to) = self.relay(id).map(Relay::media) else {
            return;
        };
        let run = self.up.run(id);
        if run.push(to, datagram, max) {
            return;
        }
        self.flush_session(id);
        self.up.run(id).push(to, datagram, max);
    }

    /// Sends what is queued for every origin.
    fn flush_up(&mut self) {
        while let Some((id, run)) = self.up.runs.pop() {
            self.up.at[id.slot()] = 0;
            self.send_run(id, &run);
            self.up.recycle(run);
        }
    }

    /// Sends what is queued for session `id`'s origin now (its run stays, empty).
    fn flush_session(&mut self, id: SessionId) {
        let Some(i) = self.up.find(id) else {
            return;
        };
        let run = std::mem::take(&mut self.up.runs[i].1);
        self.send_run(id, &run);
        self.up.runs[i].1 = run;
        self.up.runs[i].1.clear();
    }

    fn send_run(&mut self, id: SessionId, run: &Run) {
        let sent = self.relay(id).map(|relay| relay.send(&self.state, run));
        if sent == Some(false) {
            for _ in 0..run.len() {
                self.router.count_drop(DropReason::OriginSendFailed);
            }
        }
    }

    fn relay(&self, id: SessionId) -> Option<&Relay> {
        let relay = self.relays.get(id.slot()).and_then(Option::as_ref);
        relay.filter(|r| r.id == id)
    }

    fn events(&mut self) {
        while let Some(event) = self.router.poll_event() {
            match event {
                Event::Downlink {
                    session,
                    downlink,
                    previous,
                } => {
                    let Some(relay) = self.relay(session) else {
                        continue;
                    };
                    let dest = downlink.destination();
                    if dest.addr != previous.addr {
                        tracing::info!(id = %session, from = %previous.addr, to = %dest.addr, "WebRTC client address changed");
                    }
                    if dest.consented != previous.consented {
                        tracing::debug!(id = %session, client = %dest.addr, consented = dest.consented, "WebRTC client consent");
                    }
                    relay.route(*downlink);
                }
                Event::Closed {
                    session,
                    reason,
                    data,
                } => {
                    // What it sent before it closed still goes.
                    self.flush_session(session);
                    let slot = self.relays.get_mut(session.slot());
                    if let Some(relay) = slot.and_then(Option::take) {
                        relay.closed(reason, &data);
                    }
                }
                Event::Renew(ufrags) => self.renew(ufrags),
                Event::Report(d) => tracing::info!(
                    unknown_sender = d.unknown_sender,
                    bad_stun = d.bad_stun,
                    failed_integrity = d.failed_integrity,
                    unknown_ufrag = d.unknown_ufrag,
                    refused = d.refused,
                    send_to_origin_failed = d.origin_send_failed,
                    "WebRTC UDP datagrams dropped in the last 30 s"
                ),
            }
        }
    }

    /// Sets up a session the router opened: its socket to the origin and its reader.
    fn open(&mut self, id: SessionId) -> io::Result<()> {
        let r = &self.router;
        let (Some(route), Some(downlink)) = (r.session(id), r.downlink(id)) else {
            return Err(io::Error::other("the router has no such session"));
        };
        let ufrag = r.ufrag(id).unwrap_or_default();
        let relay = Relay::open(
            &self.ctx,
            &self.socket,
            &self.state,
            id,
            ufrag,
            route,
            downlink,
        )?;
        if self.relays.len() <= id.slot() {
            self.relays.resize_with(id.slot() + 1, || None);
        }
        self.relays[id.slot()] = Some(relay);
        Ok(())
    }

    /// Looks a ufrag up in the balancer, off the packet path.
    fn lookup(&self, ufrag: String) {
        let (ctx, tx) = (self.ctx.clone(), self.lookup_tx.clone());
        tokio::spawn(async move {
            let wait = ctx
                .config
                .origin_connect_timeout
                .max(Duration::from_secs(1));
            let found = tokio::time::timeout(wait, records::lookup(&ctx, &ufrag))
                .await
                .unwrap_or(None);
            if found.is_some() {
                tracing::debug!(ufrag, "WebRTC session found in the balancer");
            }
            let _ = tx.send((ufrag, found)).await;
        });
    }

    /// Keeps the balancer's records of live sessions from expiring, off the packet path.
    fn renew(&self, ufrags: Vec<String>) {
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
}

/// Random bytes for consent request transaction ids and tie-breakers, from the system's
/// CSPRNG: a transaction id is all a forger lacks to answer a request sent to someone
/// else's address.
fn fill_random(buf: &mut [u8]) {
    if let Err(e) = getrandom::fill(buf) {
        // Never seen on a working system; the answer would still have to come from the
        // address asked.
        tracing::error!("the system's random source failed ({e}); consent request ids are weaker");
        buf.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
}
