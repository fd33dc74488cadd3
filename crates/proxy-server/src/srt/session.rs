//! One SRT connection, in one task: the origin is reached ([`super::dial`]), and then the
//! session's own socket toward it is read and its packets relayed to the client
//! ([`srt_streamid::Relay`]) until the session ends.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lb_core::{PickIntent, StreamKey};
use srt_streamid::{Mode, Outcome, RejectReason, Relay, Session, Silence, Silent, Verdict};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::dial::{connect, reject_reason, Dialed};
use super::{Clock, Event, Leg, Phase, DRAIN, MAX_DATAGRAM};
use crate::limits::IpGuard;
use crate::metrics;
use crate::sessions::{Protocol, SessionGuard, Traffic};
use crate::udp_batch::{self, Batch, Run};
use crate::Context;

/// What the receive loop hands to a new session's task.
pub(super) struct Setup {
    pub ctx: Arc<Context>,
    /// The client-facing socket.
    pub front: Arc<UdpSocket>,
    /// Batched reads and segmented sends.
    pub state: Arc<quinn_udp::UdpSocketState>,
    pub events: mpsc::Sender<Event>,
    pub clock: Clock,
    /// The client's handshake, the proxy's ids allocated.
    pub session: Session,
    pub key: StreamKey,
    pub mode: Mode,
    /// The client IP's slot, held for as long as the session runs.
    pub ip_slot: IpGuard,
}

/// Runs one connection from its accepted conclusion to its end.
pub(super) async fn run(setup: Setup) {
    let Setup {
        ctx,
        front,
        state,
        events,
        clock,
        mut session,
        key,
        mode,
        ip_slot: _ip_slot,
    } = setup;
    let intent = match mode {
        Mode::Publish | Mode::Bidirectional => PickIntent::Publish,
        Mode::Request => PickIntent::Play,
    };
    let refused = |reason: RejectReason, why: &dyn std::fmt::Display| {
        let code = reason.code();
        tracing::info!(stream = %key, ?mode, reject = code, "SRT connection refused: {why}");
    };
    let (origin, socket, session) = match connect(&ctx, clock, &session, &key, intent).await {
        Ok((origin, Dialed::Connected { session, socket })) => (origin, socket, session),
        Ok((origin, Dialed::Rejected(session))) => {
            metrics::refused("srt", metrics::Refusal::OriginRefused);
            if let Some(Outcome::Rejected(reason)) = session.outcome() {
                let why = format!(
                    "origin {} rejected it ({reason:?}, {})",
                    origin.id,
                    reason.code()
                );
                refused(reason, &why);
            }
            crate::origin_link::release_refused_play(&ctx, intent, &key, &origin.id).await;
            return decline(&events, session).await;
        }
        Err(e) => {
            let reason = reject_reason(&e);
            refused(reason, &e);
            session.refuse(reason, clock.now());
            return decline(&events, session).await;
        }
    };
    let (Some(Outcome::Connected(relay)), Some(endpoint)) =
        (session.outcome(), session.origin_addr())
    else {
        // Dialed::Connected has both; this keeps the router's books right regardless.
        return decline(&events, session).await;
    };
    let client = session.client_addr();
    let guard = ctx.sessions.open(
        Protocol::Srt,
        key.clone(),
        origin.id.clone(),
        client,
        intent,
    );
    let traffic = guard.traffic().clone();
    let cut = guard.cut().clone();
    let (phase_tx, mut phase) = watch::channel(Phase::Answering);
    let socket = Arc::new(socket);
    let leg = Leg {
        origin: socket.clone(),
        to: endpoint,
        traffic: traffic.clone(),
        phase: phase_tx,
    };
    tracing::info!(stream = %key, origin = %origin.id, %endpoint, ?mode, "SRT session started");
    let mut live = Live {
        front,
        state,
        origin: socket,
        client,
        relay,
        traffic,
        events: events.clone(),
        key,
        started: Instant::now(),
        ended: false,
        _guard: guard,
    };
    let answered = Event::Answered {
        session: Box::new(session),
        leg: Some(leg),
    };
    if events.send(answered).await.is_err()
        || phase.wait_for(|p| *p != Phase::Answering).await.is_err()
    {
        return;
    }
    let reason = live
        .relay(&mut phase, &cut, ctx.live().idle_timeout, clock)
        .await;
    live.end(reason);
    let _ = events
        .send(Event::Ended {
            id: relay.ids.toward_client,
        })
        .await;
}

/// Gives the router back a session that will not relay (it answers the client with the
/// session's verdict, or as unavailable if there is none).
async fn decline(events: &mpsc::Sender<Event>, session: Session) {
    let session = Box::new(session);
    let _ = events.send(Event::Answered { session, leg: None }).await;
}

/// A relaying session. Dropping it (the proxy's forced shutdown) still logs its end and
/// closes both legs.
struct Live {
    front: Arc<UdpSocket>,
    state: Arc<quinn_udp::UdpSocketState>,
    origin: Arc<UdpSocket>,
    client: SocketAddr,
    relay: Relay,
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
    Silent(Silent),
    ProxyShutdown,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            End::ClientShutdown => "client shutdown",
            End::OriginShutdown => "origin shutdown",
            End::OriginGone => "origin unreachable",
            End::OriginDown => "origin marked down by its probes",
            End::Silent(Silent::Client) => "idle: nothing from the client",
            End::Silent(Silent::Origin) => "idle: nothing from the origin",
            End::ProxyShutdown => "proxy shutdown",
        }
    }
}

impl Live {
    /// Relays the origin's packets to the client until the session ends. The client's
    /// packets are relayed by the receive loop, which moves `phase` on their SHUTDOWN;
    /// `cut` is cancelled when the origin's probes mark it down.
    async fn relay(
        &mut self,
        phase: &mut watch::Receiver<Phase>,
        cut: &CancellationToken,
        idle: Duration,
        clock: Clock,
    ) -> End {
        let mut batch = Batch::new(MAX_DATAGRAM);
        let mut run = Run::new();
        let mut silence = Silence::new(idle, clock.now());
        // Made once: each poll of a fresh one would register with the token again.
        let stopped = async {
            phase
                .wait_for(|p| *p == Phase::ClientShutdown)
                .await
                .is_ok()
        };
        let origin_down = cut.cancelled();
        let look = tokio::time::sleep_until(clock.at(silence.poll_timeout()));
        tokio::pin!(stopped, origin_down, look);
        loop {
            tokio::select! {
                biased;
                // The front gone (the proxy is exiting) ends it as well.
                said = &mut stopped => return if said { End::ClientShutdown } else { End::ProxyShutdown },
                () = &mut origin_down => return End::OriginDown,
                ready = self.origin.readable() => {
                    if let Err(e) = ready {
                        tracing::debug!("srt: origin recv: {e}");
                    }
                    for _ in 0..DRAIN {
                        match batch.try_recv(&self.origin, &self.state) {
                            Ok(_) => {
                                let mut end = None;
                                for (_, packet) in batch.datagrams() {
                                    match self.relay.from_origin(packet) {
                                        Verdict::Drop => continue,
                                        Verdict::Forward => {}
                                        Verdict::Last => end = Some(End::OriginShutdown),
                                    }
                                    self.to_client(&mut run, packet).await;
                                    if end.is_some() {
                                        break;
                                    }
                                }
                                self.flush(&mut run).await;
                                if let Some(end) = end {
                                    return end;
                                }
                            }
                            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                                return End::OriginGone;
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) => tracing::debug!("srt: origin recv: {e}"),
                        }
                    }
                }
                () = &mut look => {
                    let t = &self.traffic;
                    let (up, down) = (t.to_origin.load(Ordering::Relaxed), t.to_client.load(Ordering::Relaxed));
                    if let Some(side) = silence.handle_timeout(clock.now(), up, down) {
                        return End::Silent(side);
                    }
                    look.as_mut().reset(clock.at(silence.poll_timeout()));
                }
            }
        }
    }

    /// Gathers a readdressed packet for the client, sending first what it cannot join:
    /// a batch's packets leave in as few segmented sends as their sizes allow.
    async fn to_client(&self, run: &mut Run, packet: &[u8]) {
        let max = self.state.max_gso_segments();
        if !run.push(self.client, packet, max) {
            self.flush(run).await;
            // An empty run takes any datagram.
            run.push(self.client, packet, max);
        }
    }

    /// Sends what was gathered for the client, waiting for room in the socket's buffer.
    async fn flush(&self, run: &mut Run) {
        if let Some(transmit) = run.transmit() {
            match udp_batch::send(&self.state, &self.front, &transmit).await {
                Ok(()) => self.traffic.add_to_client(run.bytes()),
                Err(e) => tracing::debug!("srt: send to client: {e}"),
            }
        }
        run.clear();
    }

    /// Logs the end and, when the proxy ends it, tells both peers.
    fn end(&mut self, reason: End) {
        if self.ended {
            return;
        }
        self.ended = true;
        if !matches!(reason, End::ClientShutdown | End::OriginShutdown) {
            let _ = self
                .front
                .try_send_to(&self.relay.shutdown_to_client(), self.client);
            let _ = self.origin.try_send(&self.relay.shutdown_to_origin());
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
            let id = self.relay.ids.toward_client;
            let _ = self.events.try_send(Event::Ended { id });
        }
    }
}
