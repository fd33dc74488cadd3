//! WHIP/WHEP signalling (PROXY_HTTP_API), with SRS's paths:
//!
//! - `POST /rtc/v1/whip/?app=..&stream=..` publishes; `POST /rtc/v1/whep/` and
//!   `POST /rtc/v1/whip-play/` play (`vhost` in the query or the `Host` header names the
//!   vhost). The offer is forwarded to the stream's origin with its query and headers.
//! - The answer returns with the origin's status, headers and body, except: candidates
//!   rewritten to the proxy's public address and UDP port (TCP ones dropped unless
//!   PROXY_RTC_TCP_CANDIDATES), and `Location` rewritten (see [`super::location`]).
//! - `DELETE` / `PATCH` on that Location, from any proxy of the fleet, reach the origin's
//!   recorded resource, and only with the session's secret (unknown session or wrong
//!   secret: 404, nothing forwarded). A DELETE the origin confirms (2xx) also forgets the
//!   session (balancer and UDP router); a PATCH answer's candidates are rewritten, and an
//!   ICE restart's new credentials are stored like an answer's.
//! - `GET /api/v1/versions`; `OPTIONS` anywhere answers CORS preflights.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use lb_core::{Origin, PickIntent, RtcSession, StreamKey};
use stun_ufrag::sdp::{self, CandidateType, Transport};
use stun_ufrag::IntegrityKey;
use tokio::net::TcpStream;

use super::location;
use super::udp::Known;
use super::Rtc;
use crate::forward::{
    self, add_cors, add_forwarded_for, full, json_response, strip_hop_by_hop, ProxyBody, Refusal,
};
use crate::origin_link::{ClientAddrs, Leg, LinkError};
use crate::Context;

/// Largest offer, answer or trickle fragment read (the SDP parser's own limit).
const MAX_BODY: usize = sdp::MAX_SDP_LEN;
/// Time a client has to send its whole offer, and an origin its whole answer once it has
/// started answering.
const BODY_WAIT: Duration = Duration::from_secs(10);

pub(super) async fn serve_connection(
    ctx: Arc<Context>,
    rtc: Arc<Rtc>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let client = ClientAddrs::of(&stream, peer);
    let handler = ctx.clone();
    forward::serve_http1(&ctx, stream, "http-api", move |req| {
        let (ctx, rtc) = (handler.clone(), rtc.clone());
        async move { handle(&ctx, &rtc, client, req).await }
    })
    .await
}

async fn handle(
    ctx: &Context,
    rtc: &Rtc,
    client: ClientAddrs,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let mut response = route(ctx, rtc, client, req)
        .await
        .unwrap_or_else(Refusal::into_response);
    add_cors(response.headers_mut());
    response
}

/// Which WHIP/WHEP endpoint a path is.
fn endpoint_intent(path: &str) -> Option<PickIntent> {
    match path.trim_end_matches('/') {
        "/rtc/v1/whip" => Some(PickIntent::Publish),
        "/rtc/v1/whep" | "/rtc/v1/whip-play" => Some(PickIntent::Play),
        _ => None,
    }
}

async fn route(
    ctx: &Context,
    rtc: &Rtc,
    client: ClientAddrs,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Refusal> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    if method == Method::OPTIONS {
        return Ok(Response::new(full(Bytes::new())));
    }
    if path == "/api/v1/versions" {
        return Ok(json_response(StatusCode::OK, crate::api::version_body()));
    }
    match (method, endpoint_intent(&path)) {
        (Method::POST, Some(intent)) => offer(ctx, rtc, client, req, intent).await,
        (Method::DELETE | Method::PATCH, _) => resource(ctx, rtc, client, req).await,
        (_, Some(_)) => Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST an SDP offer here; DELETE or PATCH the Location the answer gave",
        )),
        _ => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "not a WHIP/WHEP endpoint (/rtc/v1/whip/, /rtc/v1/whep/, /rtc/v1/whip-play/)",
        )),
    }
}

/// A WHIP or WHEP offer: forwarded to the stream's origin; its answer rewritten.
async fn offer(
    ctx: &Context,
    rtc: &Rtc,
    client: ClientAddrs,
    req: Request<Incoming>,
    intent: PickIntent,
) -> Result<Response<ProxyBody>, Refusal> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let key = StreamKey::from_rtc_query(host.as_deref(), req.uri().query().unwrap_or_default())
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let (parts, body) = req.into_parts();
    let offer = read_body(body, "offer")
        .await
        .map_err(|reason| Refusal::new(StatusCode::BAD_REQUEST, reason))?;
    let (client_ufrag, client_pwd) = std::str::from_utf8(&offer)
        .ok()
        .and_then(|text| sdp::ice_credentials(text).ok())
        .map(|c| (c.ufrag.to_owned(), c.pwd.to_owned()))
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "the offer is not an SDP with a=ice-ufrag and a=ice-pwd",
            )
        })?;
    let path = parts.uri.path().to_owned();
    let target = match parts.uri.query().filter(|q| !q.is_empty()) {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    // Built once to refuse a request that cannot be forwarded; again for each origin tried.
    origin_request(ctx, &parts, client.peer, &target, offer.clone())?;
    let request = || {
        origin_request(ctx, &parts, client.peer, &target, offer.clone()).map_err(|_| {
            LinkError::Failed {
                origin: String::new(),
                reason: "the offer cannot be forwarded".into(),
            }
        })
    };
    let wait = forward::response_wait(ctx, None);
    let (origin, response) =
        forward::pick_and_send(ctx, &key, intent, Leg::Api, client, wait, request).await?;
    let (mut head, body) = response.into_parts();
    strip_hop_by_hop(&mut head.headers);
    let body = read_body(body, "answer").await.map_err(|reason| {
        Refusal::new(
            StatusCode::BAD_GATEWAY,
            format!("origin {}: {reason}", origin.id),
        )
    })?;
    if !head.status.is_success() {
        tracing::info!(stream = %key, origin = %origin.id, status = head.status.as_u16(), "origin refused the WebRTC offer");
        if intent == PickIntent::Play {
            // No stream there: the player's placement goes (a publisher's stays).
            if let Err(e) = ctx.balancer.release(&key, &origin.id).await {
                tracing::debug!(stream = %key, "cannot release the placement: {e}");
            }
        }
        return Ok(Response::from_parts(head, full(body)));
    }
    let answer = std::str::from_utf8(&body).map_err(|_| {
        Refusal::new(
            StatusCode::BAD_GATEWAY,
            format!("origin {} answered with a body that is not text", origin.id),
        )
    })?;
    let server = sdp::ice_credentials(answer).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_GATEWAY,
            format!(
                "origin {} answered without usable ICE credentials: {e}",
                origin.id
            ),
        )
    })?;
    let mut session = RtcSession {
        key: key.clone(),
        origin: origin.id.clone(),
        server_ufrag: server.ufrag.to_owned(),
        client_ufrag,
        server_pwd: server.pwd.to_owned(),
        media: None,
        publishing: Some(intent == PickIntent::Publish),
        client_pwd: Some(client_pwd),
        resource: None,
        resource_secret: None,
    };
    let rewritten = match &rtc.public {
        Some(public) => sdp::rewrite_candidates(answer, public, rtc.tcp).map_err(|e| {
            Refusal::new(
                StatusCode::BAD_GATEWAY,
                format!("origin {}'s answer cannot be rewritten: {e}", origin.id),
            )
        })?,
        None => answer.to_owned(),
    };
    // The origin's resource is recorded with the digest of a new secret; the client's
    // Location carries the secret, without which no DELETE or PATCH is forwarded.
    if let Some(loc) = head.headers.remove(header::LOCATION) {
        let resource = loc
            .to_str()
            .ok()
            .map(|loc| location::origin_resource(loc, &path));
        let Some(((secret, digest), resource)) = location::new_secret().zip(resource) else {
            return Err(Refusal::new(
                StatusCode::BAD_GATEWAY,
                format!(
                    "origin {}'s Location cannot be rewritten (or no random secret for it)",
                    origin.id
                ),
            ));
        };
        let proxied = location::to_proxy(&resource, &session.server_ufrag, &secret);
        let value = HeaderValue::from_str(&proxied).map_err(|_| {
            Refusal::new(
                StatusCode::BAD_GATEWAY,
                format!(
                    "origin {} sent a Location that cannot be rewritten",
                    origin.id
                ),
            )
        })?;
        head.headers.insert(header::LOCATION, value);
        session.resource = Some(resource);
        session.resource_secret = Some(digest);
    }
    remember(ctx, rtc, &origin, &session, answer, Some(intent)).await;
    head.headers.remove(header::CONTENT_LENGTH);
    tracing::info!(stream = %key, origin = %origin.id, ufrag = %session.server_ufrag, ?intent, status = head.status.as_u16(), "WebRTC session signalled");
    Ok(Response::from_parts(head, full(rewritten)))
}

/// Stores the session in the balancer (for every proxy of the fleet) and hands it to this
/// proxy's UDP router (so the first check needs no lookup).
async fn remember(
    ctx: &Context,
    rtc: &Rtc,
    origin: &Origin,
    session: &RtcSession,
    answer: &str,
    intent: Option<PickIntent>,
) {
    let media = media_address(origin, Some(answer)).await;
    let session = RtcSession {
        media: media
            .map(|m| m.to_string())
            .or_else(|| session.media.clone()),
        ..session.clone()
    };
    if let Err(e) = ctx.balancer.put_rtc(&session.server_ufrag, &session).await {
        tracing::warn!(ufrag = %session.server_ufrag, "cannot store the WebRTC session in the balancer ({e}); only this proxy can relay its media");
    }
    let Some(router) = &rtc.router else { return };
    match media {
        Some(media) => router.prime(Known {
            integrity: IntegrityKey::new(session.server_pwd.as_bytes()),
            session,
            media,
            intent,
        }),
        None => {
            tracing::warn!(origin = %origin.id, "origin has no WebRTC UDP endpoint and its answer names no usable UDP candidate: media cannot be relayed")
        }
    }
}

/// Where an origin receives a session's media: its registered WebRTC UDP endpoint (one
/// port for every session, as SRS has it), or else the answer's first UDP host candidate
/// (origins that open a port per session); an unspecified candidate IP means the host the
/// origin's API is on.
pub(super) async fn media_address(origin: &Origin, answer: Option<&str>) -> Option<SocketAddr> {
    if let Some(endpoint) = origin.rtc_udp() {
        return resolve(&endpoint.host, endpoint.port).await;
    }
    let candidates = sdp::candidates(answer?).ok()?;
    let (_, c) = candidates.iter().find(|(_, c)| {
        c.transport == Transport::Udp && c.kind == CandidateType::Host && c.ip().is_some()
    })?;
    let addr = c.socket_addr()?;
    if addr.ip().is_unspecified() {
        let host = origin
            .api
            .first()
            .map_or(origin.ip.as_str(), |e| e.host.as_str());
        return resolve(host, addr.port()).await;
    }
    Some(addr)
}

async fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    if let Ok(ip) = host.parse() {
        return Some(SocketAddr::new(ip, port));
    }
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::lookup_host((host, port)),
    )
    .await
    {
        Ok(Ok(mut addrs)) => addrs.next(),
        _ => {
            tracing::warn!(host, "cannot resolve the origin's WebRTC address");
            None
        }
    }
}

/// DELETE or PATCH on a resource URL the proxy handed out: forwarded to the origin's
/// recorded resource if the URL names a known session and carries its secret.
async fn resource(
    ctx: &Context,
    rtc: &Rtc,
    client: ClientAddrs,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Refusal> {
    // One answer for every refusal, so that none tells a prober which part was wrong.
    let unknown = || {
        Refusal::new(
            StatusCode::NOT_FOUND,
            "unknown or expired WebRTC session: this URL names no session the proxy knows",
        )
    };
    let target = location::parse(req.uri().query());
    let (Some(ufrag), Some(secret)) = (&target.ufrag, &target.secret) else {
        return Err(unknown());
    };
    let session = ctx
        .balancer
        .rtc(ufrag)
        .await
        .map_err(|e| Refusal::from(LinkError::Unavailable(e)))?
        .ok_or_else(unknown)?;
    let (Some(recorded), Some(digest)) = (&session.resource, &session.resource_secret) else {
        // Records of older proxies kept no secret: their Locations cannot be told from
        // forged ones, so they are refused.
        tracing::info!(ufrag, "WebRTC session record without a resource secret (signalled by an older proxy): DELETE/PATCH refused");
        return Err(unknown());
    };
    if !location::verify(secret, digest) {
        tracing::info!(ufrag, peer = %client.peer, method = %req.method(), "WebRTC resource request with a wrong secret: refused");
        return Err(unknown());
    }
    let origin_id = session.origin.clone();
    let origin = ctx
        .balancer
        .origin(&origin_id)
        .await
        .map_err(|e| Refusal::from(LinkError::Unavailable(e)))?
        .filter(|s| s.alive)
        .map(|s| s.origin)
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                format!("the origin of this WebRTC session ({origin_id}) is gone"),
            )
        })?;
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let fragment = read_body(body, "request")
        .await
        .map_err(|reason| Refusal::new(StatusCode::BAD_REQUEST, reason))?;
    let request = origin_request(ctx, &parts, client.peer, recorded, fragment.clone())?;
    let wait = forward::response_wait(ctx, None);
    let response = forward::send(ctx, &origin, Leg::Api, client, request, wait).await?;
    let (mut head, body) = response.into_parts();
    strip_hop_by_hop(&mut head.headers);
    let mut body = read_body(body, "response").await.map_err(|reason| {
        Refusal::new(
            StatusCode::BAD_GATEWAY,
            format!("origin {}: {reason}", origin.id),
        )
    })?;
    let status = head.status;
    tracing::info!(origin = %origin.id, ufrag, %method, status = status.as_u16(), "WebRTC session resource");

    // Forgotten only once the origin says it is gone: a refused or failed DELETE leaves
    // the session relayed.
    if method == Method::DELETE && status.is_success() {
        if let Err(e) = ctx.balancer.remove_rtc(ufrag).await {
            tracing::warn!(
                ufrag,
                "cannot remove the WebRTC session from the balancer: {e}"
            );
        }
        if let Some(router) = &rtc.router {
            router.forget(ufrag.clone());
        }
    }
    if method == Method::PATCH && status.is_success() && !body.is_empty() {
        if let Ok(frag) = std::str::from_utf8(&body) {
            // An ICE restart: new credentials on both sides make a new session.
            let restarted = match (
                std::str::from_utf8(&fragment)
                    .ok()
                    .map(sdp::sdpfrag_ice_credentials),
                sdp::sdpfrag_ice_credentials(frag),
            ) {
                // The Location still names the old ufrag, whose record keeps the resource.
                (Some(Ok(Some(client))), Ok(Some(server))) => Some(RtcSession {
                    server_ufrag: server.ufrag.to_owned(),
                    client_ufrag: client.ufrag.to_owned(),
                    server_pwd: server.pwd.to_owned(),
                    client_pwd: Some(client.pwd.to_owned()),
                    ..session.clone()
                }),
                _ => None,
            };
            if let Some(new) = restarted {
                tracing::info!(origin = %origin.id, ufrag = %new.server_ufrag, "ICE restart");
                remember(ctx, rtc, &origin, &new, frag, None).await;
            }
            if let Some(public) = &rtc.public {
                match sdp::rewrite_sdpfrag_candidates(frag, public, rtc.tcp) {
                    Ok(rewritten) => {
                        body = Bytes::from(rewritten);
                        head.headers.remove(header::CONTENT_LENGTH);
                    }
                    Err(e) => {
                        return Err(Refusal::new(
                            StatusCode::BAD_GATEWAY,
                            format!(
                                "origin {}'s trickle answer cannot be rewritten: {e}",
                                origin.id
                            ),
                        ))
                    }
                }
            }
        }
    }
    Ok(Response::from_parts(head, full(body)))
}

/// The client's request for the origin: method, the given target (path and query),
/// end-to-end headers plus X-Forwarded-For, and the body.
fn origin_request(
    ctx: &Context,
    parts: &http::request::Parts,
    peer: SocketAddr,
    target: &str,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, Refusal> {
    let mut headers = parts.headers.clone();
    strip_hop_by_hop(&mut headers);
    add_forwarded_for(&mut headers, peer, &ctx.config.trusted_proxies);
    headers.remove(header::CONTENT_LENGTH);
    let mut request = Request::builder()
        .method(parts.method.clone())
        .uri(target)
        .body(Full::new(body))
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    *request.headers_mut() = headers;
    Ok(request)
}

/// Reads a whole body, bounded in size and time.
async fn read_body<B>(body: B, what: &str) -> Result<Bytes, String>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match tokio::time::timeout(BODY_WAIT, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(format!("the {what} is larger than {MAX_BODY} bytes"))
        }
        Ok(Err(e)) => Err(format!("reading the {what}: {e}")),
        Err(_) => Err(format!("the {what} did not arrive within {BODY_WAIT:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srs_paths() {
        assert_eq!(endpoint_intent("/rtc/v1/whip/"), Some(PickIntent::Publish));
        assert_eq!(endpoint_intent("/rtc/v1/whip"), Some(PickIntent::Publish));
        assert_eq!(endpoint_intent("/rtc/v1/whep/"), Some(PickIntent::Play));
        assert_eq!(
            endpoint_intent("/rtc/v1/whip-play/"),
            Some(PickIntent::Play)
        );
        assert_eq!(endpoint_intent("/rtc/v1/play/"), None);
    }

    #[tokio::test]
    async fn media_address_prefers_the_registered_port_then_the_answer() {
        let registration = br#"{"ip":"10.0.0.5","server":"a","service":"s","pid":"1","rtmp":["1935"],"api":["1985"],"rtc":["udp://0.0.0.0:8000"]}"#;
        let srs = lb_core::Registration::from_json(registration)
            .unwrap()
            .into_origin()
            .unwrap();
        let answer = "v=0\r\na=candidate:1 1 udp 2130706431 10.0.0.9 40000 typ host\r\n";
        assert_eq!(
            media_address(&srs, Some(answer)).await,
            Some("10.0.0.5:8000".parse().unwrap())
        );
        let registration = br#"{"ip":"10.0.0.5","server":"a","service":"s","pid":"1","rtmp":["1935"],"api":["1985"]}"#;
        let per_session = lb_core::Registration::from_json(registration)
            .unwrap()
            .into_origin()
            .unwrap();
        assert_eq!(
            media_address(&per_session, Some(answer)).await,
            Some("10.0.0.9:40000".parse().unwrap())
        );
        let wildcard = "v=0\r\na=candidate:1 1 tcp 1 10.0.0.9 9 typ host tcptype active\r\na=candidate:1 1 udp 1 0.0.0.0 40001 typ host\r\n";
        assert_eq!(
            media_address(&per_session, Some(wildcard)).await,
            Some("10.0.0.5:40001".parse().unwrap())
        );
        assert_eq!(media_address(&per_session, None).await, None);
    }
}
