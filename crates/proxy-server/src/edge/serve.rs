//! The viewers of an edge hub: RTMP players (answered locally, media re-chunked per
//! viewer) and HTTP-FLV / HTTP-TS players (a response body fed by a task per viewer).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use crate::accept::ClientStream;
use bytes::Bytes;
use flv_http::fanout::ReadOutcome;
use flv_http::{FanOut, FlvTag, Kind, MediaRequest, TagKind};
use http::{header, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use lb_core::StreamKey;
use rtmp_peek::message::csid;
use rtmp_peek::{Command, Message, ServerSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{Buffer, Edge, Status, ViewerGuard};
use crate::http_front::{BoxError, ProxyBody, Refusal};
use crate::sessions::Protocol;
use crate::Context;

/// Most bytes handed to a viewer per wake-up: a keyframe and what follows it.
const BATCH: usize = 256 * 1024;
/// Batches queued between a viewer's task and its HTTP response body.
const QUEUE: usize = 1;

fn slow(action: &'static str) {
    metrics::counter!("proxy_edge_slow_viewers_total", "action" => action).increment(1);
}

/// Reads the viewer's next units, counting skips and cuts. `None` when it is cut.
fn next_batch<B: Buffer>(
    guard: &ViewerGuard<B>,
    cursor: &mut flv_http::fanout::Cursor,
    out: &mut Vec<B::Unit>,
) -> Option<()> {
    let outcome = guard.hub().buffer().read(cursor, BATCH, out);
    match outcome {
        ReadOutcome::Read => Some(()),
        ReadOutcome::Skipped => {
            slow("skipped");
            Some(())
        }
        ReadOutcome::Cut => {
            slow("cut");
            tracing::info!(stream = %guard.hub().key(), "edge viewer cut: it stayed behind");
            None
        }
    }
}

/// An HTTP-FLV or HTTP-TS player of an edge.
pub async fn http_viewer(
    ctx: &Arc<Context>,
    client: crate::origin_link::ClientAddrs,
    media: &MediaRequest,
) -> Result<Response<ProxyBody>, Refusal> {
    let key = StreamKey::new(media.vhost.as_deref(), &media.app, &media.stream)
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let wait = ctx.live().idle_timeout;
    let idle = ctx.live().idle_timeout;
    let (tx, rx) = mpsc::channel(QUEUE);
    let content_type = if media.kind == Kind::Flv {
        let guard = Edge::join_live(ctx, &key, Protocol::HttpFlv);
        guard.hub().wait_live(wait).await.map_err(refusal)?;
        let header = flv_http::fanout::flv_header(true, true);
        tokio::spawn(feed(guard, tx, Some(header), idle, Protocol::HttpFlv));
        "video/x-flv"
    } else {
        let guard = Edge::join_ts(ctx, &key);
        guard.hub().wait_live(wait).await.map_err(refusal)?;
        tokio::spawn(feed(guard, tx, None, idle, Protocol::HttpTs));
        "video/mp2t"
    };
    tracing::info!(stream = %key, peer = %client.peer, "edge {} viewer", if media.kind == Kind::Flv { "HTTP-FLV" } else { "HTTP-TS" });
    let mut response = Response::new(
        Queued {
            rx,
            batch: Vec::new().into_iter(),
        }
        .boxed_unsync(),
    );
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    Ok(response)
}

fn refusal(reason: String) -> Refusal {
    Refusal::new(StatusCode::BAD_GATEWAY, reason)
}

/// A response body fed by a viewer's task, a batch at a time; each tag of a batch is a
/// frame of its own, sharing the hub's buffer (hyper writes several with one `writev`).
struct Queued {
    rx: mpsc::Receiver<Vec<Bytes>>,
    batch: std::vec::IntoIter<Bytes>,
}

impl Body for Queued {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if let Some(bytes) = self.batch.next() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(batch)) => self.batch = batch.into_iter(),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// One batch as the units' own buffers: shared with every other viewer, not copied.
fn join_batch<B: Buffer>(batch: &mut Vec<B::Unit>) -> Vec<Bytes> {
    batch.drain(..).map(|u| B::bytes(&u).clone()).collect()
}

/// Feeds one HTTP viewer until it leaves, is cut, or the hub ends.
async fn feed<B: Buffer>(
    guard: ViewerGuard<B>,
    tx: mpsc::Sender<Vec<Bytes>>,
    first: Option<Bytes>,
    idle: Duration,
    protocol: Protocol,
) {
    let counter = crate::metrics::bytes_counter(protocol.as_str(), "to_client");
    let hub = guard.hub().clone();
    let mut wake = hub.subscribe();
    let mut cursor = hub.buffer().join();
    if let Some(first) = first {
        if tx.send(vec![first]).await.is_err() {
            return;
        }
    }
    let mut batch = Vec::new();
    loop {
        wake.borrow_and_update();
        if next_batch(&guard, &mut cursor, &mut batch).is_none() {
            return;
        }
        if !batch.is_empty() {
            let bytes = join_batch::<B>(&mut batch);
            let n: usize = bytes.iter().map(Bytes::len).sum();
            match tokio::time::timeout(idle, tx.send(bytes)).await {
                Ok(Ok(())) => counter.increment(n as u64),
                Ok(Err(_)) => return,
                Err(_) => {
                    slow("cut");
                    tracing::info!(stream = %hub.key(), "edge viewer cut: read nothing for {idle:?}");
                    return;
                }
            }
            continue;
        }
        if let Status::Ended(reason) = hub.status() {
            tracing::info!(stream = %hub.key(), "edge viewer ended: {reason}");
            return;
        }
        tokio::select! {
            changed = wake.changed() => if changed.is_err() { return },
            () = tx.closed() => return,
        }
    }
}

/// An RTMP player of an edge, identified by `front`: answered locally once the hub's
/// upstream is live, then fed the hub's tags as RTMP messages.
pub async fn rtmp_viewer<S: ClientStream>(
    ctx: Arc<Context>,
    mut client: S,
    mut front: ServerSession,
    key: StreamKey,
) {
    let guard = Edge::join_live(&ctx, &key, Protocol::Rtmp);
    if let Err(reason) = guard.hub().wait_live(ctx.live().idle_timeout).await {
        tracing::info!(stream = %key, "refused edge play: {reason}");
        crate::rtmp::refuse(client, front, &reason).await;
        return;
    }
    if let Err(e) = front.accept() {
        tracing::info!(stream = %key, "cannot answer the play: {e}");
        return;
    }
    tracing::info!(stream = %key, "edge RTMP viewer");
    let end = play(&ctx, &mut client, front, &guard).await;
    tracing::info!(stream = %key, "edge RTMP viewer ended: {end}");
}

async fn play<S: ClientStream>(
    ctx: &Context,
    client: &mut S,
    front: ServerSession,
    guard: &ViewerGuard<FanOut>,
) -> String {
    let idle = ctx.live().idle_timeout;
    let counter = crate::metrics::bytes_counter(Protocol::Rtmp.as_str(), "to_client");
    let hub = guard.hub().clone();
    let mut leg = front.into_leg();
    let stream_id = leg.stream_id();
    let mut wake = hub.subscribe();
    let mut cursor = hub.buffer().join();
    let mut batch: Vec<FlvTag> = Vec::new();
    loop {
        wake.borrow_and_update();
        if next_batch(guard, &mut cursor, &mut batch).is_none() {
            return "cut: it stayed behind".to_owned();
        }
        for tag in batch.drain(..) {
            let csid = match tag.kind {
                TagKind::Audio => csid::AUDIO,
                TagKind::Video => csid::VIDEO,
                _ => csid::STREAM,
            };
            let msg = Message::new(csid, tag.type_id(), stream_id, tag.timestamp, tag.body());
            if let Err(e) = leg.send(&msg) {
                return format!("cannot chunk a message: {e}");
            }
        }
        if leg.output_len() > 0 {
            let out = leg.take_output();
            let n = out.len();
            match tokio::time::timeout(idle, client.write_all(&out)).await {
                Ok(Ok(())) => counter.increment(n as u64),
                Ok(Err(e)) => return format!("client connection failed: {e}"),
                Err(_) => {
                    slow("cut");
                    return format!("cut: read nothing for {idle:?}");
                }
            }
            continue;
        }
        if let Status::Ended(reason) = hub.status() {
            // A clear end: players stop rather than wait.
            let _ = leg.send(
                &Command::error_status("NetStream.Play.Stop", &reason)
                    .to_message(stream_id)
                    .unwrap_or_else(|_| {
                        Message::new(csid::COMMAND, 20, stream_id, 0, Bytes::new())
                    }),
            );
            let _ = client.write_all(&leg.take_output()).await;
            return format!("upstream ended: {reason}");
        }
        tokio::select! {
            changed = wake.changed() => if changed.is_err() { return "hub gone".to_owned() },
            read = client.read_buf(leg.input_buffer()) => match read {
                Ok(0) => return "client closed the connection".to_owned(),
                Err(e) => return format!("client connection failed: {e}"),
                Ok(_) => loop {
                    // Acknowledgements, pings, pause, deleteStream...: a live edge plays
                    // on; the client ends its play by closing.
                    match leg.next_message() {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => return format!("invalid RTMP from the client: {e}"),
                    }
                },
            },
        }
    }
}
