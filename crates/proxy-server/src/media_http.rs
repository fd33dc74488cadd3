//! HTTP-FLV / HTTP-TS / HLS front-end (PROXY_HTTP_SERVER).
//!
//! `.flv` and `.ts` streams are relayed from the stream's origin as they arrive. Playlists
//! are fetched, rewritten so every URI carries an affinity token, and returned; segment
//! requests carrying the token go to the origin that served the playlist, whatever proxy
//! of the fleet receives them.
//!
//! On an edge (PROXY_EDGE) playlists and segments come from the HLS cache
//! ([`crate::hls_cache`]): one upstream fetch serves every viewer who wants the same
//! response while it is fresh, and the viewers who ask while it is being fetched.
//!
//! A rewritten playlist is other bytes than the origin's: it leaves with an ETag and a
//! length of its own, and the client's conditional and range headers are answered here,
//! not forwarded (they would be compared with the origin's bytes).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flv_http::{Classifier, Kind, MediaRequest};
use http::header;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use lb_core::{HlsSession, Origin, OriginId, PickIntent, StreamKey};
use tower::ServiceExt;

use crate::forward::{self, strip_hop_by_hop, Relayed};
use crate::hls_cache::{self, Class, EdgeCache as HlsCache, Served};
use crate::http_front::{full, ProxyBody, Refusal};
use crate::origin_link::{ClientAddrs, Leg, LinkError};
use crate::sessions::Protocol;
use crate::Context;
use tracing::Instrument;

/// The query parameter carrying the HLS affinity token (the reference's name).
const TOKEN_PARAM: &str = hls_rewrite::DEFAULT_TOKEN_PARAM;
/// LL-HLS blocking playlist requests may be held this long by the origin.
const PLAYLIST_WAIT: Duration = Duration::from_secs(30);

/// Binds the listeners (HTTP, HTTPS), if configured, and serves them until shutdown.
pub async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    if let Some(addr) = ctx.config.http_listen {
        let listener = crate::bind_tcp("http", addr).await?;
        crate::accept::serve_tcp_spanned(
            ctx.clone(),
            listener,
            "http",
            |ctx, stream, peer, span| {
                let client = ClientAddrs::of(&stream, peer);
                crate::http_front::bound_send_buffer(&stream);
                serve_connection(ctx, stream, client, false, "http", span)
            },
        );
    }
    if let (Some(addr), Some(store)) = (ctx.config.https_listen, ctx.tls.clone()) {
        let listener = crate::bind_tcp("https", addr).await?;
        crate::tls::serve(
            ctx,
            listener,
            "https",
            &store,
            crate::tls::ALPN_HTTP,
            crate::http_front::bound_send_buffer,
            |ctx, stream, client, _| {
                let h2 = crate::tls::is_h2(&stream);
                // Entered for the whole connection by the TLS front already.
                serve_connection(ctx, stream, client, h2, "https", tracing::Span::none())
            },
        );
    }
    Ok(())
}

/// Serves a client connection: an HTTP/1 one through [`crate::media_raw`] first (a live
/// stream is relayed raw, anything else comes back to hyper); HTTP/2, and every
/// connection of an edge (whose viewers are served from its own fan-out), to hyper.
/// `span` is the connection's, if the caller has not entered it for the whole connection
/// (else `Span::none()`): hyper's connections run in it, a raw viewer enters it only to
/// place its stream and to log, not on each of its wake-ups.
async fn serve_connection<S: crate::accept::ClientStream>(
    ctx: Arc<Context>,
    stream: S,
    client: ClientAddrs,
    h2: bool,
    protocol: &'static str,
    span: tracing::Span,
) {
    if h2 || ctx.config.edge {
        return serve_hyper(ctx, stream, client, h2, protocol)
            .instrument(span)
            .await;
    }
    let hyper_ctx = ctx.clone();
    let hyper_span = span.clone();
    crate::media_raw::serve(ctx, stream, client, protocol, span, move |replayed| {
        serve_hyper(hyper_ctx, replayed, client, false, protocol).instrument(hyper_span)
    })
    .await
}

async fn serve_hyper<S: crate::accept::ClientStream>(
    ctx: Arc<Context>,
    stream: S,
    client: ClientAddrs,
    h2: bool,
    protocol: &'static str,
) {
    let router = ctx.clone();
    crate::http_front::serve(&ctx, stream, h2, protocol, move |req| {
        let ctx = router.clone();
        async move { route(&ctx, client, req).await }
    })
    .await
}

async fn route(
    ctx: &Arc<Context>,
    client: ClientAddrs,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Refusal> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let classified = Classifier::new().classify(
        req.method().as_str(),
        req.uri().path(),
        req.uri().query(),
        host.as_deref(),
    );
    let media = match classified {
        Ok(media) if media.kind != Kind::Other => media,
        _ => return serve_static(ctx, req).await,
    };
    match (media.kind, ctx.hls_cache.as_ref()) {
        (Kind::Flv | Kind::Ts, _) if ctx.config.edge => {
            crate::edge::serve::http_viewer(ctx, client, &media).await
        }
        (Kind::Flv | Kind::Ts, _) => relay_stream(ctx, client, req, &media).await,
        (Kind::HlsPlaylist, Some(cache)) => edge_playlist(ctx, cache, client, req, &media).await,
        (Kind::HlsSegment, Some(cache)) => edge_segment(ctx, cache, client, req, &media).await,
        (Kind::HlsPlaylist, None) => relay_playlist(ctx, client, req, &media).await,
        (Kind::HlsSegment, None) => relay_segment(ctx, client, req, &media).await,
        (Kind::Other, _) => Err(Refusal::new(StatusCode::NOT_FOUND, "not found")),
    }
}

fn key_of(media: &MediaRequest, stream: &str) -> Result<StreamKey, Refusal> {
    StreamKey::new(media.vhost.as_deref(), &media.app, stream)
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e.to_string()))
}

/// A live `.flv` / `.ts` stream: relayed chunk by chunk for as long as the viewer reads.
async fn relay_stream(
    ctx: &Context,
    client: ClientAddrs,
    req: Request<Incoming>,
    media: &MediaRequest,
) -> Result<Response<ProxyBody>, Refusal> {
    let key = key_of(media, &media.stream)?;
    let protocol = if media.kind == Kind::Flv {
        Protocol::HttpFlv
    } else {
        Protocol::HttpTs
    };
    let query = req.uri().query().map(str::to_owned);
    let (origin, response) =
        send_to_origin(ctx, client, To::Pick(&key), req, query.as_deref()).await?;
    tracing::info!(stream = %key, origin = %origin.id, status = response.status().as_u16(), "{protocol:?} viewer");
    if !response.status().is_success() {
        crate::origin_link::release_refused_play(ctx, PickIntent::Play, &key, &origin.id).await;
        return Ok(unrelayed(response));
    }
    let session = ctx.sessions.open(
        protocol,
        key,
        origin.id.clone(),
        client.peer,
        PickIntent::Play,
    );
    Ok(relayed(ctx, response, session))
}

/// A playlist: fetched whole (bounded), rewritten with the affinity token, returned.
async fn relay_playlist(
    ctx: &Context,
    client: ClientAddrs,
    mut req: Request<Incoming>,
    media: &MediaRequest,
) -> Result<Response<ProxyBody>, Refusal> {
    let key = key_of(media, &media.stream)?;
    let path = req.uri().path().to_owned();
    let asked = whole_response_request(&mut req);
    let query = req
        .uri()
        .query()
        .map(|q| hls_rewrite::strip_token(q, TOKEN_PARAM).into_owned());
    // An expired fleet token on a playlist: placed again, as a player's first request.
    let token_in =
        (media.token.as_ref()).filter(|t| !crate::origin_link::hls_token_expired(ctx, t));
    let (origin, response, token) = match token_in {
        Some(token) => {
            let to = To::Origin(Box::new(origin_of_token(ctx, token).await?));
            let (origin, response) = send_to_origin(ctx, client, to, req, query.as_deref()).await?;
            (
                origin,
                response,
                crate::origin_link::renewed_hls_token(ctx, token),
            )
        }
        None => {
            let (origin, response) =
                send_to_origin(ctx, client, To::Pick(&key), req, query.as_deref()).await?;
            if !response.status().is_success() {
                // No stream there: no token, and no placement left behind.
                crate::origin_link::release_refused_play(ctx, PickIntent::Play, &key, &origin.id)
                    .await;
                return Ok(unrelayed(response));
            }
            let token = issue_token(ctx, &key, &origin).await;
            (origin, response, token)
        }
    };
    let (mut parts, body) = response.into_parts();
    let body = tokio::time::timeout(
        PLAYLIST_WAIT,
        Limited::new(body, hls_rewrite::DEFAULT_MAX_SIZE).collect(),
    )
    .await
    .map_err(|_| {
        Refusal::new(
            StatusCode::GATEWAY_TIMEOUT,
            "origin did not finish the playlist in time",
        )
    })?
    .map_err(|e| {
        Refusal::new(
            StatusCode::BAD_GATEWAY,
            format!("reading the playlist from the origin: {e}"),
        )
    })?
    .to_bytes();
    strip_hop_by_hop(&mut parts.headers);
    if !parts.status.is_success() {
        return Ok(Response::from_parts(parts, full(body)));
    }
    let rewritten = hls_rewrite::rewrite_bytes(&body, TOKEN_PARAM, &token, &path).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_GATEWAY,
            format!("origin sent a playlist that cannot be rewritten: {e}"),
        )
    })?;
    parts.headers.remove(header::CONTENT_ENCODING);
    for name in [header::ACCEPT_RANGES, header::CONTENT_RANGE] {
        parts.headers.remove(name);
    }
    tracing::debug!(stream = %key, origin = %origin.id, "playlist");
    let rewritten = Bytes::from(rewritten);
    let etag = hls_cache::etag_of(&rewritten);
    Ok(hls_cache::respond(
        &asked,
        parts.status,
        &parts.headers,
        rewritten,
        etag,
        None,
        None,
    ))
}

/// The affinity token of `key` on `origin`, stored for the fleet (and remembered here:
/// without the shared store it would not resolve on other proxies, but this one still
/// resolves it from its recent routes).
async fn issue_token(ctx: &Context, key: &StreamKey, origin: &Origin) -> String {
    // A token signed with the fleet's secret resolves on every proxy by itself.
    if let Some(signed) = crate::origin_link::signed_hls_token(ctx, key, origin) {
        ctx.recent.tokens.remember(signed.clone(), origin);
        return signed;
    }
    let token = hls_token(key, origin);
    if let Err(e) = ctx
        .balancer
        .put_hls(
            &token,
            &HlsSession {
                key: key.clone(),
                origin: origin.id.clone(),
            },
        )
        .await
    {
        // Without the shared store the token would not resolve on other proxies; this
        // proxy still resolves it from its recent routes.
        tracing::warn!("cannot store HLS session: {e}");
    }
    ctx.recent.tokens.remember(token.clone(), origin);
    token
}

/// Makes `req` a GET of the origin's whole, unencoded response: the client's validators
/// and ranges are about the bytes the proxy sends, which are not the origin's (a rewritten
/// playlist) or come from the cache (the same bytes for every viewer). Returns the
/// client's headers, to answer those here.
fn whole_response_request(req: &mut Request<Incoming>) -> http::HeaderMap {
    // A HEAD is answered from the whole response too (hyper sends its head only).
    *req.method_mut() = http::Method::GET;
    let asked = req.headers().clone();
    let headers = req.headers_mut();
    for name in [
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_MATCH,
        header::IF_UNMODIFIED_SINCE,
        header::IF_RANGE,
        header::RANGE,
        header::ACCEPT_ENCODING,
    ] {
        headers.remove(name);
    }
    asked
}

/// The cache key of a request: the origin its token names (`*`: whichever the balancer
/// picks), its path, and its query without the viewer's own parameters (token, `hls_ctx`).
fn cache_key(origin: Option<&Origin>, path: &str, query: &str) -> String {
    let origin = origin.map_or("*", |o| o.id.as_str());
    format!(
        "{origin} {path}?{}",
        hls_rewrite::cache::cache_query(query, TOKEN_PARAM)
    )
}

/// The query an edge forwards: the viewer's, with the stream's one upstream `hls_ctx`
/// in place of the viewer's own; and whether it has one.
///
/// One per stream, not per origin: after the stream moves, the new origin answers the
/// unknown `hls_ctx` with a master playlist naming it (not cached, see
/// [`Class::Playlist`]) and knows it from then on.
fn upstream_query(cache: &HlsCache, key: &StreamKey, query: &str) -> (String, bool) {
    let ctx = hls_rewrite::cache::HLS_CTX;
    match hls_rewrite::extract_token(query, ctx) {
        Some(viewers) => {
            let pinned = cache.upstream_ctx(&key.to_string(), viewers);
            (hls_rewrite::cache::set_param(query, ctx, &pinned), true)
        }
        None => (query.to_owned(), false),
    }
}

/// A playlist through the edge's cache, rewritten for the viewer.
async fn edge_playlist(
    ctx: &Context,
    cache: &HlsCache,
    client: ClientAddrs,
    mut req: Request<Incoming>,
    media: &MediaRequest,
) -> Result<Response<ProxyBody>, Refusal> {
    let key = key_of(media, &media.stream)?;
    let path = req.uri().path().to_owned();
    let query = hls_rewrite::strip_token(req.uri().query().unwrap_or(""), TOKEN_PARAM).into_owned();
    let blocking = hls_rewrite::is_blocking_reload(&query);
    let asked = whole_response_request(&mut req);
    let origin = match &media.token {
        Some(token) => Some(origin_of_token(ctx, token).await?),
        None => None,
    };
    let cache_key = cache_key(origin.as_ref(), &path, &query);
    let (upstream, with_ctx) = upstream_query(cache, &key, &query);
    let class = Class::Playlist { blocking, with_ctx };
    let served = cache
        .serve(cache_key, class, || {
            fetch(ctx, client, origin, &key, req, &upstream)
        })
        .await?;
    let Served::Entry { entry, hit, .. } = &served else {
        // Playlists are never too large to cache: over the limit they are refused.
        return Err(Refusal::new(StatusCode::BAD_GATEWAY, "playlist too large"));
    };
    let age = Some(entry.fetched.elapsed()).filter(|_| *hit || entry.fresh_for.is_some());
    if !entry.status.is_success() {
        let response = hls_cache::respond(
            &asked,
            entry.status,
            &entry.headers,
            entry.body.clone(),
            entry.etag.clone(),
            None,
            None,
        );
        hls_cache::count(class, &served, entry.body.len());
        return Ok(response);
    }
    let token = match &media.token {
        Some(token) => token.clone(),
        None => issue_token(ctx, &key, &entry.origin).await,
    };
    let rewritten =
        hls_rewrite::rewrite_bytes(&entry.body, TOKEN_PARAM, &token, &path).map_err(|e| {
            Refusal::new(
                StatusCode::BAD_GATEWAY,
                format!("origin sent a playlist that cannot be rewritten: {e}"),
            )
        })?;
    let rewritten = Bytes::from(rewritten);
    hls_cache::count(class, &served, rewritten.len());
    let mut headers = entry.headers.clone();
    headers.remove(header::CONTENT_ENCODING);
    let etag = hls_cache::etag_of(&rewritten);
    Ok(hls_cache::respond(
        &asked,
        entry.status,
        &headers,
        rewritten,
        etag,
        age,
        entry.fresh_for,
    ))
}

/// A segment, part, init segment or key through the edge's cache.
async fn edge_segment(
    ctx: &Context,
    cache: &HlsCache,
    client: ClientAddrs,
    mut req: Request<Incoming>,
    media: &MediaRequest,
) -> Result<Response<ProxyBody>, Refusal> {
    let key = key_of(media, media.segment_stream_guess().unwrap_or(&media.stream))?;
    let path = req.uri().path().to_owned();
    let query = hls_rewrite::strip_token(req.uri().query().unwrap_or(""), TOKEN_PARAM).into_owned();
    // A cached segment goes to every viewer: fetched whole and unencoded.
    let asked = whole_response_request(&mut req);
    let origin = match &media.token {
        Some(token) => Some(origin_of_token(ctx, token).await?),
        None => None,
    };
    let cache_key = cache_key(origin.as_ref(), &path, &query);
    let (upstream, _) = upstream_query(cache, &key, &query);
    let served = cache
        .serve(cache_key, Class::Media, || {
            fetch(ctx, client, origin, &key, req, &upstream)
        })
        .await?;
    let sent = match &served {
        Served::Entry { entry, .. } => entry.body.len(),
        Served::Through(_) => 0,
    };
    hls_cache::count(Class::Media, &served, sent);
    // A response streamed through holds a connection to its origin while it is sent,
    // as a plain proxy's relay does; a cached one holds none.
    let (origin, response, streamed) = match served {
        Served::Through(through) => {
            let (origin, response) = *through;
            tracing::debug!(stream = %key, origin = %origin.id, "segment too large to cache");
            (origin.id, response, true)
        }
        Served::Entry { entry, hit, .. } => {
            let age = Some(entry.fetched.elapsed()).filter(|_| hit || entry.fresh_for.is_some());
            let response = hls_cache::respond(
                &asked,
                entry.status,
                &entry.headers,
                entry.body.clone(),
                entry.etag.clone(),
                age,
                entry.fresh_for,
            );
            (entry.origin.id.clone(), response, false)
        }
    };
    Ok(edge_viewed(ctx, client, key, origin, response, streamed))
}

/// An edge's media response, in a session as a plain proxy's segment relay has (listed
/// under the stream, at the origin the bytes came from, until the body is sent or the
/// viewer leaves); an error or a 304 is not media, and opens none, as on a plain proxy.
/// Only a response `streamed` from the origin counts as a connection to it.
fn edge_viewed(
    ctx: &Context,
    client: ClientAddrs,
    key: StreamKey,
    origin: OriginId,
    response: Response<ProxyBody>,
    streamed: bool,
) -> Response<ProxyBody> {
    if !response.status().is_success() {
        return response;
    }
    let (protocol, peer, intent) = (Protocol::Hls, client.peer, PickIntent::Play);
    let session = match streamed {
        true => ctx.sessions.open(protocol, key, origin, peer, intent),
        false => ctx
            .sessions
            .open_uncounted(protocol, key, origin, peer, intent),
    };
    response.map(|body| hls_cache::Viewed::new(body, session).boxed_unsync())
}

/// The upstream fetch of an edge: to the token's origin, or to the stream's (picked, and
/// released again if it has no such stream).
async fn fetch(
    ctx: &Context,
    client: ClientAddrs,
    origin: Option<Origin>,
    key: &StreamKey,
    req: Request<Incoming>,
    query: &str,
) -> Result<(Origin, Response<crate::forward::OriginBody>), Refusal> {
    let to = match origin {
        Some(origin) => To::Origin(Box::new(origin)),
        None => To::Pick(key),
    };
    let picked = matches!(to, To::Pick(_));
    let (origin, response) = send_to_origin(ctx, client, to, req, Some(query)).await?;
    if picked && !response.status().is_success() {
        crate::origin_link::release_refused_play(ctx, PickIntent::Play, key, &origin.id).await;
    }
    Ok((origin, response))
}

/// A segment, init segment, key or part: to the origin its token names.
async fn relay_segment(
    ctx: &Context,
    client: ClientAddrs,
    req: Request<Incoming>,
    media: &MediaRequest,
) -> Result<Response<ProxyBody>, Refusal> {
    // The stream the segment name suggests (`cam-12.ts` -> `cam`): what the session is
    // listed under, and the route of a player that dropped the token.
    let key = key_of(media, media.segment_stream_guess().unwrap_or(&media.stream))?;
    // A segment goes where its token says: a failed connect there is a 502, not a new
    // placement (the segment exists on that origin only).
    let to = match &media.token {
        Some(token) => To::Origin(Box::new(origin_of_token(ctx, token).await?)),
        None => To::Pick(&key),
    };
    let picked = matches!(to, To::Pick(_));
    let query = req
        .uri()
        .query()
        .map(|q| hls_rewrite::strip_token(q, TOKEN_PARAM).into_owned());
    let (origin, response) = send_to_origin(ctx, client, to, req, query.as_deref()).await?;
    if !response.status().is_success() {
        if picked {
            crate::origin_link::release_refused_play(ctx, PickIntent::Play, &key, &origin.id).await;
        }
        return Ok(unrelayed(response));
    }
    let session = ctx.sessions.open(
        Protocol::Hls,
        key,
        origin.id.clone(),
        client.peer,
        PickIntent::Play,
    );
    Ok(relayed(ctx, response, session))
}

async fn origin_of_token(ctx: &Context, token: &str) -> Result<Origin, Refusal> {
    crate::origin_link::origin_of_hls_token(ctx, token)
        .await?
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                "unknown or expired HLS session, or its origin is gone; reload the playlist",
            )
        })
}

/// Where a request goes.
enum To<'a> {
    /// The stream's origin, picked (and picked again after a failed connect).
    Pick(&'a StreamKey),
    /// This origin, whatever happens.
    Origin(Box<Origin>),
}

/// Forwards the client's request (method, path, the given query, end-to-end headers plus
/// X-Forwarded-For) to the origin's HTTP endpoint; returns the origin with its answer.
async fn send_to_origin(
    ctx: &Context,
    client: ClientAddrs,
    to: To<'_>,
    req: Request<Incoming>,
    query: Option<&str>,
) -> Result<(Origin, Response<crate::forward::OriginBody>), Refusal> {
    let (parts, _body) = req.into_parts();
    let target = match query.filter(|q| !q.is_empty()) {
        Some(q) => format!("{}?{q}", parts.uri.path()),
        None => parts.uri.path().to_owned(),
    };
    // A blocking LL-HLS reload is answered when its part exists, not at once.
    let blocking = query
        .is_some_and(hls_rewrite::is_blocking_reload)
        .then_some(PLAYLIST_WAIT);
    let wait = forward::response_wait(ctx, blocking);
    let request = || {
        forward::origin_request(ctx, &parts, client.peer, &target, Empty::<Bytes>::new()).map_err(
            |e| LinkError::Failed {
                origin: String::new(),
                reason: format!("the request cannot be forwarded: {e}"),
            },
        )
    };
    match to {
        To::Pick(key) => Ok(forward::pick_and_send(
            ctx,
            key,
            PickIntent::Play,
            Leg::Http,
            client,
            wait,
            request,
        )
        .await?),
        To::Origin(origin) => {
            let response = forward::send(ctx, &origin, Leg::Http, client, request()?, wait).await?;
            Ok((*origin, response))
        }
    }
}

/// An origin's answer passed on as it is, outside any session: an error page, not media.
fn unrelayed(response: Response<crate::forward::OriginBody>) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, body.map_err(Into::into).boxed_unsync())
}

fn relayed(
    ctx: &Context,
    response: Response<crate::forward::OriginBody>,
    session: crate::sessions::SessionGuard,
) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let idle = ctx.live().idle_timeout;
    Response::from_parts(parts, Relayed::new(body, session, idle).boxed_unsync())
}

async fn serve_static(
    ctx: &Context,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Refusal> {
    let Some(dir) = ctx.config.static_files.as_ref().filter(|d| d.is_dir()) else {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "not a stream (.flv, .ts, .m3u8) and no static files configured",
        ));
    };
    let response = tower_http::services::ServeDir::new(dir)
        .oneshot(req)
        .await
        .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(response.map(|b| b.map_err(Into::into).boxed_unsync()))
}

/// The affinity token of a stream on an origin: the same for every playlist request this
/// process serves (players polling a media playlist do not mint a token per poll), and
/// unguessable from outside (keyed with a per-process random secret).
fn hls_token(key: &StreamKey, origin: &Origin) -> String {
    use std::hash::{BuildHasher, Hash, Hasher};
    static SECRET: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
    let mut hasher = SECRET
        .get_or_init(std::hash::RandomState::new)
        .build_hasher();
    key.hash(&mut hasher);
    origin.id.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}
