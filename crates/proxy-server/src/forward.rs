//! HTTP reverse-proxy plumbing shared by the media and WHIP/WHEP front-ends: one request
//! to an origin over a fresh connection, headers cleaned of hop-by-hop fields, and a
//! response body that releases the origin connection the moment the client goes away.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue, CONNECTION};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use lb_core::{Endpoint, Origin, PickIntent, StreamKey};
use std::time::Duration;
use tokio::net::TcpStream;

use crate::limits::TrustedProxies;
use crate::origin_link::{connect_to, suspect, ClientAddrs, Leg, LinkError};
use crate::sessions::{SessionGuard, Traffic};
use crate::write_watch::WriteWatch;
use crate::Context;

/// The error type of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type every proxied response has.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// Sets `X-Forwarded-For` for the origin. A peer listed in `trusted` is a proxy in front
/// of this one: its header is kept and the peer appended. Anyone else's header is a claim
/// of its own, replaced by the peer's address, so that an origin hook reading the first
/// entry cannot be fooled.
pub fn add_forwarded_for(headers: &mut HeaderMap, peer: SocketAddr, trusted: &TrustedProxies) {
    let ip = crate::limits::normalise(peer.ip()).to_string();
    let earlier = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let value = if trusted.trusts(peer.ip()) && !earlier.is_empty() {
        format!("{earlier}, {ip}")
    } else {
        ip
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert("x-forwarded-for", value);
    }
}

/// A body from a full buffer.
pub fn full(body: impl Into<Bytes>) -> ProxyBody {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Largest request head (request line and headers) a client may send; hyper answers 431
/// beyond it (and beyond 100 headers). hyper checks between reads, so a head may pass it
/// by one read (up to twice this). Its default, about 400 KiB, is far more than any
/// player or WHIP client sends.
const MAX_REQUEST_HEAD: usize = 64 * 1024;

/// Serves one HTTP/1 client connection: `handle` answers each request. A request head
/// must arrive within the handshake timeout (a client that connects and says nothing, or
/// drips bytes, is closed; so is a keep-alive connection idle that long between
/// requests), and a client that stops reading what it is sent is closed once no byte
/// has got through for the idle timeout ([`crate::write_watch`]): hyper stops polling a
/// response body while the socket is full, so the body's own timers cannot see it.
pub async fn serve_http1<F, Fut>(
    ctx: &Context,
    stream: TcpStream,
    protocol: &'static str,
    handle: F,
) where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
{
    let service = service_fn(move |req| {
        let answer = handle(req);
        async move { Ok::<_, Infallible>(answer.await) }
    });
    // The kernel would otherwise grow the send buffer to megabytes (autotuning) for a
    // client that reads nothing, and the write watch would see progress all that while.
    // Half a megabyte in flight (the kernel doubles the value) still carries tens of
    // Mbit/s over a 50 ms path.
    if let Err(e) = socket2::SockRef::from(&stream).set_send_buffer_size(CLIENT_SEND_BUFFER) {
        tracing::debug!("cannot bound the client's send buffer: {e}");
    }
    let (stream, progress) = WriteWatch::new(stream);
    let stall_limit = ctx.config.idle_timeout;
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(ctx.config.handshake_timeout)
        .max_buf_size(MAX_REQUEST_HEAD)
        .serve_connection(TokioIo::new(stream), service);
    let served = tokio::select! {
        served = conn => served,
        () = crate::write_watch::stalled(&progress, stall_limit) => {
            // Dropping the connection drops the response body, its session and its
            // origin connection.
            tracing::info!("{protocol} client closed: it read nothing for {stall_limit:?}");
            return;
        }
    };
    if let Err(e) = served {
        tracing::debug!("{protocol} connection ended: {e}");
    }
}

/// How long an origin has to start answering a request: the body may then take forever
/// (a live stream), but the status and headers come at once from a healthy origin.
/// Blocking LL-HLS playlist reloads wait for their part, and get `blocking`.
pub fn response_wait(ctx: &Context, blocking: Option<Duration>) -> Duration {
    blocking.unwrap_or(
        ctx.config
            .origin_connect_timeout
            .max(Duration::from_secs(1))
            * 4,
    )
}

/// Send buffer asked for on HTTP client sockets ([`serve_http1`]).
const CLIENT_SEND_BUFFER: usize = 256 * 1024;

/// Sends one request to a given origin (a session's, not picked: an HLS token's, a WebRTC
/// resource's) over a new connection; see [`send_over`].
pub async fn send<B>(
    ctx: &Context,
    origin: &Origin,
    leg: Leg,
    client: ClientAddrs,
    request: Request<B>,
    wait: Duration,
) -> Result<Response<Incoming>, LinkError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let sent = async {
        let (stream, endpoint) = connect_to(ctx, origin, leg, client).await?;
        send_over(ctx, origin, leg, stream, &endpoint, request, wait).await
    };
    sent.await
        .inspect_err(|e| crate::metrics::refused(leg.label(), e.refusal()))
}

/// Picks the stream's origin and sends it `request()`: a connect that fails, or an origin
/// that does not answer within `wait`, marks that origin down and the request goes to
/// another ([`crate::origin_link::with_origins`]).
pub async fn pick_and_send<B>(
    ctx: &Context,
    key: &StreamKey,
    intent: PickIntent,
    leg: Leg,
    client: ClientAddrs,
    wait: Duration,
    request: impl Fn() -> Result<Request<B>, LinkError>,
) -> Result<(Origin, Response<Incoming>), LinkError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    crate::origin_link::with_origins(ctx, key, intent, leg, |origin| {
        let request = request();
        async move {
            let request = request?;
            let (stream, endpoint) = connect_to(ctx, &origin, leg, client).await?;
            send_over(ctx, &origin, leg, stream, &endpoint, request, wait).await
        }
    })
    .await
}

/// Sends one request on a fresh connection to `origin` and returns its response, with a
/// body that keeps the origin connection (and the session) alive only while it is read.
/// An origin that does not start answering within `wait` is counted and held down like
/// one that refused the connection ([`suspect`]): a hung origin must not cost every
/// client the wait.
pub async fn send_over<B>(
    ctx: &Context,
    origin: &Origin,
    leg: Leg,
    stream: TcpStream,
    endpoint: &Endpoint,
    request: Request<B>,
    wait: Duration,
) -> Result<Response<Incoming>, LinkError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let failed = |reason: String| LinkError::Failed {
        origin: origin.id.to_string(),
        reason: format!("{endpoint}: {reason}"),
    };
    let exchange = async {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| failed(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("origin connection ended: {e}");
            }
        });
        sender
            .send_request(request)
            .await
            .map_err(|e| failed(e.to_string()))
    };
    match tokio::time::timeout(wait, exchange).await {
        Ok(answered) => answered,
        Err(_) => {
            let reason = format!("no response within {wait:?}");
            suspect(ctx, origin, &format!("{endpoint}: {reason}"), leg).await;
            Err(LinkError::Unreachable {
                origin: origin.id.to_string(),
                endpoint: endpoint.to_string(),
                reason,
            })
        }
    }
}

/// A response body that counts what it carries and holds the session open while it is
/// streamed: when the client goes away, hyper drops it, which drops the origin's body and
/// with it the origin connection.
///
/// An origin that sends nothing for `idle` ends the body (and the client's response) with
/// an error, as the other relays' idle timeout does.
pub struct Relayed {
    inner: Incoming,
    traffic: Arc<Traffic>,
    idle: Duration,
    /// When the origin last sent something.
    heard: tokio::time::Instant,
    /// Fires at `heard + idle` or later; moved on lazily, not at every frame.
    timer: Pin<Box<tokio::time::Sleep>>,
    /// Resolves when the session is cut (its origin was marked down by its probes).
    cut: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    _session: SessionGuard,
}

impl Relayed {
    pub fn new(inner: Incoming, session: SessionGuard, idle: Duration) -> Self {
        let now = tokio::time::Instant::now();
        Relayed {
            inner,
            traffic: session.traffic().clone(),
            idle,
            heard: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
            cut: Box::pin(session.cut().clone().cancelled_owned()),
            _session: session,
        }
    }
}

impl Body for Relayed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.traffic.add_to_client(data.len());
                }
                self.heard = tokio::time::Instant::now();
            }
            Poll::Ready(_) => {}
            Poll::Pending => {
                if self.cut.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err("the origin was marked down".into())));
                }
                while self.timer.as_mut().poll(cx).is_ready() {
                    let due = self.heard + self.idle;
                    if tokio::time::Instant::now() >= due {
                        let idle = self.idle;
                        return Poll::Ready(Some(Err(format!(
                            "the origin sent nothing for {idle:?}"
                        )
                        .into())));
                    }
                    self.timer.as_mut().reset(due);
                }
            }
        }
        polled.map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// CORS as SRS does it, so browser players (hls.js, mpegts.js) and WHIP/WHEP clients work
/// (those must be able to read Location, ETag and Link). The origin's own CORS headers win.
pub fn add_cors(headers: &mut HeaderMap) {
    let defaults = [
        ("access-control-allow-origin", "*"),
        ("access-control-allow-methods", "GET, POST, HEAD, PUT, DELETE, PATCH, OPTIONS"),
        ("access-control-allow-headers", "origin,range,accept-encoding,referer,Cache-Control,X-Proxy-Authorization,X-Requested-With,Content-Type,Authorization,If-Match"),
        ("access-control-expose-headers", "Server,range,Content-Length,Content-Range,Location,ETag,Link"),
    ];
    for (name, value) in defaults {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
}

/// A JSON reply.
pub fn json_response(status: StatusCode, body: serde_json::Value) -> Response<ProxyBody> {
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A request the proxy answers itself, with a status and a short reason.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    reason: String,
}

impl Refusal {
    /// A refusal with its status and reason.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Refusal {
            status,
            reason: reason.into(),
        }
    }

    /// The JSON error reply, logged with its reason.
    pub fn into_response(self) -> Response<ProxyBody> {
        tracing::info!(status = self.status.as_u16(), "refused: {}", self.reason);
        json_response(
            self.status,
            serde_json::json!({ "code": self.status.as_u16(), "error": self.reason }),
        )
    }
}

/// The System API answers with the same refusals (through axum).
impl axum::response::IntoResponse for Refusal {
    fn into_response(self) -> axum::response::Response {
        Refusal::into_response(self).map(axum::body::Body::new)
    }
}

/// A balancer's answer to an operator's request: an unknown origin is not found, a
/// balancer that cannot answer is unavailable, anything else a bad request.
impl From<lb_core::Error> for Refusal {
    fn from(e: lb_core::Error) -> Self {
        let status = match e {
            lb_core::Error::UnknownOrigin(_) => StatusCode::NOT_FOUND,
            lb_core::Error::Unavailable(_) | lb_core::Error::NoOrigin { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_REQUEST,
        };
        Refusal::new(status, e.to_string())
    }
}

impl From<LinkError> for Refusal {
    fn from(e: LinkError) -> Self {
        let status = match e {
            LinkError::Unavailable(_) | LinkError::Full { .. } | LinkError::Local(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            LinkError::NoEndpoint { .. }
            | LinkError::Unreachable { .. }
            | LinkError::Failed { .. } => StatusCode::BAD_GATEWAY,
        };
        Refusal::new(status, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("cookie", HeaderValue::from_static("a=b"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["cookie"]);
    }

    #[test]
    fn forwarded_for_appends_only_behind_a_trusted_proxy() {
        let trusted = TrustedProxies::parse("127.0.0.10").unwrap();
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        h.append("x-forwarded-for", HeaderValue::from_static("7.7.7.7"));
        // A client's own claim is replaced by its address.
        add_forwarded_for(&mut h, "127.0.0.9:5000".parse().unwrap(), &trusted);
        assert_eq!(h["x-forwarded-for"], "127.0.0.9");
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        // A trusted proxy's chain is kept, and the proxy appended.
        add_forwarded_for(&mut h, "127.0.0.10:5000".parse().unwrap(), &trusted);
        assert_eq!(h["x-forwarded-for"], "127.0.0.9, 127.0.0.10");
        let mut fresh = HeaderMap::new();
        add_forwarded_for(
            &mut fresh,
            "[::ffff:127.0.0.10]:1".parse().unwrap(),
            &trusted,
        );
        assert_eq!(fresh["x-forwarded-for"], "127.0.0.10");
    }
}
