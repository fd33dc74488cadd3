//! One WebRTC session's path to its origin: a connected UDP socket, written by the router's
//! task without awaiting, and one task reading it that sends to the client where the
//! session's [`Downlink`] says (media held until the client's address consents, answers
//! to checks to the address that sent them). What the reader finds queued for the client
//! leaves in one segmented send where it can ([`udp_batch::Run`]).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use lb_core::PickIntent;
use quinn_udp::UdpSocketState;
use stun_ufrag::router::{Action, CloseReason, Downlink, SessionId};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::records::Route;
use crate::sessions::{Protocol, Traffic};
use crate::udp_batch::{self, Run};
use crate::Context;

/// Largest datagram relayed from an origin (WebRTC stacks stay under the path MTU).
const ORIGIN_DATAGRAM: usize = 4096;
/// Datagrams read in a row before the task looks at its other inputs.
const BATCH: usize = 64;
/// The most bytes of a run to the client (a dozen RTP packets): every session keeps a
/// buffer this large once it has sent a burst, and GSO gains little beyond it.
const CLIENT_RUN: usize = 16 * 1024;

/// An open session's path; dropping it closes the socket and ends the reader.
pub struct Relay {
    pub id: SessionId,
    /// Connected to the origin; written without awaiting.
    to_origin: std::net::UdpSocket,
    /// The origin's media address, where `to_origin` is connected.
    media: SocketAddr,
    downlink: watch::Sender<Downlink>,
    traffic: Arc<Traffic>,
    /// Origin packets not sent because the current address has not consented.
    held: Arc<AtomicU64>,
    /// Cancelled when the origin's probes mark it down (`Sessions::cut_origin`).
    cut: CancellationToken,
    /// Dropping it stops the reader.
    _stop: oneshot::Sender<()>,
}

impl Relay {
    /// Sets up session `id` the router opened: registers it, binds its socket towards
    /// `route.media`, and spawns its reader, which sends on `clients`.
    pub fn open(
        ctx: &Context,
        clients: &Arc<UdpSocket>,
        state: &Arc<UdpSocketState>,
        id: SessionId,
        ufrag: &str,
        route: &Route,
        downlink: &Downlink,
    ) -> io::Result<Relay> {
        let from = downlink.destination().addr;
        // A client may signal many sessions over one HTTP connection: its IP's limit is
        // held by the sessions themselves.
        let Some(ip_slot) = ctx.per_ip.try_acquire(from.ip()) else {
            crate::metrics::refused("webrtc", crate::metrics::Refusal::IpLimit);
            return Err(io::Error::other(
                "the client's IP has as many sessions as it may (PROXY_MAX_CONNECTIONS_PER_IP)",
            ));
        };
        let media = route.media;
        let local = match media.ip() {
            ip if ip.is_loopback() => SocketAddr::new(ip, 0),
            IpAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            IpAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        };
        let to_origin = std::net::UdpSocket::bind(local)?;
        to_origin.connect(media)?;
        to_origin.set_nonblocking(true)?;
        let from_origin = UdpSocket::from_std(to_origin.try_clone()?)?;
        let intent = route.intent.unwrap_or(PickIntent::Play);
        let (key, origin) = (route.key.clone(), route.origin.clone());
        let guard = ctx
            .sessions
            .open(Protocol::WebRtc, key, origin, from, intent);
        let (traffic, cut) = (guard.traffic().clone(), guard.cut().clone());
        let held = Arc::new(AtomicU64::new(0));
        let (downlink_tx, downlink_rx) = watch::channel(downlink.clone());
        let (stop_tx, stop_rx) = oneshot::channel();
        let span = tracing::info_span!("webrtc", id = %id, peer = %from, stream = %route.key, origin = %route.origin);
        span.in_scope(|| tracing::info!(ufrag, ?intent, %media, "WebRTC session open"));
        let (clients, counts) = (clients.clone(), (traffic.clone(), held.clone()));
        let state = state.clone();
        let reader = async move {
            let clients = (&*clients, &*state);
            read(from_origin, clients, downlink_rx, counts, stop_rx).await;
            drop((guard, ip_slot));
        };
        crate::metrics::client_accepted("webrtc");
        ctx.lifecycle.spawn_session(reader.instrument(span));
        Ok(Relay {
            id,
            to_origin,
            media,
            downlink: downlink_tx,
            traffic,
            held,
            cut,
            _stop: stop_tx,
        })
    }

    /// Sends client datagrams to the origin (one system call); whether the socket took
    /// them.
    pub fn send(&self, state: &UdpSocketState, run: &Run) -> bool {
        let Some(transmit) = run.transmit() else {
            return true;
        };
        self.traffic.add_to_origin(run.bytes());
        if transmit.segment_size.is_none() {
            return self.to_origin.send(transmit.contents).is_ok();
        }
        udp_batch::try_send(state, &self.to_origin, &transmit).is_ok()
    }

    /// The origin's media address.
    pub fn media(&self) -> SocketAddr {
        self.media
    }

    /// Hands the reader a new route.
    pub fn route(&self, downlink: Downlink) {
        self.downlink.send_replace(downlink);
    }

    /// Whether the session's origin was marked down.
    pub fn is_cut(&self) -> bool {
        self.cut.is_cancelled()
    }

    /// Logs the end of the session; dropping `self` then ends its reader.
    pub fn closed(self, reason: CloseReason, route: &Route) {
        let t = &self.traffic;
        tracing::info!(
            id = %self.id, stream = %route.key, origin = %route.origin, reason = reason.as_str(),
            bytes_to_origin = t.to_origin.load(Ordering::Relaxed),
            bytes_to_client = t.to_client.load(Ordering::Relaxed),
            held_without_consent = self.held.load(Ordering::Relaxed),
            "WebRTC session closed"
        );
    }
}

/// Reads the origin until `stop` is dropped.
async fn read(
    socket: UdpSocket,
    (clients, state): (&UdpSocket, &UdpSocketState),
    mut downlink: watch::Receiver<Downlink>,
    (traffic, held): (Arc<Traffic>, Arc<AtomicU64>),
    stop: oneshot::Receiver<()>,
) {
    let mut buf = vec![0u8; ORIGIN_DATAGRAM];
    let mut run = Run::with_limit(CLIENT_RUN);
    let mut route = downlink.borrow_and_update().clone();
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
        // Then whatever else is queued, without going back through the select; runs to
        // one address leave as one send.
        for round in 1..=BATCH {
            let packet = &buf[..n];
            // Looked at per packet (one atomic load): a check's answer may follow the check,
            // and the route naming its asker, within microseconds.
            if downlink.has_changed().unwrap_or(false) {
                route = downlink.borrow_and_update().clone();
            }
            match route.route(packet) {
                Action::ToClient(to) => {
                    traffic.add_to_client(n);
                    let max = state.max_gso_segments();
                    if !run.push(to, packet, max) {
                        flush(clients, state, &mut run).await;
                        run.push(to, packet, max);
                    }
                }
                _ => {
                    held.fetch_add(1, Ordering::Relaxed);
                }
            }
            if round == BATCH {
                break;
            }
            n = match socket.try_recv(&mut buf) {
                Ok(n) => n,
                Err(_) => break,
            };
        }
        flush(clients, state, &mut run).await;
    }
}

/// Sends the run to the client, waiting for room in the socket's buffer if it is full.
async fn flush(clients: &UdpSocket, state: &UdpSocketState, run: &mut Run) {
    if run.is_empty() {
        return;
    }
    if let Some(transmit) = run.transmit() {
        if let Err(e) = udp_batch::send(state, clients, &transmit).await {
            tracing::debug!(to = %transmit.destination, "sending to the client: {e}");
        }
    }
    run.clear();
}
