//! The client side of the HTTP front-ends (media on PROXY_HTTP_SERVER, WHIP/WHEP on
//! PROXY_HTTP_API): serving a connection within its limits, what every route answers the
//! same way (CORS preflights, the version), CORS on every reply, and the one error reply
//! every HTTP front-end (the System API too) gives: [`Refusal`]. The origin side is
//! [`crate::forward`].

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use crate::accept::ClientStream;

use crate::origin_link::LinkError;
use crate::write_watch::WriteWatch;
use crate::Context;

/// The error type of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type every proxied response has.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

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
pub(crate) const MAX_REQUEST_HEAD: usize = 64 * 1024;

/// Most requests one HTTP/2 connection may have open at once.
const MAX_H2_STREAMS: u32 = 128;

/// Bounds a client socket's send buffer: the kernel would otherwise grow it to megabytes
/// (autotuning) for a client that reads nothing, and the write watch would see progress
/// all that while. Half a megabyte in flight (the kernel doubles the value) still carries
/// tens of Mbit/s over a 50 ms path. Called on the socket before any TLS goes over it.
pub fn bound_send_buffer(stream: &TcpStream) {
    if let Err(e) = socket2::SockRef::from(stream).set_send_buffer_size(CLIENT_SEND_BUFFER) {
        tracing::debug!("cannot bound the client's send buffer: {e}");
    }
}

/// Serves one HTTP client connection, HTTP/2 if `h2` (chosen by ALPN) else HTTP/1:
/// `handle` answers each request. An HTTP/1 request head must arrive within the handshake
/// timeout (a client that connects and says nothing, or drips bytes, is closed; so is a
/// keep-alive connection idle that long between requests); an HTTP/2 connection is
/// pinged every idle timeout and closed if the ping is not answered within the handshake
/// timeout. A client that stops reading what it is sent is closed once no byte has got
/// through for the idle timeout ([`crate::write_watch`]): hyper stops polling a response
/// body while the socket is full, so the body's own timers cannot see it.
async fn serve_http<S, F, Fut>(
    ctx: &Context,
    stream: S,
    h2: bool,
    protocol: &'static str,
    handle: F,
) where
    S: ClientStream,
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
{
    let (stream, progress) = WriteWatch::new(stream);
    let live = ctx.live();
    let stall_limit = live.idle_timeout;
    let io = TokioIo::new(stream);
    let stalled = crate::write_watch::stalled(&progress, stall_limit);
    let served = if h2 {
        serve_h2(ctx, io, handle, stalled).await
    } else {
        let service = service_fn(move |req| {
            let answer = handle(req);
            async move { Ok::<_, Infallible>(answer.await) }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(live.handshake_timeout)
            .max_buf_size(MAX_REQUEST_HEAD)
            .serve_connection(io, service);
        tokio::select! {
            served = conn => Some(served),
            () = stalled => None,
        }
    };
    match served {
        // Dropping the connection dropped the response body, its session and its origin
        // connection.
        None => tracing::info!("{protocol} client closed: it read nothing for {stall_limit:?}"),
        Some(Err(e)) => tracing::debug!("{protocol} connection ended: {e}"),
        Some(Ok(())) => {}
    }
}

/// Serves an HTTP/2 connection until it ends (`None`: `stalled` resolved first). As an
/// HTTP/1 keep-alive connection is closed after the handshake timeout without a request,
/// so is an HTTP/2 connection with no request open for that long (GOAWAY): a client must
/// not hold its connection slot with pings alone.
async fn serve_h2<I, F, Fut>(
    ctx: &Context,
    io: I,
    handle: F,
    stalled: impl Future<Output = ()>,
) -> Option<hyper::Result<()>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
{
    let open = Arc::new(OpenRequests::new());
    let counted = open.clone();
    let service = service_fn(move |req| {
        let guard = OpenRequests::begin(&counted);
        let answer = handle(req);
        async move {
            let response = answer.await;
            Ok::<_, Infallible>(response.map(|body| {
                Counted {
                    body,
                    _guard: guard,
                }
                .boxed_unsync()
            }))
        }
    });
    let conn = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_REQUEST_HEAD as u32)
        .max_concurrent_streams(MAX_H2_STREAMS)
        .keep_alive_interval(Some(ctx.live().idle_timeout))
        .keep_alive_timeout(ctx.live().handshake_timeout)
        .serve_connection(io, service);
    tokio::pin!(conn, stalled);
    let limit = ctx.live().handshake_timeout;
    // Set once GOAWAY is sent: a client that does not let the connection close (it
    // must answer hyper's PING) is cut then.
    let mut cut_at: Option<tokio::time::Instant> = None;
    loop {
        let tick = async {
            match cut_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => tokio::time::sleep(limit / 4).await,
            }
        };
        tokio::select! {
            served = conn.as_mut() => return Some(served),
            () = stalled.as_mut() => return None,
            () = tick => {
                if cut_at.is_some() {
                    tracing::info!("closed an HTTP/2 connection that did not close within {limit:?} of GOAWAY");
                    return Some(Ok(()));
                }
                if open.idle_for().is_some_and(|idle| idle >= limit) {
                    tracing::info!("closing an HTTP/2 connection with no request for {limit:?}");
                    conn.as_mut().graceful_shutdown();
                    cut_at = Some(tokio::time::Instant::now() + limit);
                }
            }
        }
    }
}

/// Requests of one HTTP/2 connection whose response has not ended, and since when there
/// has been none.
struct OpenRequests {
    open: AtomicUsize,
    epoch: std::time::Instant,
    /// Milliseconds since `epoch` when the last one ended (or the connection began).
    idle_since: AtomicU64,
}

impl OpenRequests {
    fn new() -> Self {
        OpenRequests {
            open: AtomicUsize::new(0),
            epoch: std::time::Instant::now(),
            idle_since: AtomicU64::new(0),
        }
    }

    fn begin(this: &Arc<Self>) -> OpenRequest {
        this.open.fetch_add(1, Ordering::Relaxed);
        OpenRequest(this.clone())
    }

    /// How long no request has been open; `None` while one is.
    fn idle_for(&self) -> Option<Duration> {
        if self.open.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let since = Duration::from_millis(self.idle_since.load(Ordering::Relaxed));
        Some(self.epoch.elapsed().saturating_sub(since))
    }
}

/// One open request: ends when its response body is done or dropped.
struct OpenRequest(Arc<OpenRequests>);

impl Drop for OpenRequest {
    fn drop(&mut self) {
        let now = self.0.epoch.elapsed().as_millis() as u64;
        self.0.idle_since.store(now, Ordering::Relaxed);
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that holds its request open ([`OpenRequests`]) while it lives.
struct Counted {
    body: ProxyBody,
    _guard: OpenRequest,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, BoxError>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Send buffer asked for on HTTP client sockets ([`bound_send_buffer`]).
const CLIENT_SEND_BUFFER: usize = 256 * 1024;

/// Serves one client connection of an HTTP front-end: `route` answers each request but
/// those every front-end answers alike (`OPTIONS` preflights, `GET /api/v1/versions`); a
/// refusal becomes its JSON reply; every reply gets CORS headers ([`add_cors`]). `h2`:
/// the client chose HTTP/2 (ALPN); its requests get a `Host` from their authority, as the
/// routes and HTTP/1 origins expect one.
pub async fn serve<S, F, Fut>(ctx: &Context, stream: S, h2: bool, protocol: &'static str, route: F)
where
    S: ClientStream,
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<ProxyBody>, Refusal>> + Send + 'static,
{
    let route = Arc::new(route);
    serve_http(ctx, stream, h2, protocol, move |mut req| {
        let route = route.clone();
        async move {
            if !req.headers().contains_key(header::HOST) {
                let authority = req.uri().authority().map(|a| a.as_str().to_owned());
                if let Some(host) = authority.and_then(|a| HeaderValue::from_str(&a).ok()) {
                    req.headers_mut().insert(header::HOST, host);
                }
            }
            let answered = match preamble(&req) {
                Some(answer) => answer,
                None => route(req).await.unwrap_or_else(Refusal::into_response),
            };
            let mut response = answered;
            add_cors(response.headers_mut());
            response
        }
    })
    .await
}

/// What every HTTP front-end answers itself, whatever its routes.
fn preamble<B>(req: &Request<B>) -> Option<Response<ProxyBody>> {
    if req.method() == Method::OPTIONS {
        return Some(Response::new(full(Bytes::new())));
    }
    (req.uri().path() == "/api/v1/versions")
        .then(|| json_response(StatusCode::OK, crate::api::version_body()))
}

/// Reads a whole body (a client's request or an origin's answer) of at most `limit` bytes
/// within `wait`; `what` names it in the error.
pub async fn read_body<B>(
    body: B,
    what: &str,
    limit: usize,
    wait: Duration,
) -> Result<Bytes, String>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match tokio::time::timeout(wait, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(format!("the {what} is larger than {limit} bytes"))
        }
        Ok(Err(e)) => Err(format!("reading the {what}: {e}")),
        Err(_) => Err(format!("the {what} did not arrive within {wait:?}")),
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
