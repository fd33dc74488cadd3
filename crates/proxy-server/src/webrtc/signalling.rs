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

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use lb_core::{Origin, PickIntent, RtcSession, StreamKey};
use stun_ufrag::sdp;

use super::{location, records, Rtc};
use crate::forward::{self, origin_request, strip_hop_by_hop};
use crate::http_front::{full, ProxyBody, Refusal};
use crate::origin_link::{ClientAddrs, Leg, LinkError};
use crate::Context;

/// Largest offer, answer or trickle fragment read (the SDP parser's own limit).
const MAX_BODY: usize = sdp::MAX_SDP_LEN;
/// Time a client has to send its whole offer, and an origin its whole answer once it has
/// started answering.
const BODY_WAIT: Duration = Duration::from_secs(10);

/// Serves one client connection (plain, or TLS with `h2` chosen by ALPN).
pub(super) async fn serve_connection<S: crate::accept::ClientStream>(
    ctx: Arc<Context>,
    rtc: Arc<Rtc>,
    stream: S,
    client: ClientAddrs,
    h2: bool,
    protocol: &'static str,
) {
    let router = ctx.clone();
    crate::http_front::serve(&ctx, stream, h2, protocol, move |req| {
        let (ctx, rtc) = (router.clone(), rtc.clone());
        async move { route(&ctx, &rtc, client, req).await }
    })
    .await
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
        .and_then(|h| h.to_str().ok());
    let key = StreamKey::from_rtc_query(host, req.uri().query().unwrap_or_default())
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let (parts, body) = req.into_parts();
    let offer = read_body(body, "offer")
        .await
        .map_err(|reason| Refusal::new(StatusCode::BAD_REQUEST, reason))?;
    let Some(offered) = std::str::from_utf8(&offer)
        .ok()
        .and_then(|text| sdp::ice_credentials(text).ok())
    else {
        let reason = "the offer is not an SDP with a=ice-ufrag and a=ice-pwd";
        return Err(Refusal::new(StatusCode::BAD_REQUEST, reason));
    };
    let path = parts.uri.path();
    let target = match parts.uri.query().filter(|q| !q.is_empty()) {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    // Built again for each origin tried.
    let request = || {
        origin_request(ctx, &parts, client.peer, &target, Full::new(offer.clone())).map_err(|e| {
            LinkError::Failed {
                origin: String::new(),
                reason: format!("the offer cannot be forwarded: {e}"),
            }
        })
    };
    let wait = forward::response_wait(ctx, None);
    let (origin, response) =
        forward::pick_and_send(ctx, &key, intent, Leg::Api, client, wait, request).await?;
    let (mut head, body) = response.into_parts();
    strip_hop_by_hop(&mut head.headers);
    let bad_gateway = |reason: String| {
        let reason = format!("origin {}: {reason}", origin.id);
        Refusal::new(StatusCode::BAD_GATEWAY, reason)
    };
    let body = read_body(body, "answer").await.map_err(bad_gateway)?;
    if !head.status.is_success() {
        tracing::info!(stream = %key, origin = %origin.id, status = head.status.as_u16(), "origin refused the WebRTC offer");
        crate::origin_link::release_refused_play(ctx, intent, &key, &origin.id).await;
        return Ok(Response::from_parts(head, full(body)));
    }
    let answer =
        std::str::from_utf8(&body).map_err(|_| bad_gateway("the answer is not text".into()))?;
    let relayed = sdp::relay_answer(answer, rtc.public.as_ref(), rtc.tcp)
        .map_err(|e| bad_gateway(format!("its answer cannot be relayed: {e}")))?;
    let mut session = records::signalled(&key, &origin.id, intent, offered, relayed.server);
    // The origin's resource is recorded with the digest of a new secret; the client's
    // Location carries the secret, without which no DELETE or PATCH is forwarded.
    if let Some(loc) = head.headers.remove(header::LOCATION) {
        let issued = loc
            .to_str()
            .ok()
            .and_then(|loc| {
                let ufrag = &session.server_ufrag;
                // Signed with the fleet's secret: any proxy of the fleet honours it.
                let signed = ctx.live().fleet_keys.as_ref().and_then(|keys| {
                    let now = crate::origin_link::unix_now();
                    location::issue_signed(loc, path, ufrag, &origin.id, keys, now)
                });
                signed.or_else(|| location::issue(loc, path, ufrag))
            })
            .and_then(|i| Some((HeaderValue::from_str(&i.location).ok()?, i)));
        let Some((value, issued)) = issued else {
            let reason = "its Location cannot be rewritten (or no random secret for it)";
            return Err(bad_gateway(reason.into()));
        };
        head.headers.insert(header::LOCATION, value);
        session.resource = Some(issued.resource);
        session.resource_secret = Some(issued.digest);
    }
    remember(ctx, rtc, &origin, &session, relayed.media, Some(intent)).await;
    head.headers.remove(header::CONTENT_LENGTH);
    tracing::info!(stream = %key, origin = %origin.id, ufrag = %session.server_ufrag, ?intent, status = head.status.as_u16(), "WebRTC session signalled");
    Ok(Response::from_parts(head, full(relayed.body.into_owned())))
}

/// Stores the session in the balancer (for every proxy of the fleet) and hands it to this
/// proxy's UDP router (so the first check needs no lookup).
async fn remember(
    ctx: &Context,
    rtc: &Rtc,
    origin: &Origin,
    session: &RtcSession,
    candidate: Option<SocketAddr>,
    intent: Option<PickIntent>,
) {
    let known = records::store(ctx, origin, session, candidate, intent).await;
    if let (Some(router), Some(known)) = (&rtc.router, known) {
        router.prime(known);
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
    let query = req.uri().query();
    let addressed = records::by_resource(ctx, query, client.peer, req.method())
        .await
        .map_err(|e| Refusal::from(LinkError::Unavailable(e)))?
        .ok_or_else(unknown)?;
    let ufrag = &addressed.ufrag;
    let origin_id = addressed.origin.clone();
    let origin = crate::origin_link::live_origin(ctx, &origin_id)
        .await?
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
    let recorded = addressed.resource.as_str();
    let request = origin_request(
        ctx,
        &parts,
        client.peer,
        recorded,
        Full::new(fragment.clone()),
    )
    .map_err(|e| {
        Refusal::new(
            StatusCode::BAD_GATEWAY,
            format!("the session's recorded resource is not a URI: {e}"),
        )
    })?;
    let wait = forward::response_wait(ctx, None);
    let response = forward::send(ctx, &origin, Leg::Api, client, request, wait).await?;
    let (mut head, body) = response.into_parts();
    strip_hop_by_hop(&mut head.headers);
    let bad_gateway = |reason: String| {
        let reason = format!("origin {}: {reason}", origin.id);
        Refusal::new(StatusCode::BAD_GATEWAY, reason)
    };
    let mut body = read_body(body, "response").await.map_err(bad_gateway)?;
    let status = head.status;
    tracing::info!(origin = %origin.id, ufrag, %method, status = status.as_u16(), "WebRTC session resource");

    // Forgotten only once the origin says it is gone: a refused or failed DELETE leaves
    // the session relayed.
    if method == Method::DELETE && status.is_success() {
        records::remove(ctx, ufrag).await;
        if let Some(router) = &rtc.router {
            router.forget(ufrag.clone());
        }
    }
    if method == Method::PATCH && status.is_success() && !body.is_empty() {
        if let Ok(frag) = std::str::from_utf8(&body) {
            let offered = std::str::from_utf8(&fragment).unwrap_or_default();
            let restart = sdp::ice_restart(offered, frag);
            if let (Some(restart), Some(session)) = (restart, &addressed.record) {
                let new = records::restarted(session, restart);
                tracing::info!(origin = %origin.id, ufrag = %new.server_ufrag, "ICE restart");
                remember(ctx, rtc, &origin, &new, sdp::media_candidate(frag), None).await;
            }
            let rewritten = sdp::relay_answer_fragment(frag, rtc.public.as_ref(), rtc.tcp)
                .map_err(|e| bad_gateway(format!("its trickle answer cannot be rewritten: {e}")))?;
            if let Cow::Owned(rewritten) = rewritten {
                body = Bytes::from(rewritten);
                head.headers.remove(header::CONTENT_LENGTH);
            }
        }
    }
    Ok(Response::from_parts(head, full(body)))
}

/// Reads a whole offer, answer or trickle fragment, bounded in size and time.
async fn read_body<B>(body: B, what: &str) -> Result<Bytes, String>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    crate::http_front::read_body(body, what, MAX_BODY, BODY_WAIT).await
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
}
