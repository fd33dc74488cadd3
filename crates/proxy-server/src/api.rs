//! The System API: origins register here, operators look and drain here.
//!
//! Replies follow SRS's shape: `{"code":0,...}` on success, `{"code":<status>,"error":..}`
//! otherwise. When a token is configured, every endpoint but `/healthz`,
//! `/api/v1/versions` and the console's page and code ([`OPEN_PATHS`]) requires it, as a bearer header or a `token` query parameter (SRS's
//! heartbeat URL can only carry the latter): the views list every client's address and
//! every stream name, and an RTMP stream name is often its publisher's secret.
//!
//! Served by hyper with bounded heads (size, count, read time), bodies and connections
//! (in all, per client IP, and in lifetime): the API must stay answerable while clients
//! misbehave, or origins could not renew their registrations.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use lb_core::{OriginId, OriginStatus, Registration, StreamKey};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::http_front::Refusal;
use crate::metrics::ScrapeGauges;
use crate::sessions::{Protocol, StreamSessions};
use crate::Context;

/// Largest request body the System API reads.
const MAX_BODY: usize = 64 * 1024;
/// Most of an oversized body read (and discarded) before answering 413.
const MAX_DRAIN: usize = 1024 * 1024;
/// Bound on a request head (request line and headers): hyper answers 431 beyond it.
/// (hyper's minimum is 8 KiB.)
const MAX_HEAD: usize = 16 * 1024;
/// Most headers in a request; hyper answers 431 beyond it.
const MAX_HEADERS: usize = 64;
/// Most System API connections at once; more are closed on accept. The API has its own
/// budget, outside the clients' connection limit, so operators can reach a full proxy.
const MAX_CONNECTIONS: usize = 256;
/// Most System API connections from one client IP (IPv6: one /64) at once, so that one
/// host cannot hold the whole budget and lock the origins' heartbeats out.
const MAX_CONNECTIONS_PER_IP: usize = 16;
/// A connection is closed (after its request in flight) when it has been open this long:
/// keep-alive connections cannot be hoarded.
const MAX_CONNECTION_AGE: Duration = Duration::from_secs(60);
/// Endpoints open without the token: they say nothing about streams, clients or origins.
/// The console's page and code are among them: they hold no data, and the page asks for
/// the token before it reads anything.
const OPEN_PATHS: &[&str] = &[
    "/healthz",
    "/api/v1/versions",
    "/dashboard",
    "/dashboard/console.js",
    "/dashboard/console.css",
];
/// How long `/metrics` and `/healthz` wait for the balancer.
const BALANCER_WAIT: Duration = Duration::from_secs(1);
/// How long `/api/v1/streams` waits for each balancer call (a placements list can be long).
const VIEW_WAIT: Duration = Duration::from_secs(3);

/// The System API's routes.
pub fn router(ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/api/v1/srs/register", post(register))
        .route("/api/v1/versions", get(versions))
        .route("/api/v1/servers", get(servers))
        .route("/api/v1/servers/{id}/drain", post(drain).delete(undrain))
        .route("/api/v1/streams", get(streams))
        .route("/api/v1/proxy", get(proxy_summary))
        .route("/api/v1/config", get(effective_config))
        .route("/api/v1/reload", post(reload))
        .route("/dashboard", get(console_page))
        .route("/dashboard/console.js", get(console_script))
        .route("/dashboard/console.css", get(console_style))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(|| async { Refusal::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            require_token,
        ))
        .method_not_allowed_fallback(|method: http::Method| async move {
            Refusal::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on this endpoint (see the Allow header)"),
            )
        })
        .with_state(ctx)
}

/// Serves the System API on `listener` until the proxy stops accepting.
pub async fn serve(ctx: Arc<Context>, listener: TcpListener) {
    let app = router(ctx.clone());
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_ip = crate::limits::PerIpLimiter::new(Some(MAX_CONNECTIONS_PER_IP));
    let refusals = crate::limits::LogThrottle::new(Duration::from_secs(1));
    while let Some((stream, peer)) = crate::accept::next_client(&ctx, &listener, "system-api").await
    {
        let (Some(ip_slot), Ok(slot)) = (
            per_ip.try_acquire(peer.ip()),
            slots.clone().try_acquire_owned(),
        ) else {
            if let Some(held_back) = refusals.allow() {
                tracing::warn!(%peer, limit = MAX_CONNECTIONS, per_ip = MAX_CONNECTIONS_PER_IP, held_back, "System API connection refused: too many open");
            }
            continue;
        };
        let (app, life) = (app.clone(), ctx.lifecycle.clone());
        let head_timeout = ctx.live().handshake_timeout;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| app.clone().oneshot(req));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(head_timeout)
                .max_buf_size(MAX_HEAD)
                .max_headers(MAX_HEADERS)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let served = tokio::select! {
                served = conn.as_mut() => served,
                () = life.stopped_accepting() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
                () = tokio::time::sleep(MAX_CONNECTION_AGE) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, "System API connection ended: {e}");
            }
            drop((slot, ip_slot));
        });
    }
}

/// Refuses every request but those to [`OPEN_PATHS`] without the token, when one is set.
async fn require_token(
    State(ctx): State<Arc<Context>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !OPEN_PATHS.contains(&request.uri().path()) {
        if let Err(refused) = authorize(&ctx, request.headers(), request.uri().query()) {
            return axum::response::IntoResponse::into_response(refused);
        }
    }
    next.run(request).await
}

fn authorize(ctx: &Context, headers: &HeaderMap, query: Option<&str>) -> Result<(), Refusal> {
    let live = ctx.live();
    let Some(expected) = live.system_api_token.as_deref() else {
        return Ok(());
    };
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let queried = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")));
    match bearer.or(queried) {
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(Refusal::new(StatusCode::UNAUTHORIZED, "wrong token")),
        None => Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "this endpoint needs the System API token",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads a body of at most [`MAX_BODY`] bytes. A larger one is answered 413, after
/// reading and discarding up to [`MAX_DRAIN`] of it: closing on unread bytes makes the
/// kernel reset the connection, and the client may lose the answer with it.
/// The body must arrive within `timeout` (the handshake timeout: the time any client has to
/// say what it wants).
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    timeout: Duration,
) -> Result<bytes::Bytes, Refusal> {
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body is larger than {MAX_BODY} bytes"),
        )
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_DRAIN as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut body = body;
        let (mut kept, mut seen) = (bytes::BytesMut::new(), 0usize);
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, format!("reading body: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen += data.len();
            if seen > MAX_DRAIN {
                break;
            }
            if seen <= MAX_BODY {
                kept.extend_from_slice(&data);
            }
        }
        if seen > MAX_BODY {
            return Err(too_large());
        }
        Ok(kept.freeze())
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| {
        Refusal::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("body did not arrive within {timeout:?}"),
        )
    })?
}

async fn register(
    State(ctx): State<Arc<Context>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, Refusal> {
    let body = read_body(&headers, body, ctx.live().handshake_timeout).await?;
    let origin = Registration::from_json(&body)
        .and_then(Registration::into_origin)
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, format!("registration: {e}")))?;
    let known = ctx.balancer.origin(&origin.id).await?.is_some();
    let (id, rtmp) = (
        origin.id.clone(),
        origin.rtmp.first().map(ToString::to_string),
    );
    ctx.balancer.register(origin).await?;
    if known {
        tracing::debug!(origin = %id, "heartbeat");
    } else {
        tracing::info!(origin = %id, rtmp = rtmp.as_deref().unwrap_or("-"), "origin registered");
    }
    Ok(Json(
        json!({ "code": 0, "pid": std::process::id().to_string() }),
    ))
}

async fn versions() -> Json<Value> {
    Json(version_body())
}

/// The body of `/api/v1/versions`, shared with the HTTP front-ends.
pub fn version_body() -> Value {
    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    json!({
        "code": 0,
        "pid": std::process::id().to_string(),
        "data": {
            "major": parts.next().unwrap_or(0),
            "minor": parts.next().unwrap_or(0),
            "revision": parts.next().unwrap_or(0),
            "version": version,
            "commit": env!("PROXY_BUILD_COMMIT"),
            "signature": format!("MediaProxy/{version}"),
        }
    })
}

fn server_json(status: &OriginStatus, sessions: usize) -> Value {
    let o = &status.origin;
    let list = |v: &[lb_core::Endpoint]| {
        v.iter()
            .map(|e| json!({ "address": e.to_string(), "transport": e.transport }))
            .collect::<Vec<_>>()
    };
    let state = if !status.alive {
        "down"
    } else if status.draining {
        "draining"
    } else {
        "up"
    };
    json!({
        "id": o.id,
        "server": o.server,
        "service": o.service,
        "pid": o.pid,
        "device_id": o.device_id,
        "ip": o.ip,
        "source": o.source,
        "state": state,
        "alive": status.alive,
        "draining": status.draining,
        "down": status.down,
        "since_heartbeat_ms": status.since_heartbeat.as_millis() as u64,
        "streams": status.streams,
        "sessions": sessions,
        "connections": status.connections,
        "weight": o.weight,
        "max_streams": o.max_streams,
        "max_connections": o.max_connections,
        "load": o.load,
        "utilisation": utilisation(status),
        "endpoints": { "rtmp": list(&o.rtmp), "http": list(&o.http), "api": list(&o.api), "srt": list(&o.srt), "rtc": list(&o.rtc) },
    })
}

/// How full an origin is, 0 to 1 (above 1 when over a limit): the largest of streams over
/// `max_streams`, fleet connections over `max_connections`, and the CPU share it reports;
/// `None` when it has no limit and reports no load.
fn utilisation(status: &OriginStatus) -> Option<f64> {
    let o = &status.origin;
    let ratio = |used: f64, max: Option<u32>| max.filter(|m| *m > 0).map(|m| used / f64::from(m));
    [
        ratio(status.streams as f64, o.max_streams),
        ratio(status.connections as f64, o.max_connections),
        o.load
            .and_then(|l| l.cpu_percent)
            .map(|c| f64::from(c) / 100.0),
    ]
    .into_iter()
    .flatten()
    .reduce(f64::max)
}

#[derive(Debug, Deserialize)]
struct ServersQuery {
    sort: Option<String>,
}

async fn servers(
    State(ctx): State<Arc<Context>>,
    query: Result<Query<ServersQuery>, QueryRejection>,
) -> Result<Json<Value>, Refusal> {
    let Query(query) = query.map_err(bad_query)?;
    let hot = match query.sort.as_deref() {
        None | Some("id") => false,
        Some("hot") => true,
        Some(other) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("sort={other:?}: expected `hot` or `id`"),
            ))
        }
    };
    let mut origins = ctx.balancer.origins().await?;
    origins.sort_by(|a, b| a.origin.id.cmp(&b.origin.id));
    if hot {
        // Hottest first; origins without a figure after every origin with one.
        origins.sort_by(|a, b| {
            let (ua, ub) = (
                utilisation(a).unwrap_or(-1.0),
                utilisation(b).unwrap_or(-1.0),
            );
            ub.total_cmp(&ua)
                .then(b.connections.cmp(&a.connections))
                .then(b.streams.cmp(&a.streams))
        });
    }
    let data: Vec<Value> = origins
        .iter()
        .map(|s| server_json(s, ctx.sessions.count_for_origin(&s.origin.id)))
        .collect();
    Ok(Json(
        json!({ "code": 0, "balancer": ctx.balancer.name(), "data": data }),
    ))
}

fn bad_query(e: QueryRejection) -> Refusal {
    Refusal::new(StatusCode::BAD_REQUEST, format!("query: {}", e.body_text()))
}

#[derive(Debug, Deserialize)]
struct StreamsQuery {
    /// `vhost/app/name` or `app/name` (any vhost).
    stream: Option<String>,
    origin: Option<String>,
}

/// Whether `key` is what `wanted` (`vhost/app/name`, or `app/name` in any vhost) names.
fn names(key: &StreamKey, wanted: &str) -> bool {
    let wanted = wanted.trim_matches('/');
    let full = key.to_string();
    full == wanted
        || full
            .strip_prefix(key.vhost())
            .and_then(|r| r.strip_prefix('/'))
            == Some(wanted)
}

fn origin_json(id: Option<&OriginId>, origins: &HashMap<&OriginId, &OriginStatus>) -> Value {
    let Some(id) = id else {
        return Value::Null;
    };
    match origins.get(id) {
        Some(s) => {
            json!({ "id": id, "known": true, "alive": s.alive, "draining": s.draining, "down": s.down })
        }
        None => {
            json!({ "id": id, "known": false, "alive": false, "draining": false, "down": null })
        }
    }
}

async fn streams(
    State(ctx): State<Arc<Context>>,
    query: Result<Query<StreamsQuery>, QueryRejection>,
) -> Result<Json<Value>, Refusal> {
    let Query(query) = query.map_err(bad_query)?;
    // A balancer that cannot answer (Redis away) still leaves this proxy's own clients
    // worth showing: they are listed unplaced, with the error beside them.
    let mut balancer_error = None;
    let statuses = ask(ctx.balancer.origins(), "origins")
        .await
        .unwrap_or_else(|e| {
            balancer_error = Some(e);
            Vec::new()
        });
    let placements = match balancer_error {
        Some(_) => Vec::new(),
        None => ask(ctx.balancer.placements(), "placements")
            .await
            .unwrap_or_else(|e| {
                balancer_error = Some(e);
                Vec::new()
            }),
    };
    let origins: HashMap<&OriginId, &OriginStatus> =
        statuses.iter().map(|s| (&s.origin.id, s)).collect();
    let mut local = ctx.sessions.by_stream();
    let mut listed: Vec<(StreamKey, Option<OriginId>, bool, StreamSessions)> = placements
        .into_iter()
        .map(|p| {
            let here = local.remove(&p.key).unwrap_or_default();
            (p.key, Some(p.origin), true, here)
        })
        .collect();
    // Live here but not placed (the balancer forgot it, or lost it with Redis): still
    // where its clients are, so still listed, at the origin its sessions use.
    listed.extend(local.into_iter().map(|(key, here)| {
        let origin = here.clients.first().map(|c| c.origin.clone());
        (key, origin, false, here)
    }));
    listed.retain(|(key, origin, _, here)| {
        query.stream.as_deref().is_none_or(|w| names(key, w))
            && query.origin.as_deref().is_none_or(|w| {
                origin.as_ref().is_some_and(|o| o.as_str() == w)
                    || here.clients.iter().any(|c| c.origin.as_str() == w)
            })
    });
    if listed.is_empty() && balancer_error.is_none() {
        if let Some(wanted) = &query.stream {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                format!(
                    "stream {wanted:?} is not placed on any origin and has no client on this proxy"
                ),
            ));
        }
    }
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let data: Vec<Value> = listed
        .into_iter()
        .map(|(key, origin, placed, here)| {
            let mut entry = json!({
                "stream": key.to_string(),
                "vhost": key.vhost(), "app": key.app(), "name": key.stream(),
                "origin": origin,
                "placed": placed,
                "origin_status": origin_json(origin.as_ref(), &origins),
                "sessions": here,
            });
            let hls = here
                .clients
                .iter()
                .filter(|c| c.protocol == Protocol::Hls && !c.publishing)
                .count();
            if let Some(edge) = ctx.edge.stream_view(&key, hls) {
                entry["edge"] = edge;
            }
            entry
        })
        .collect();
    let mut reply = json!({ "code": 0, "data": data });
    if let Some(e) = balancer_error {
        reply["balancer_error"] = Value::String(e);
    }
    Ok(Json(reply))
}

/// A balancer call for a view, bounded by [`VIEW_WAIT`]; a failure is counted and told.
async fn ask<T>(
    call: impl std::future::Future<Output = Result<T, lb_core::Error>>,
    operation: &'static str,
) -> Result<T, String> {
    let answer = match tokio::time::timeout(VIEW_WAIT, call).await {
        Ok(Ok(answer)) => return Ok(answer),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("the balancer did not answer within {VIEW_WAIT:?}"),
    };
    crate::metrics::balancer_error(operation);
    Err(answer)
}

/// Prometheus's scrape: what the recorder holds, then the origin gauges read from the
/// balancer now.
async fn metrics(State(ctx): State<Arc<Context>>) -> Result<Response, Refusal> {
    let origins = match tokio::time::timeout(BALANCER_WAIT, ctx.balancer.origins()).await {
        Ok(Ok(origins)) => Some(origins),
        Ok(Err(e)) => {
            tracing::warn!("metrics: balancer cannot list origins: {e}");
            crate::metrics::balancer_error("origins");
            None
        }
        Err(_) => {
            tracing::warn!("metrics: balancer did not list origins within {BALANCER_WAIT:?}");
            crate::metrics::balancer_error("origins");
            None
        }
    };
    let Some(mut text) = crate::metrics::render_prometheus() else {
        return Err(Refusal::new(StatusCode::SERVICE_UNAVAILABLE,
            "metrics go to a recorder the embedding program installed; this proxy's /metrics cannot render them",
        ));
    };
    text.push_str(&origin_gauges(&ctx, origins.as_deref()));
    if ctx.config.edge {
        text.push_str(&ctx.edge.gauges());
    }
    Ok((
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response())
}

fn origin_gauges(ctx: &Context, origins: Option<&[OriginStatus]>) -> String {
    let mut g = ScrapeGauges::default();
    g.family(
        "proxy_balancer_up",
        "1 if the balancer listed the origins for this scrape.",
    );
    g.sample(
        "proxy_balancer_up",
        &[],
        f64::from(u8::from(origins.is_some())),
    );
    let origins = origins.unwrap_or_default();
    type Read = fn(&OriginStatus, usize) -> Option<f64>;
    let families: [(&str, &str, Read); 8] = [
        ("proxy_origin_alive", "1 if the origin takes clients (heartbeat fresh or configured, not held down).", |s, _| Some(f64::from(u8::from(s.alive)))),
        ("proxy_origin_draining", "1 if the origin takes no new streams.", |s, _| Some(f64::from(u8::from(s.draining)))),
        ("proxy_origin_down", "1 if the proxies hold the origin down (failing probes, failed connects).", |s, _| Some(f64::from(u8::from(s.down.is_some())))),
        ("proxy_origin_streams", "Streams placed on the origin.", |s, _| Some(s.streams as f64)),
        ("proxy_origin_connections", "Client sessions relayed to the origin by the whole fleet.", |s, _| Some(s.connections as f64)),
        ("proxy_origin_sessions", "Client sessions this proxy relays to the origin.", |_, here| Some(here as f64)),
        ("proxy_origin_cpu_percent", "CPU use the origin reported in its heartbeat.", |s, _| s.origin.load.and_then(|l| l.cpu_percent).map(f64::from)),
        ("proxy_origin_utilisation", "How full the origin is: the largest of streams/max_streams, connections/max_connections, cpu.", |s, _| utilisation(s)),
    ];
    for (name, help, read) in families {
        let values: Vec<(&str, f64)> = origins
            .iter()
            .filter_map(|s| {
                let here = ctx.sessions.count_for_origin(&s.origin.id);
                read(s, here).map(|v| (s.origin.id.as_str(), v))
            })
            .collect();
        if values.is_empty() {
            continue;
        }
        g.family(name, help);
        for (origin, value) in values {
            g.sample(name, &[("origin", origin)], value);
        }
    }
    g.finish()
}

async fn set_draining(ctx: &Context, id: String, draining: bool) -> Result<Json<Value>, Refusal> {
    let id = OriginId::new(id);
    ctx.balancer.set_draining(&id, draining).await?;
    tracing::info!(origin = %id, draining, "drain state changed");
    let status = ctx
        .balancer
        .origin(&id)
        .await?
        .ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, format!("unknown origin {id}")))?;
    let sessions = ctx.sessions.count_for_origin(&id);
    Ok(Json(
        json!({ "code": 0, "data": server_json(&status, sessions) }),
    ))
}

async fn drain(
    State(ctx): State<Arc<Context>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Refusal> {
    set_draining(&ctx, id, true).await
}

async fn undrain(
    State(ctx): State<Arc<Context>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Refusal> {
    set_draining(&ctx, id, false).await
}

async fn healthz(State(ctx): State<Arc<Context>>) -> Result<Json<Value>, Refusal> {
    // A balancer that cannot answer within a second makes this proxy unfit for new clients.
    match tokio::time::timeout(BALANCER_WAIT, ctx.balancer.origins()).await {
        Ok(Ok(origins)) => Ok(Json(json!({
            "code": 0,
            "status": "ok",
            "balancer": ctx.balancer.name(),
            "origins_alive": origins.iter().filter(|o| o.alive).count(),
            "sessions": ctx.sessions.len(),
        }))),
        Ok(Err(e)) => degraded(&ctx, e.to_string()),
        Err(_) => degraded(&ctx, "balancer did not answer within 1 s".to_owned()),
    }
}

/// A balancer that cannot answer: still fit for new clients (200, `degraded`) while new
/// streams can be placed by rendezvous over the last known origins; unfit (503) otherwise.
fn degraded(ctx: &Context, reason: String) -> Result<Json<Value>, Refusal> {
    let alive = crate::origin_link::fallback_origins(ctx)
        .iter()
        .filter(|o| o.alive)
        .count();
    if alive == 0 {
        return Err(Refusal::new(StatusCode::SERVICE_UNAVAILABLE, reason));
    }
    Ok(Json(json!({
        "code": 0,
        "status": "degraded",
        "reason": reason,
        "balancer": ctx.balancer.name(),
        "placement": "rendezvous over the last known origins",
        "origins_alive": alive,
        "sessions": ctx.sessions.len(),
    })))
}

/// The operator's console: a page that reads the API below with the token the operator
/// types, so it adds no way around the API's checks.
async fn console_page() -> Response {
    static_text(
        "text/html; charset=utf-8",
        include_str!("console/index.html"),
    )
}

async fn console_script() -> Response {
    static_text(
        "text/javascript; charset=utf-8",
        include_str!("console/console.js"),
    )
}

async fn console_style() -> Response {
    static_text(
        "text/css; charset=utf-8",
        include_str!("console/console.css"),
    )
}

fn static_text(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (http::header::CONTENT_TYPE, content_type),
            (http::header::CACHE_CONTROL, "no-cache"),
            // The page loads nothing from elsewhere; WHEP previews go to this host's
            // WHIP/WHEP listener, on another port.
            (
                http::header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; connect-src *; media-src * blob:; img-src 'self' data:",
            ),
        ],
        body,
    )
        .into_response()
}

/// This proxy: connections, sessions, refusals by reason, the balancer and strategy, and
/// where the WHEP listener is (for the console's previews).
async fn proxy_summary(State(ctx): State<Arc<Context>>) -> Json<Value> {
    let live = ctx.live();
    let in_use = live
        .max_connections
        .saturating_sub(ctx.connections.available_permits());
    let refusals: HashMap<&str, u64> = crate::metrics::refusal_counts().collect();
    let (applied, failed) = crate::metrics::reload_counts();
    let reloads = json!({ "applied": applied, "failed": failed });
    Json(json!({
        "code": 0,
        "data": {
            "version": env!("CARGO_PKG_VERSION"),
            "balancer": ctx.balancer.name(),
            "strategy": ctx.balancer.strategy_name(),
            "connections": in_use,
            "max_connections": live.max_connections,
            "sessions": ctx.sessions.len(),
            "refusals": refusals,
            "reloads": reloads,
            "edge": ctx.config.edge.then(|| ctx.edge.summary(hls_sessions(&ctx))),
            // Port 0 (any free port) is not known here: the page then offers no preview.
            "whep_port": ctx.config.http_api_listen.map(|a| a.port()).filter(|p| *p != 0),
        }
    }))
}

/// HLS sessions open on this proxy now: HLS media responses being sent.
fn hls_sessions(ctx: &Context) -> usize {
    ctx.sessions
        .by_stream()
        .values()
        .flat_map(|s| &s.clients)
        .filter(|c| c.protocol == Protocol::Hls && !c.publishing)
        .count()
}

/// The configuration in effect, secrets masked.
async fn effective_config(State(ctx): State<Arc<Context>>) -> Json<Value> {
    Json(json!({ "code": 0, "data": crate::reload::effective_json(&ctx.live()) }))
}

/// Reads the configuration again and applies it: 200 with what changed, or 400 with
/// every problem (and nothing changed).
async fn reload(State(ctx): State<Arc<Context>>) -> Result<Json<Value>, Refusal> {
    match crate::reload::reload(&ctx, "POST /api/v1/reload").await {
        Ok(outcome) => Ok(Json(json!({ "code": 0, "data": outcome }))),
        Err(e) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("configuration not reloaded, nothing changed: {e}"),
        )),
    }
}
