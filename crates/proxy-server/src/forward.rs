//! HTTP reverse-proxy plumbing shared by the media and WHIP/WHEP front-ends: one request
//! to an origin over a fresh connection, headers cleaned of hop-by-hop fields, and a
//! response body that releases the origin connection the moment the client goes away.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue, CONNECTION};
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::TokioIo;
use lb_core::{Endpoint, Origin, PickIntent, StreamKey};
use std::time::Duration;
use tokio::net::TcpStream;

use crate::limits::TrustedProxies;
use crate::origin_link::{connect_to, suspect, ClientAddrs, Leg, LinkError};
use crate::sessions::{SessionGuard, Traffic};
use crate::Context;

use crate::http_front::BoxError;

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

/// The client's request as the origin gets it: its method, `target` (path and query),
/// its end-to-end headers with `X-Forwarded-For` set for `peer`, and `body`. Fails only on
/// a target that is not a URI.
pub fn origin_request<B>(
    ctx: &Context,
    parts: &http::request::Parts,
    peer: SocketAddr,
    target: &str,
    body: B,
) -> Result<Request<B>, http::Error> {
    let mut headers = parts.headers.clone();
    strip_hop_by_hop(&mut headers);
    add_forwarded_for(&mut headers, peer, &ctx.config.trusted_proxies);
    headers.remove(header::CONTENT_LENGTH);
    let mut request = Request::builder()
        .method(parts.method.clone())
        .uri(target)
        .body(body)?;
    *request.headers_mut() = headers;
    Ok(request)
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

/// Sends one request to a given origin (a session's, not picked: an HLS token's, a WebRTC
/// resource's) over a new connection; see [`send_over`].
pub async fn send<B>(
    ctx: &Context,
    origin: &Origin,
    leg: Leg,
    client: ClientAddrs,
    request: Request<B>,
    wait: Duration,
) -> Result<Response<OriginBody>, LinkError>
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
) -> Result<(Origin, Response<OriginBody>), LinkError>
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
) -> Result<Response<OriginBody>, LinkError>
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
        // The connection is driven here until the response head, then by whoever reads
        // the body: no task of its own (a viewer costs one task, not two).
        let mut conn: Driver = Box::pin(conn);
        let mut conn_done = false;
        let send = sender.send_request(request);
        tokio::pin!(send);
        let response = loop {
            tokio::select! {
                response = &mut send => break response.map_err(|e| failed(e.to_string()))?,
                ended = &mut conn, if !conn_done => {
                    // The request's own future reports why (closed, malformed...).
                    if let Err(e) = ended {
                        tracing::debug!("origin connection ended: {e}");
                    }
                    conn_done = true;
                }
            }
        };
        Ok(response.map(|body| OriginBody {
            conn: (!conn_done).then_some(conn),
            body,
        }))
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

/// An origin connection, driven by whoever reads its response.
type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// An origin's response body with the connection that carries it: reading the body drives
/// the connection, so an origin exchange needs no task of its own. Dropping it closes the
/// connection.
pub struct OriginBody {
    conn: Option<Driver>,
    body: Incoming,
}

impl Body for OriginBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if let Some(conn) = this.conn.as_mut() {
            if let Poll::Ready(ended) = conn.as_mut().poll(cx) {
                // The body reports a connection that failed mid-way itself.
                if let Err(e) = ended {
                    tracing::debug!("origin connection ended: {e}");
                }
                this.conn = None;
            }
        }
        Pin::new(&mut this.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A response body that counts what it carries and holds the session open while it is
/// streamed: when the client goes away, hyper drops it, which drops the origin's body and
/// with it the origin connection.
///
/// An origin that sends nothing for `idle` ends the body (and the client's response) with
/// an error, as the other relays' idle timeout does.
pub struct Relayed {
    inner: OriginBody,
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
    pub fn new(inner: OriginBody, session: SessionGuard, idle: Duration) -> Self {
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
