//! RTMP front-end (PROXY_RTMP_SERVER).
//!
//! Per connection, with [`rtmp_peek`] doing all the protocol work:
//!
//! 1. **Identify** (within `handshake_timeout`, counted from accept, so an RTMPS client's
//!    TLS handshake counts too): the handshake,
//!    `connect`, `releaseStream`, `FCPublish` and `createStream` are answered locally by a
//!    [`ServerSession`] until the client sends `publish` or `play`. A client that sends
//!    nothing, drips bytes, or sends something that is not RTMP within the limits of
//!    `rtmp-peek` (message size, chunk streams, AMF0 nesting, setup size) is closed with a
//!    log line, and nothing is asked of the balancer.
//! 2. **Route**: the stream key comes from tcUrl and the stream name
//!    ([`StreamKey::from_rtmp`]); the balancer picks the origin and the proxy connects to
//!    one of its RTMP endpoints ([`link_tcp`]: an origin that does not accept is marked
//!    down and the stream placed again), sending a PROXY protocol header first if
//!    configured.
//! 3. **Replay**: a [`ClientSession`] towards the origin replays the client's own messages
//!    (the whole `connect` object, the stream name with its query) and reports the origin's
//!    verdict within `origin_connect_timeout` (counted once the TCP connection is up).
//!    What the origin says is forwarded to the client, so the client is never told
//!    `Publish.Start` before the origin said it, and an origin's refusal (an `on_publish`
//!    hook answering 403...) reaches the client as the origin's own error status.
//!    When the proxy itself cannot go on (no origin, origin unreachable, origin silent or
//!    closing), the client gets `onStatus` level `error` (`NetStream.Publish.Rejected` or
//!    `NetStream.Play.Failed`) with the reason as its description.
//! 4. **Relay** (see [`relay`]): messages both ways until either side closes, fails, or no
//!    byte moves for `idle_timeout`. The session is listed in `/api/v1/streams` while the
//!    relay runs, with its byte counters.
//!
//! # Slow peers: backpressure, not drop
//!
//! The relay buffers at most [`relay::HIGH_WATER`] bytes (plus one read) per direction.
//! When a player reads slower than its origin sends, the proxy stops reading from that
//! origin connection; the origin's TCP send to this player then fills, and the origin
//! applies its own policy for slow players (nginx-rtmp and SRS drop frames for that player
//! alone; other players of the stream are not affected, because each player has its own
//! origin connection). Likewise a slow origin slows down its publisher's TCP send. The
//! proxy never drops or reorders messages itself: it has no codec knowledge to drop at a
//! keyframe boundary, and a stalled connection ends by `idle_timeout` anyway.
//!
//! # Memory
//!
//! What one connection may make the proxy hold is bounded: a client's messages by
//! [`CLIENT_READER_LIMITS`] (2 MiB each, 2.25 MiB of partial messages at once, reserved
//! as bytes arrive rather than as headers declare), the origin's by `rtmp-peek`'s default
//! limits, output by [`relay::HIGH_WATER`] per direction. All connections together draw on
//! one [`budget::BufferBudget`] (`PROXY_RTMP_BUFFER_BUDGET`) for what each holds beyond an
//! ordinary stream's working set; a connection that needs more than is left is closed.
//!
//! # Logs
//!
//! Every connection runs in the `conn` span of the accept loop (protocol, peer). A session
//! logs one line when it starts (stream, origin, publish/play) and one when it ends (bytes
//! each way, duration, reason); a connection that never becomes a session logs why it was
//! closed or refused.

pub mod budget;
pub mod relay;

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use lb_core::{PickIntent, StreamKey};
use rtmp_peek::session::SetupStage;
use rtmp_peek::{
    ClientConfig, ClientEvent, ClientSession, Command, Identified, ReaderLimits, Relay,
    ServerConfig, ServerEvent, ServerSession, StreamKind,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::Instrument;

use self::budget::{BufferBudget, Charge, OverBudget};
use crate::accept::ClientStream;
use crate::origin_link::{link_tcp, ClientAddrs, Leg, LinkError};
use crate::sessions::Protocol;
use crate::Context;

/// How long a refused client gets to read its error status before the socket closes.
const REFUSAL_LINGER: Duration = Duration::from_secs(2);

/// What a client's chunk stream may make the proxy hold. A real publisher has one video
/// frame in progress at a time, with audio between its chunks: room for one message of the
/// largest size plus 256 KiB. Messages up to 2 MiB: twice nginx-rtmp's default
/// `max_message` (1 MiB), and 4K keyframes are typically under 1 MiB.
pub const CLIENT_READER_LIMITS: ReaderLimits = ReaderLimits {
    max_message_size: 2 * 1024 * 1024,
    max_chunk_streams: 64,
    max_in_progress: 2 * 1024 * 1024 + 256 * 1024,
};

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("client closed the connection")]
    ClientClosed,
    #[error("client connection failed: {0}")]
    ClientIo(io::Error),
    #[error("invalid RTMP from the client: {0}")]
    ClientProtocol(rtmp_peek::Error),
    #[error("origin closed the connection")]
    OriginClosed,
    #[error("origin connection failed: {0}")]
    OriginIo(io::Error),
    #[error("invalid RTMP from the origin: {0}")]
    OriginProtocol(rtmp_peek::Error),
    #[error("no bytes either way for {0:?}")]
    Idle(Duration),
    #[error("proxy shutting down")]
    Shutdown,
    #[error("origin marked down by its probes")]
    OriginDown,
    #[error("{0}")]
    OverBudget(OverBudget),
}

/// Binds the listeners (RTMP, RTMPS), if configured, and serves them until shutdown. Both
/// draw on one buffer budget.
pub async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let budget = BufferBudget::new(ctx.config.rtmp_buffer_budget);
    if let Some(addr) = ctx.config.rtmp_listen {
        let listener = crate::bind_tcp("rtmp", addr).await?;
        let budget = budget.clone();
        crate::accept::serve_tcp_spanned(
            ctx.clone(),
            listener,
            "rtmp",
            move |ctx, client, peer, span| {
                let addrs = ClientAddrs::of(&client, peer);
                serve_connection(ctx, client, addrs, budget.clone(), Instant::now(), span)
            },
        );
    }
    if let (Some(addr), Some(store)) = (ctx.config.rtmps_listen, ctx.tls.clone()) {
        let listener = crate::bind_tcp("rtmps", addr).await?;
        crate::tls::serve(
            ctx,
            listener,
            "rtmps",
            &store,
            crate::tls::ALPN_NONE,
            |_| {},
            // The TLS front-end runs each connection in its span already.
            move |ctx, client, addrs, accepted| {
                let span = tracing::Span::none();
                serve_connection(ctx, client, addrs, budget.clone(), accepted, span)
            },
        );
    }
    Ok(())
}

/// Serves one client connection in `span` (entered around each step that may log: see
/// [`serve_identified`]).
async fn serve_connection<S: ClientStream>(
    ctx: Arc<Context>,
    mut client: S,
    addrs: ClientAddrs,
    budget: Arc<BufferBudget>,
    accepted: Instant,
    span: tracing::Span,
) {
    let mut charge = budget.charge();
    let mut front = ServerSession::new(ServerConfig {
        reader_limits: CLIENT_READER_LIMITS,
        ..ServerConfig::default()
    });
    // Counted from accept: an RTMPS client's TLS handshake took its share already.
    let limit = ctx.live().handshake_timeout;
    let deadline = tokio::time::Instant::from_std(accepted + limit);
    // In the span by reference, not `Instrumented` (which would hold a second handle to
    // it in every idle connection's task).
    let identified = {
        let mut identifying = std::pin::pin!(identify(&mut client, &mut front, &mut charge));
        let identifying =
            poll_fn(|cx| span.in_scope(|| std::future::Future::poll(identifying.as_mut(), cx)));
        match tokio::time::timeout_at(deadline, identifying).await {
            Ok(Ok(identified)) => identified,
            Ok(Err(Fault::OverBudget(over))) => {
                span.in_scope(|| budget.refused(&over));
                return;
            }
            Ok(Err(fault)) => {
                span.in_scope(|| tracing::info!("closed before publish or play: {fault}"));
                return;
            }
            Err(_) => {
                span.in_scope(|| tracing::info!(
                    "closed: no handshake, connect and publish or play within the handshake timeout ({limit:?})"
                ));
                return;
            }
        }
    };
    // The stages after identification are a future of their own, boxed: the task of a
    // client that has not said what it wants (most of a connection storm) is only as
    // large as the identification stage, not as routing and relaying.
    Box::pin(serve_identified(
        ctx, client, addrs, budget, accepted, front, charge, identified, span,
    ))
    .await
}

/// Routes an identified client, replays its setup to the origin, relays, and logs the
/// session's end.
///
/// The connection's span (`conn`) is entered around the setup and the closing line only,
/// not around each poll of the relay: a relaying session wakes up thousands of times a
/// second and the relay loop logs nothing. `span` is `Span::none()` where the caller
/// instruments the whole connection already (RTMPS).
#[allow(clippy::too_many_arguments)]
async fn serve_identified<S: ClientStream>(
    ctx: Arc<Context>,
    client: S,
    addrs: ClientAddrs,
    budget: Arc<BufferBudget>,
    accepted: Instant,
    front: ServerSession,
    charge: Charge,
    identified: Box<Identified>,
    span: tracing::Span,
) {
    let setup = prepare_relay(
        ctx, client, addrs, budget, accepted, front, charge, identified,
    );
    let Some(mut session) = setup.instrument(span.clone()).await else {
        return;
    };
    let Relaying {
        ctx,
        client,
        upstream,
        relay,
        guard,
        budget,
        charge,
        ..
    } = &mut session;
    // Cut without flushing: the origin is dead or hung, nothing would drain. Biased: the
    // relay is polled first on every wake-up and the cut only checked after, without
    // drawing a random number each time.
    let fault = tokio::select! {
        biased;
        fault = relay::run(
            client,
            upstream,
            relay,
            guard.traffic(),
            ctx.live().idle_timeout,
            &ctx.lifecycle,
            charge,
        ) => fault,
        () = guard.cut().cancelled() => Fault::OriginDown,
    };
    let _entered = span.enter();
    if let Fault::OverBudget(over) = &fault {
        budget.refused(over);
    }
    let traffic = session.guard.traffic();
    tracing::info!(
        stream = %session.key,
        origin = %session.origin,
        bytes_to_origin = traffic.to_origin.load(std::sync::atomic::Ordering::Relaxed),
        bytes_to_client = traffic.to_client.load(std::sync::atomic::Ordering::Relaxed),
        // Of those, passed on as the peer sent them (the rest was re-chunked).
        passed_to_origin = session.relay.origin().bytes_passed(),
        passed_to_client = session.relay.client().bytes_passed(),
        seconds = %format!("{:.1}", session.started.elapsed().as_secs_f64()),
        setup_ms = (session.started - session.accepted).as_millis() as u64,
        "{} ended: {fault}",
        session.what
    );
}

/// A session set up and about to relay: what the relay and its closing line need.
struct Relaying<S> {
    ctx: Arc<Context>,
    client: S,
    upstream: tokio::net::TcpStream,
    relay: Relay,
    /// The session's entry in the list of live sessions, for as long as it relays.
    guard: crate::sessions::SessionGuard,
    budget: Arc<BufferBudget>,
    charge: Charge,
    key: StreamKey,
    origin: lb_core::OriginId,
    what: &'static str,
    accepted: Instant,
    started: Instant,
}

/// Routes an identified client and replays its setup to the origin. `None` when the
/// session ends here (refused, closed, served from the edge), having logged why.
#[allow(clippy::too_many_arguments)]
async fn prepare_relay<S: ClientStream>(
    ctx: Arc<Context>,
    mut client: S,
    addrs: ClientAddrs,
    budget: Arc<BufferBudget>,
    accepted: Instant,
    mut front: ServerSession,
    mut charge: Charge,
    identified: Box<Identified>,
) -> Option<Relaying<S>> {
    let peer = addrs.peer;
    let intent = match identified.kind {
        StreamKind::Publish => PickIntent::Publish,
        StreamKind::Play => PickIntent::Play,
    };
    let what = intent_name(intent);
    let key = match StreamKey::from_rtmp(&identified.tc_url, &identified.stream) {
        Ok(key) => key,
        Err(e) => {
            tracing::info!(app = %identified.app, tc_url = %identified.tc_url, "refused {what}: {e}");
            refuse(client, front, &e.to_string()).await;
            return None;
        }
    };

    if ctx.config.edge && intent == PickIntent::Play {
        // One upstream pull per stream, shared by every player of it.
        crate::edge::serve::rtmp_viewer(ctx, client, front, key).await;
        return None;
    }

    let linked = link_tcp(&ctx, &key, intent, Leg::Rtmp, addrs).await;
    let (origin, mut upstream, endpoint) = match linked {
        Ok(link) => link,
        Err(e) => {
            tracing::info!(stream = %key, "refused {what}: {e}");
            let reason = match &e {
                LinkError::Unavailable(lb_core::Error::Unavailable(_)) => {
                    "no origin available: the balancer cannot be reached".to_owned()
                }
                LinkError::Unavailable(e) => e.to_string(),
                LinkError::NoEndpoint { .. } => "origin has no RTMP endpoint".to_owned(),
                LinkError::Unreachable { .. } | LinkError::Failed { .. } => {
                    "origin unreachable".to_owned()
                }
                LinkError::Full { .. } => "origin at its connection limit".to_owned(),
                LinkError::Local(_) => "proxy short of resources".to_owned(),
            };
            refuse(client, front, &reason).await;
            return None;
        }
    };

    // The origin's verdict.
    let mut leg = match ClientSession::new(identified.origin_request(), ClientConfig::default()) {
        Ok(leg) => leg,
        Err(e) => {
            tracing::warn!(stream = %key, "cannot replay the client's setup: {e}");
            refuse(client, front, "proxy cannot replay this setup").await;
            return None;
        }
    };
    let limit = ctx.live().origin_connect_timeout;
    let verdict = tokio::time::timeout(
        limit,
        origin_verdict(
            &mut client,
            &mut upstream,
            &mut front,
            &mut leg,
            &mut charge,
        ),
    )
    .await;
    match verdict {
        Ok(Ok(Verdict::Accepted)) => {}
        Ok(Err(Fault::OverBudget(over))) => {
            budget.refused(&over);
            return None;
        }
        Ok(Ok(Verdict::Rejected { stage, reply })) => {
            tracing::info!(
                stream = %key,
                origin = %origin.id,
                code = reply.code().unwrap_or(""),
                description = reply.description().unwrap_or(""),
                "refused {what} by the origin (at {})",
                stage_name(stage)
            );
            crate::origin_link::release_refused_play(&ctx, intent, &key, &origin.id).await;
            linger_close(client, front.take_output()).await;
            return None;
        }
        Ok(Err(fault @ (Fault::ClientClosed | Fault::ClientIo(_) | Fault::ClientProtocol(_)))) => {
            tracing::info!(stream = %key, origin = %origin.id, "closed during setup of {what}: {fault}");
            return None;
        }
        Ok(Err(fault)) => {
            tracing::info!(stream = %key, origin = %origin.id, "refused {what}: {fault} before answering");
            let reason = match fault {
                Fault::OriginClosed => "origin closed the connection before answering",
                _ => "origin failed before answering",
            };
            refuse(client, front, reason).await;
            return None;
        }
        Err(_) => {
            tracing::info!(stream = %key, origin = %origin.id, "refused {what}: the origin did not answer within {limit:?}");
            // It accepted the connection but does not speak: hung, or overloaded. Hold it
            // down so this client's retry (and everyone else's) goes elsewhere.
            let reason = format!("no RTMP answer within {limit:?}");
            crate::origin_link::suspect(&ctx, &origin, &reason, Leg::Rtmp).await;
            refuse(client, front, "origin did not answer in time").await;
            return None;
        }
    }

    // The relay, with the session listed for as long as it runs.
    let guard = ctx
        .sessions
        .open(Protocol::Rtmp, key.clone(), origin.id.clone(), peer, intent);
    tracing::info!(stream = %key, origin = %origin.id, %endpoint, "{what} started");
    let started = Instant::now();
    let relay = Relay::with_pass_through(front.into_leg(), leg.into_leg(), pass_through());
    Some(Relaying {
        ctx,
        client,
        upstream,
        relay,
        guard,
        budget,
        charge,
        key,
        origin: origin.id,
        what,
        accepted,
        started,
    })
}

fn intent_name(intent: PickIntent) -> &'static str {
    match intent {
        PickIntent::Publish => "publish",
        PickIntent::Play => "play",
    }
}

fn stage_name(stage: SetupStage) -> &'static str {
    match stage {
        SetupStage::Connect => "connect",
        SetupStage::CreateStream => "createStream",
        SetupStage::Start => "publish/play",
    }
}

/// Most bytes read from a client at once before it is identified.
const IDENTIFY_READ: usize = 4096;

/// Reads the client until it sends `publish` or `play`, answering it locally.
///
/// No read buffer is held while the client is silent: each read lands in a buffer on the
/// stack for the length of one poll, and `front` keeps only the bytes it has not parsed
/// (and releases its buffers once they are empty). An idle handshaked connection costs
/// its task and `front`, a few KiB (the `idle-conns` load generator measures it).
async fn identify<S: ClientStream>(
    client: &mut S,
    front: &mut ServerSession,
    charge: &mut Charge,
) -> Result<Box<Identified>, Fault> {
    loop {
        poll_fn(|cx| {
            let mut scratch = [std::mem::MaybeUninit::<u8>::uninit(); IDENTIFY_READ];
            let mut buf = tokio::io::ReadBuf::uninit(&mut scratch);
            match Pin::new(&mut *client).poll_read(cx, &mut buf) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(e)) => Poll::Ready(Err(Fault::ClientIo(e))),
                Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                    Poll::Ready(Err(Fault::ClientClosed))
                }
                Poll::Ready(Ok(())) => {
                    Poll::Ready(front.feed(buf.filled()).map_err(Fault::ClientProtocol))
                }
            }
        })
        .await?;
        charge
            .update(front.buffered_bytes())
            .map_err(Fault::OverBudget)?;
        if front.has_output() {
            client
                .write_all(&front.take_output())
                .await
                .map_err(Fault::ClientIo)?;
        }
        while let Some(event) = front.poll_event() {
            if let ServerEvent::Identified(identified) = event {
                return Ok(identified);
            }
        }
    }
}

enum Verdict {
    Accepted,
    Rejected { stage: SetupStage, reply: Command },
}

/// Drives the origin leg to its verdict, forwarding what the origin says to the client.
/// The client's bytes meanwhile stay buffered in `front` (bounded) for the relay.
async fn origin_verdict<S: ClientStream>(
    client: &mut S,
    origin: &mut tokio::net::TcpStream,
    front: &mut ServerSession,
    leg: &mut ClientSession,
    charge: &mut Charge,
) -> Result<Verdict, Fault> {
    let mut from_origin = BytesMut::with_capacity(16 * 1024);
    let mut from_client = BytesMut::with_capacity(4 * 1024);
    loop {
        if leg.has_output() {
            origin
                .write_all(&leg.take_output())
                .await
                .map_err(Fault::OriginIo)?;
        }
        if front.has_output() {
            client
                .write_all(&front.take_output())
                .await
                .map_err(Fault::ClientIo)?;
        }
        tokio::select! {
            read = origin.read_buf(&mut from_origin) => {
                if read.map_err(Fault::OriginIo)? == 0 {
                    return Err(Fault::OriginClosed);
                }
                leg.feed(&from_origin).map_err(Fault::OriginProtocol)?;
                from_origin.clear();
            }
            read = client.read_buf(&mut from_client) => {
                if read.map_err(Fault::ClientIo)? == 0 {
                    return Err(Fault::ClientClosed);
                }
                front.feed(&from_client).map_err(Fault::ClientProtocol)?;
                from_client.clear();
            }
        }
        charge
            .update(front.buffered_bytes() + leg.buffered_bytes())
            .map_err(Fault::OverBudget)?;
        while let Some(event) = leg.poll_event() {
            match event {
                ClientEvent::Forward(msg) => front.send(&msg).map_err(Fault::OriginProtocol)?,
                ClientEvent::Accepted { .. } => return Ok(Verdict::Accepted),
                ClientEvent::Rejected { stage, reply } => {
                    return Ok(Verdict::Rejected { stage, reply })
                }
                ClientEvent::Connected { .. } | ClientEvent::StreamCreated { .. } => {}
            }
        }
    }
}

/// Tells the client its stream failed (an `onStatus` error with `reason`), then closes.
pub(crate) async fn refuse<S: ClientStream>(client: S, mut front: ServerSession, reason: &str) {
    if let Err(e) = front.fail(reason) {
        tracing::debug!("cannot encode the refusal: {e}");
    }
    linger_close(client, front.take_output()).await;
}

/// Sends `last`, half-closes, and waits (briefly) for the client to close its side, so the
/// last bytes are read rather than lost to a reset.
async fn linger_close<S: ClientStream>(mut client: S, last: bytes::Bytes) {
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        client.write_all(&last).await?;
        client.shutdown().await?;
        let mut sink = [0u8; 4096];
        while client.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// Whether the relay passes media chunks on as the peer sent them where the legs line up
/// ([`Relay::with_pass_through`]). For diagnosis and A/B measurement only,
/// `PROXY_RTMP_PASS_THROUGH=0` turns it off; read once, at the first relay.
fn pass_through() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("PROXY_RTMP_PASS_THROUGH").as_deref() != Ok("0"))
}
