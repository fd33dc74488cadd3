//! A hub's upstream: one RTMP play (or one HTTP GET of a `.ts`) from the stream's
//! origin, pulled again through the balancer when it ends, closed after the linger.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use flv_http::{FanOut, TsFanOut};
use http_body_util::{BodyExt, Empty};
use lb_core::PickIntent;
use rtmp_peek::message::types;
use rtmp_peek::{
    Amf0Limits, ClientConfig, ClientEvent, ClientSession, Command, Leg as RtmpLeg, Message,
    OriginRequest, StreamKind,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{retire, Buffer, Hub, Hubs, Status, UPSTREAM_STALL};

/// Where the hubs of one kind are kept.
type HubsOf<B> = fn(&Context) -> &Hubs<B>;
use crate::origin_link::{connect_to, with_origins, ClientAddrs, Leg, LinkError};
use crate::sessions::Protocol;
use crate::Context;

/// Pause between two upstream attempts that failed, so that a stream that is gone does
/// not cost the balancer a pick per millisecond.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// How one upstream session ended.
enum PullEnd {
    /// It never became live: no origin, refused, unreachable.
    Failed(String),
    /// It ran, then ended.
    Ended(String),
}

/// The edge itself is the client of its upstream: its PROXY protocol header (if any)
/// names no viewer.
fn own_addrs() -> ClientAddrs {
    let none = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    ClientAddrs {
        peer: none,
        local: none,
    }
}

/// Runs until the hub has had no viewer for the linger, or no upstream could deliver
/// media for `idle_timeout`.
async fn run<B: Buffer, F, Fut>(
    ctx: Arc<Context>,
    hub: Arc<Hub<B>>,
    map: HubsOf<B>,
    mut pull_once: F,
) where
    F: FnMut(Arc<Context>, Arc<Hub<B>>, bool) -> Fut,
    Fut: std::future::Future<Output = PullEnd>,
{
    let linger = ctx.config.edge_linger;
    let give_up = ctx.live().idle_timeout;
    let mut ever_live = false;
    loop {
        let ended = tokio::select! {
            end = pull_once(ctx.clone(), hub.clone(), ever_live) => end,
            () = lingered(&hub, linger) => {
                if retire(map(&ctx), &hub, "no viewers") {
                    tracing::info!(stream = %hub.key, ?linger, "edge upstream closed: no viewers");
                    return;
                }
                continue;
            }
        };
        *hub.origin.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let reason = match ended {
            PullEnd::Ended(reason) => {
                ever_live = true;
                reason
            }
            PullEnd::Failed(reason) if !ever_live => {
                // The first viewers are waiting for an answer: give them this one.
                tracing::info!(stream = %hub.key, "edge upstream failed: {reason}");
                end_hub(&ctx, &hub, map, &reason);
                return;
            }
            PullEnd::Failed(reason) => reason,
        };
        // Sessions that are accepted but carry nothing (an origin waiting for a publisher
        // that went elsewhere) do not count: only media keeps viewers waiting.
        if hub.since_media() >= give_up {
            tracing::info!(stream = %hub.key, "edge upstream gone for {give_up:?}: {reason}");
            end_hub(
                &ctx,
                &hub,
                map,
                &format!("no upstream for {give_up:?}: {reason}"),
            );
            return;
        }
        if hub.viewer_count() == 0 && retire(map(&ctx), &hub, "no viewers") {
            tracing::info!(stream = %hub.key, "edge upstream ended with no viewers left: {reason}");
            return;
        }
        hub.repulls.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("proxy_edge_repulls_total", "protocol" => hub.upstream_protocol)
            .increment(1);
        tracing::info!(stream = %hub.key, "edge upstream ended ({reason}); pulling again");
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

fn end_hub<B: Buffer>(ctx: &Context, hub: &Arc<Hub<B>>, map: HubsOf<B>, reason: &str) {
    let mut hubs = super::lock(map(ctx));
    if hubs.get(&hub.key).is_some_and(|h| Arc::ptr_eq(h, hub)) {
        hubs.remove(&hub.key);
    }
    hub.set_status(Status::Ended(reason.to_owned()));
}

/// Resolves once the hub has had no viewer for `linger` in a row.
async fn lingered<B: Buffer>(hub: &Hub<B>, linger: Duration) {
    let mut rx = hub.count.subscribe();
    loop {
        while *rx.borrow_and_update() > 0 {
            if rx.changed().await.is_err() {
                return;
            }
        }
        let back = tokio::time::timeout(linger, async {
            while *rx.borrow_and_update() == 0 {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        if back.is_err() {
            return;
        }
    }
}

fn live_map(ctx: &Context) -> &Hubs<FanOut> {
    &ctx.edge.live
}

fn ts_map(ctx: &Context) -> &Hubs<TsFanOut> {
    &ctx.edge.ts
}

/// The upstream of an RTMP/FLV hub.
pub async fn run_rtmp(ctx: Arc<Context>, hub: Arc<Hub<FanOut>>) {
    run(ctx, hub, live_map, |ctx, hub, again| async move {
        pull_rtmp(&ctx, &hub, again).await
    })
    .await
}

/// The upstream of an HTTP-TS hub.
pub async fn run_ts(ctx: Arc<Context>, hub: Arc<Hub<TsFanOut>>) {
    run(ctx, hub, ts_map, |ctx, hub, again| async move {
        pull_ts(&ctx, &hub, again).await
    })
    .await
}

async fn pull_rtmp(ctx: &Arc<Context>, hub: &Arc<Hub<FanOut>>, again: bool) -> PullEnd {
    let key = hub.key.clone();
    let linked = with_origins(ctx, &key, PickIntent::Play, Leg::Rtmp, |origin| {
        let ctx = ctx.clone();
        async move { connect_to(&ctx, &origin, Leg::Rtmp, own_addrs()).await }
    })
    .await;
    let (origin, (mut upstream, endpoint)) = match linked {
        Ok(linked) => linked,
        Err(e) => return PullEnd::Failed(link_reason(&e)),
    };
    let (app, tc_url) = key.rtmp_names(&endpoint.host, endpoint.port);
    let request = match OriginRequest::new(StreamKind::Play, &app, &tc_url, key.stream()) {
        Ok(r) => r,
        Err(e) => return PullEnd::Failed(format!("cannot build the play request: {e}")),
    };
    let mut session = match ClientSession::new(request, ClientConfig::default()) {
        Ok(s) => s,
        Err(e) => return PullEnd::Failed(format!("cannot build the play request: {e}")),
    };
    let limit = ctx.live().origin_connect_timeout;
    let mut early = Vec::new();
    let verdict =
        tokio::time::timeout(limit, verdict(&mut upstream, &mut session, &mut early)).await;
    match verdict {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => {
            crate::origin_link::release_refused_play(ctx, PickIntent::Play, &key, &origin.id).await;
            return PullEnd::Failed(format!("origin {}: {reason}", origin.id));
        }
        Err(_) => {
            let reason = format!("no RTMP answer within {limit:?}");
            crate::origin_link::suspect(ctx, &origin, &reason, Leg::Rtmp).await;
            return PullEnd::Failed(format!("origin {}: {reason}", origin.id));
        }
    }

    let peer = upstream
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    // Listed like a player of the origin: it keeps the placement alive, and a probe that
    // finds the origin dead cuts it (and the hub pulls again elsewhere).
    let session_guard = ctx.sessions.open(
        Protocol::Rtmp,
        key.clone(),
        origin.id.clone(),
        peer,
        PickIntent::Play,
    );
    metrics::gauge!("proxy_edge_upstreams", "protocol" => "rtmp").increment(1.0);
    struct Upstreams;
    impl Drop for Upstreams {
        fn drop(&mut self) {
            metrics::gauge!("proxy_edge_upstreams", "protocol" => "rtmp").decrement(1.0);
        }
    }
    let _counted = Upstreams;
    *hub.origin.lock().unwrap_or_else(|p| p.into_inner()) =
        Some((origin.id.clone(), Instant::now()));
    if again {
        hub.buffer().new_part();
    }
    hub.set_status(Status::Live);
    tracing::info!(stream = %key, origin = %origin.id, %endpoint, again, "edge upstream pulling");

    let traffic = session_guard.traffic().clone();
    let mut leg = session.into_leg();
    for msg in early {
        push_media(hub, &msg);
    }
    let ended = tokio::select! {
        ended = media(&mut upstream, &mut leg, hub, &traffic) => ended,
        () = session_guard.cut().cancelled() => "origin marked down by its probes".to_owned(),
    };
    PullEnd::Ended(format!("origin {}: {ended}", origin.id))
}

fn link_reason(e: &LinkError) -> String {
    match e {
        LinkError::Unavailable(lb_core::Error::Unavailable(_)) => {
            "no origin available: the balancer cannot be reached".to_owned()
        }
        other => other.to_string(),
    }
}

/// Drives the play to the origin's verdict; media that arrives first is kept in `early`.
async fn verdict(
    upstream: &mut TcpStream,
    session: &mut ClientSession,
    early: &mut Vec<Message>,
) -> Result<(), String> {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        if session.has_output() {
            upstream
                .write_all(&session.take_output())
                .await
                .map_err(|e| e.to_string())?;
        }
        buf.clear();
        match upstream.read_buf(&mut buf).await {
            Ok(0) => return Err("closed the connection before answering".into()),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
        session
            .feed(&buf)
            .map_err(|e| format!("invalid RTMP: {e}"))?;
        while let Some(event) = session.poll_event() {
            match event {
                ClientEvent::Forward(msg) => early.push(msg),
                ClientEvent::Accepted { .. } => {
                    if session.has_output() {
                        upstream
                            .write_all(&session.take_output())
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    return Ok(());
                }
                ClientEvent::Rejected { reply, .. } => {
                    return Err(format!(
                        "refused the play: {} {}",
                        reply.code().unwrap_or(""),
                        reply.description().unwrap_or("")
                    ))
                }
                ClientEvent::Connected { .. } | ClientEvent::StreamCreated { .. } => {}
            }
        }
    }
}

/// Pushes a message into the hub; returns whether it was media (audio or video: metadata
/// alone does not show the upstream is alive).
fn push_media(hub: &Hub<FanOut>, msg: &Message) -> bool {
    let kept = hub
        .buffer()
        .push_message(msg.type_id, msg.timestamp, &msg.payload);
    hub.media_arrived();
    kept && !matches!(msg.type_id, types::DATA_AMF0 | types::DATA_AMF3)
}

/// Reads the origin's media into the hub until the session ends; returns why.
async fn media(
    upstream: &mut TcpStream,
    leg: &mut RtmpLeg,
    hub: &Hub<FanOut>,
    traffic: &crate::sessions::Traffic,
) -> String {
    let mut last_media = Instant::now();
    loop {
        loop {
            let msg = match leg.next_message() {
                Ok(Some(msg)) => msg,
                Ok(None) => break,
                Err(e) => return format!("invalid RTMP: {e}"),
            };
            if push_media(hub, &msg) {
                last_media = Instant::now();
            } else if Command::ends_play(&msg, &Amf0Limits::default()) {
                return "the publisher left".to_owned();
            }
        }
        if leg.output_len() > 0 {
            let out = leg.take_output();
            if let Err(e) = upstream.write_all(&out).await {
                return e.to_string();
            }
        }
        let stall = UPSTREAM_STALL.saturating_sub(last_media.elapsed());
        match tokio::time::timeout(stall, upstream.read_buf(leg.input_buffer())).await {
            Ok(Ok(0)) => return "closed the connection".to_owned(),
            Ok(Ok(n)) => traffic.add_to_client(n),
            Ok(Err(e)) => return e.to_string(),
            Err(_) => return format!("no media for {UPSTREAM_STALL:?}"),
        }
    }
}

async fn pull_ts(ctx: &Arc<Context>, hub: &Arc<Hub<TsFanOut>>, again: bool) -> PullEnd {
    let key = hub.key.clone();
    let path = format!("/{}/{}.ts", key.app(), key.stream());
    let vhost = key.vhost().to_owned();
    let request = || {
        let mut builder = http::Request::get(path.as_str());
        if vhost != lb_core::DEFAULT_VHOST {
            builder = builder.header(http::header::HOST, vhost.as_str());
        }
        builder
            .body(Empty::<Bytes>::new())
            .map_err(|e| LinkError::Failed {
                origin: String::new(),
                reason: format!("the request cannot be built: {e}"),
            })
    };
    let wait = crate::forward::response_wait(ctx, None);
    let sent = crate::forward::pick_and_send(
        ctx,
        &key,
        PickIntent::Play,
        Leg::Http,
        own_addrs(),
        wait,
        request,
    )
    .await;
    let (origin, response) = match sent {
        Ok(sent) => sent,
        Err(e) => return PullEnd::Failed(link_reason(&e)),
    };
    if !response.status().is_success() {
        crate::origin_link::release_refused_play(ctx, PickIntent::Play, &key, &origin.id).await;
        return PullEnd::Failed(format!(
            "origin {} answered {}",
            origin.id,
            response.status()
        ));
    }
    let session_guard = ctx.sessions.open(
        Protocol::HttpTs,
        key.clone(),
        origin.id.clone(),
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        PickIntent::Play,
    );
    metrics::gauge!("proxy_edge_upstreams", "protocol" => "http-ts").increment(1.0);
    *hub.origin.lock().unwrap_or_else(|p| p.into_inner()) =
        Some((origin.id.clone(), Instant::now()));
    if again {
        hub.buffer().new_part();
    }
    hub.set_status(Status::Live);
    tracing::info!(stream = %key, origin = %origin.id, again, "edge TS upstream pulling");
    let mut body = response.into_body();
    let ended = loop {
        let frame = tokio::select! {
            frame = tokio::time::timeout(UPSTREAM_STALL, body.frame()) => frame,
            () = session_guard.cut().cancelled() => break "origin marked down by its probes".to_owned(),
        };
        match frame {
            Err(_) => break format!("no data for {UPSTREAM_STALL:?}"),
            Ok(None) => break "the origin ended the stream".to_owned(),
            Ok(Some(Err(e))) => break e.to_string(),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    session_guard.traffic().add_to_client(data.len());
                    hub.buffer().push(&data);
                    hub.media_arrived();
                }
            }
        }
    };
    metrics::gauge!("proxy_edge_upstreams", "protocol" => "http-ts").decrement(1.0);
    PullEnd::Ended(format!("origin {}: {ended}", origin.id))
}
