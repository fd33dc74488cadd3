//! HTTP-FLV / HTTP-TS / HLS front-end (PROXY_HTTP_SERVER).
//!
//! `.flv` and `.ts` streams are relayed from the stream's origin as they arrive. Playlists
//! are fetched, rewritten so every URI carries an affinity token, and returned; segment
//! requests carrying the token go to the origin that served the playlist, whatever proxy
//! of the fleet receives them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flv_http::{Classifier, Kind, MediaRequest};
use http::header;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use lb_core::{HlsSession, Origin, PickIntent, StreamKey};
use tokio::net::TcpStream;
use tower::ServiceExt;

use crate::forward::{self, strip_hop_by_hop, Relayed};
use crate::http_front::{full, ProxyBody, Refusal};
use crate::origin_link::{ClientAddrs, Leg, LinkError};
use crate::sessions::Protocol;
use crate::Context;

/// The query parameter carrying the HLS affinity token (the reference's name).
const TOKEN_PARAM: &str = hls_rewrite::DEFAULT_TOKEN_PARAM;
/// LL-HLS blocking playlist requests may be held this long by the origin.
const PLAYLIST_WAIT: Duration = Duration::from_secs(30);

/// Binds the listener, if configured, and serves it until shutdown.
pub async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let Some(addr) = ctx.config.http_listen else {
        return Ok(());
    };
    let listener = crate::bind_tcp("http", addr).await?;
    crate::accept::serve_tcp(ctx, listener, "http", serve_connection);
    Ok(())
}

async fn serve_connection(ctx: Arc<Context>, stream: TcpStream, peer: SocketAddr) {
    let client = ClientAddrs::of(&stream, peer);
    let router = ctx.clone();
    crate::http_front::serve(&ctx, stream, "http", move |req| {
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
    match media.kind {
        Kind::Flv | Kind::Ts if ctx.config.edge => {
            crate::edge::serve::http_viewer(ctx, client, &media).await
        }
        Kind::Flv | Kind::Ts => relay_stream(ctx, client, req, &media).await,
        Kind::HlsPlaylist => relay_playlist(ctx, client, req, &media).await,
        Kind::HlsSegment => relay_segment(ctx, client, req, &media).await,
        Kind::Other => Err(Refusal::new(StatusCode::NOT_FOUND, "not found")),
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
    req: Request<Incoming>,
    media: &MediaRequest,
) -> Result<Response<ProxyBody>, Refusal> {
    let key = key_of(media, &media.stream)?;
    let path = req.uri().path().to_owned();
    let query = req
        .uri()
        .query()
        .map(|q| hls_rewrite::strip_token(q, TOKEN_PARAM).into_owned());
    let (origin, response, token) = match &media.token {
        Some(token) => {
            let to = To::Origin(Box::new(origin_of_token(ctx, token).await?));
            let (origin, response) = send_to_origin(ctx, client, to, req, query.as_deref()).await?;
            (origin, response, token.clone())
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
            let token = hls_token(&key, &origin);
            // Without the shared store the token would not resolve on other proxies; this
            // proxy still resolves it from its recent routes.
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
                tracing::warn!("cannot store HLS session: {e}");
            }
            ctx.recent.tokens.remember(token.clone(), &origin);
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
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    tracing::debug!(stream = %key, origin = %origin.id, "playlist");
    Ok(Response::from_parts(parts, full(rewritten)))
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
) -> Result<(Origin, Response<Incoming>), Refusal> {
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
fn unrelayed(response: Response<Incoming>) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, body.map_err(Into::into).boxed_unsync())
}

fn relayed(
    ctx: &Context,
    response: Response<Incoming>,
    session: crate::sessions::SessionGuard,
) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let idle = ctx.config.idle_timeout;
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
