//! The raw path of live HTTP-FLV / HTTP-TS viewers on HTTP/1.1: once the origin has
//! answered, its bytes (its own framing included) go to the viewer unparsed, through one
//! buffer, as an L4 relay moves them. hyper would decode every chunk from the origin and
//! encode it again for the viewer, with a wake-up and a frame per read.
//!
//! The first request head of an HTTP/1 connection is read and classified here
//! ([`flv_http::head`]). A `GET` of a `.flv` / `.ts` stream takes the raw
//! path; anything else (HLS, static files, the API, a head that does not parse or is too
//! large) is handed to hyper with the bytes read so far replayed ([`Replay`]), and served
//! as before. A raw viewer's connection carries that one request and is then closed.
//!
//! What hyper's path does, this one does too: placement and failover before the response
//! head (the same [`crate::origin_link::with_origins`]), hop-by-hop headers stripped and
//! `X-Forwarded-For` set for the origin, CORS on the reply, the session (viewer counts,
//! byte metrics, cut when its origin is marked down), the origin's idle timeout, and a
//! viewer that stops reading closed after the idle timeout.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flv_http::head::{self, RequestHead, ResponseHead};
use flv_http::{Classifier, Kind, MediaRequest};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use lb_core::{Origin, PickIntent, StreamKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::Instrument;

use crate::accept::ClientStream;
use crate::forward::{self, strip_hop_by_hop};
use crate::http_front::{self, Refusal};
use crate::origin_link::{connect_to, suspect, with_origins, ClientAddrs, Leg, LinkError};
use crate::sessions::{Protocol, SessionGuard};
use crate::Context;

mod pump;
mod replay;
pub use pump::{bench_pump, pump, Ended};
pub use replay::Replay;

/// Largest request head read before hyper takes over (hyper's limit is the same: beyond
/// it, it answers 431 to the replayed bytes).
const MAX_REQUEST_HEAD: usize = http_front::MAX_REQUEST_HEAD;

/// Largest response head an origin may send.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// The relay's one buffer (origin to viewer). A live stream at a few Mbit/s sends tens of
/// KiB at a time: one read, one write.
pub const RELAY_BUFFER: usize = 32 * 1024;

/// What the first request head of a connection says to do.
pub enum First {
    /// A live stream for the raw path.
    Raw(Box<RawRequest>),
    /// Everything else: hyper serves the connection, the bytes replayed.
    Hyper,
}

/// A request the raw path serves.
pub struct RawRequest {
    /// The client's request line and headers, as `http` types.
    pub parts: http::request::Parts,
    /// The stream it asks for.
    pub media: MediaRequest,
}

/// Whether a complete request head takes the raw path: a bare `GET`
/// ([`RequestHead::is_bare_get`]) of a `.flv` or `.ts` stream, with headers `http`
/// accepts.
pub fn classify(head: &RequestHead) -> First {
    if !head.is_bare_get() {
        return First::Hyper;
    }
    let Ok(uri) = head.target.parse::<http::Uri>() else {
        return First::Hyper;
    };
    let mut headers = HeaderMap::with_capacity(head.headers.len());
    for field in typed(&head.headers) {
        let Some((name, value)) = field else {
            return First::Hyper;
        };
        headers.append(name, value);
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let media = match Classifier::new().classify("GET", uri.path(), uri.query(), host) {
        Ok(media) if matches!(media.kind, Kind::Flv | Kind::Ts) => media,
        _ => return First::Hyper,
    };
    let Ok(request) = http::Request::builder()
        .method(Method::GET)
        .uri(uri)
        .body(())
    else {
        return First::Hyper;
    };
    let (mut parts, ()) = request.into_parts();
    parts.headers = headers;
    First::Raw(Box::new(RawRequest { parts, media }))
}

/// Serves an HTTP/1 connection: the raw path for a live stream, else hyper through
/// `hyper_serve` with what was read replayed. A client that sends no complete head within
/// the handshake timeout is closed, as hyper closes it.
pub async fn serve<S, H, Fut>(
    ctx: Arc<Context>,
    mut stream: S,
    client: ClientAddrs,
    listener: &'static str,
    span: tracing::Span,
    hyper_serve: H,
) where
    S: ClientStream,
    H: FnOnce(Replay<S>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let wait = ctx.live().handshake_timeout;
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    let read = tokio::time::timeout(wait, async {
        loop {
            match head::parse_request(&buf, MAX_REQUEST_HEAD) {
                Ok(Some(head)) => return Some(classify(&head)),
                Ok(None) => {}
                // hyper answers it (400, 431) from the same bytes.
                Err(_) => return Some(First::Hyper),
            }
            if buf.len() == buf.capacity() {
                buf.reserve(buf.capacity().min(MAX_REQUEST_HEAD));
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    })
    .await;
    match read {
        Ok(Some(First::Raw(request))) => {
            relay(&ctx, stream, client, listener, span, *request).await
        }
        Ok(Some(First::Hyper)) => hyper_serve(Replay::new(buf, stream)).await,
        // Closed, failed or silent before a whole head: nothing to answer.
        Ok(None) | Err(_) => {}
    }
}

/// Places the viewer, asks the origin, and relays its answer raw. Boxed as `Send` here,
/// where its lifetimes are concrete: left to inference inside the connection's generic
/// future, rustc cannot prove it `Send` for every lifetime.
fn relay<'a, S: ClientStream>(
    ctx: &'a Context,
    stream: S,
    client: ClientAddrs,
    listener: &'static str,
    span: tracing::Span,
    request: RawRequest,
) -> Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
    Box::pin(relay_inner(ctx, stream, client, listener, span, request))
}

/// The connection's span is entered while the viewer is placed and when it ends; the
/// relay between, many wake-ups a second that log nothing, runs outside it.
async fn relay_inner<S: ClientStream>(
    ctx: &Context,
    mut stream: S,
    client: ClientAddrs,
    listener: &'static str,
    span: tracing::Span,
    request: RawRequest,
) {
    let Some((origin, first, session, protocol)) = open(ctx, &mut stream, client, request)
        .instrument(span.clone())
        .await
    else {
        return;
    };
    let idle = ctx.live().idle_timeout;
    let relayed = pump(&mut stream, origin, first, session.as_ref(), idle).await;
    span.in_scope(|| match relayed {
        Ok(()) => {}
        // Worded as hyper's path words it (crate::http_front).
        Err(Ended::ViewerStalled) => {
            tracing::info!("{listener} client closed: it read nothing for {idle:?}")
        }
        Err(why) => tracing::debug!("{protocol:?} viewer ended: {why}"),
    });
    // Flushes a TLS close_notify; a viewer that is gone is not waited for.
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
}

/// Places the viewer and asks its origin: the origin's connection, what goes to the viewer
/// first (the response head and the body's start), the session (for a success) and the
/// protocol. `None` once a refusal is written.
async fn open<S: ClientStream>(
    ctx: &Context,
    stream: &mut S,
    client: ClientAddrs,
    request: RawRequest,
) -> Option<(TcpStream, Vec<u8>, Option<SessionGuard>, Protocol)> {
    let RawRequest { parts, media } = request;
    let protocol = if media.kind == Kind::Flv {
        Protocol::HttpFlv
    } else {
        Protocol::HttpTs
    };
    let key = match StreamKey::new(media.vhost.as_deref(), &media.app, &media.stream) {
        Ok(key) => key,
        Err(e) => {
            let refusal = Refusal::new(StatusCode::BAD_REQUEST, e.to_string());
            let _ = write_small(stream, refusal.into_response()).await;
            return None;
        }
    };
    drop(media);
    let (origin, answer) = match place(ctx, client, &key, &parts).await {
        Ok(placed) => placed,
        Err(refusal) => {
            let _ = write_small(stream, refusal.into_response()).await;
            return None;
        }
    };
    tracing::info!(stream = %key, origin = %origin.id, status = answer.head.status, "{protocol:?} viewer");
    let session = if (200..300).contains(&answer.head.status) {
        Some(ctx.sessions.open(
            protocol,
            key,
            origin.id.clone(),
            client.peer,
            PickIntent::Play,
        ))
    } else {
        crate::origin_link::release_refused_play(ctx, PickIntent::Play, &key, &origin.id).await;
        None
    };
    let mut first = response_head(&answer.head);
    first.extend_from_slice(&answer.rest);
    Some((answer.stream, first, session, protocol))
}

/// The client's request, as the origin gets it, to the stream's origin (picked, and picked
/// again after a failed connect or a silent origin).
async fn place(
    ctx: &Context,
    client: ClientAddrs,
    key: &StreamKey,
    parts: &http::request::Parts,
) -> Result<(Origin, Answer), Refusal> {
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut origin_head =
        forward::origin_request(ctx, parts, client.peer, target, ()).map_err(|e| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("the request cannot be forwarded: {e}"),
            )
        })?;
    // The origin ends the body by closing: the relay never has to find its end.
    origin_head
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    let mut bytes = Vec::with_capacity(512);
    head::write_request(&mut bytes, "GET", target, fields(origin_head.headers()));
    let bytes = Bytes::from(bytes);
    let wait = forward::response_wait(ctx, None);
    Ok(
        with_origins(ctx, key, PickIntent::Play, Leg::Http, |origin| {
            let bytes = bytes.clone();
            async move { exchange(ctx, &origin, client, &bytes, wait).await }
        })
        .await?,
    )
}

/// An origin's answer: its head, what came after it in the same reads, and the connection.
pub struct Answer {
    /// The response head.
    pub head: ResponseHead,
    /// Body bytes read with the head.
    pub rest: Vec<u8>,
    /// The origin connection, positioned after `rest`.
    pub stream: TcpStream,
}

/// Sends `request` (a whole head) on a new connection to `origin` and reads its response
/// head. As [`forward::send_over`]: an origin that does not answer within `wait` is
/// suspected (held down) like one that refused the connection.
async fn exchange(
    ctx: &Context,
    origin: &Origin,
    client: ClientAddrs,
    request: &[u8],
    wait: Duration,
) -> Result<Answer, LinkError> {
    let (mut stream, endpoint) = connect_to(ctx, origin, Leg::Http, client).await?;
    let failed = |reason: String| LinkError::Failed {
        origin: origin.id.to_string(),
        reason: format!("{endpoint}: {reason}"),
    };
    let answered = tokio::time::timeout(wait, async {
        stream
            .write_all(request)
            .await
            .map_err(|e| failed(format!("sending the request: {e}")))?;
        let mut buf = Vec::with_capacity(4096);
        loop {
            match head::parse_response(&buf, MAX_RESPONSE_HEAD) {
                Ok(Some(head)) => {
                    let rest = buf.split_off(head.len);
                    return Ok((head, rest));
                }
                Ok(None) => {}
                Err(e) => return Err(failed(e.to_string())),
            }
            if buf.len() == buf.capacity() {
                buf.reserve(buf.capacity());
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) => return Err(failed("closed before a response".into())),
                Err(e) => return Err(failed(e.to_string())),
                Ok(_) => {}
            }
        }
    })
    .await;
    match answered {
        Ok(Ok((head, rest))) => Ok(Answer { head, rest, stream }),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            let reason = format!("no response within {wait:?}");
            suspect(ctx, origin, &format!("{endpoint}: {reason}"), Leg::Http).await;
            Err(LinkError::Unreachable {
                origin: origin.id.to_string(),
                endpoint: endpoint.to_string(),
                reason,
            })
        }
    }
}

/// The viewer's response head: the origin's, hop-by-hop headers stripped but its
/// `Transfer-Encoding` kept (its framing passes unchanged), `Connection: close`, CORS.
pub fn response_head(origin: &ResponseHead) -> Vec<u8> {
    let mut headers = HeaderMap::with_capacity(origin.headers.len() + 6);
    // A field `http` rejects is one a client may choke on too: it goes.
    for (name, value) in typed(&origin.headers).flatten() {
        headers.append(name, value);
    }
    let framing = headers.get(header::TRANSFER_ENCODING).cloned();
    strip_hop_by_hop(&mut headers);
    if let Some(framing) = framing {
        headers.insert(header::TRANSFER_ENCODING, framing);
    }
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    http_front::add_cors(&mut headers);
    let reason = match origin.reason.as_str() {
        "" => StatusCode::from_u16(origin.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or(""),
        reason => reason,
    };
    let mut out = Vec::with_capacity(1024);
    head::write_response(&mut out, origin.status, reason, fields(&headers));
    out
}

/// Writes a small reply the proxy makes itself (a refusal), whole, with CORS, and
/// `Connection: close`.
async fn write_small<S: ClientStream>(
    stream: &mut S,
    response: http::Response<http_front::ProxyBody>,
) -> std::io::Result<()> {
    let (mut parts, body) = response.into_parts();
    // A refusal's body is whole already (JSON): collecting it does not wait.
    let body = http_body_util::BodyExt::collect(body)
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    http_front::add_cors(&mut parts.headers);
    parts
        .headers
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    parts
        .headers
        .insert(header::CONTENT_LENGTH, body.len().into());
    let mut out = Vec::with_capacity(512 + body.len());
    head::write_response(
        &mut out,
        parts.status.as_u16(),
        parts.status.canonical_reason().unwrap_or(""),
        fields(&parts.headers),
    );
    out.extend_from_slice(&body);
    let written = async {
        stream.write_all(&out).await?;
        stream.flush().await?;
        stream.shutdown().await
    };
    tokio::time::timeout(Duration::from_secs(5), written)
        .await
        .unwrap_or(Ok(()))
}

/// Parsed header fields as `http` types, `None` for a field `http` rejects.
fn typed(
    fields: &[(String, Vec<u8>)],
) -> impl Iterator<Item = Option<(HeaderName, HeaderValue)>> + '_ {
    fields.iter().map(|(name, value)| {
        let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
        Some((name, HeaderValue::from_bytes(value).ok()?))
    })
}

/// A header map's fields, as the head writers take them.
fn fields(headers: &HeaderMap) -> impl Iterator<Item = (&str, &[u8])> {
    headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes()))
}

#[cfg(test)]
mod tests;
