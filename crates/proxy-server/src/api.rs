//! The System API: origins register here, operators look and drain here.
//!
//! Replies follow SRS's shape: `{"code":0,...}` on success, `{"code":<status>,"error":..}`
//! otherwise. Write endpoints require the token when one is configured, as a bearer
//! header or a `token` query parameter (SRS's heartbeat URL can only carry the latter).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, Limited};
use lb_core::{OriginId, OriginStatus, Registration};
use serde_json::{json, Value};

use crate::Context;

/// Largest request body the System API reads.
const MAX_BODY: usize = 64 * 1024;

/// The System API's routes.
pub fn router(ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/api/v1/srs/register", post(register))
        .route("/api/v1/versions", get(versions))
        .route("/api/v1/servers", get(servers))
        .route("/api/v1/servers/{id}/drain", post(drain).delete(undrain))
        .route("/api/v1/streams", get(streams))
        .route("/healthz", get(healthz))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .with_state(ctx)
}

/// An error reply.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(json!({ "code": self.0.as_u16(), "error": self.1 })),
        )
            .into_response()
    }
}

impl From<lb_core::Error> for ApiError {
    fn from(e: lb_core::Error) -> Self {
        let status = match e {
            lb_core::Error::UnknownOrigin(_) => StatusCode::NOT_FOUND,
            lb_core::Error::Unavailable(_) | lb_core::Error::NoOrigin { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError(status, e.to_string())
    }
}

fn authorize(ctx: &Context, headers: &HeaderMap, query: Option<&str>) -> Result<(), ApiError> {
    let Some(expected) = ctx.config.system_api_token.as_deref() else {
        return Ok(());
    };
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let queried = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")));
    match bearer.or(queried) {
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError(StatusCode::UNAUTHORIZED, "wrong token".into())),
        None => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "this endpoint needs the System API token".into(),
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn read_body(body: Body) -> Result<bytes::Bytes, ApiError> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("body is larger than {MAX_BODY} bytes"),
        )),
        Err(e) => Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("reading body: {e}"),
        )),
    }
}

async fn register(
    State(ctx): State<Arc<Context>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    authorize(&ctx, &headers, query.as_deref())?;
    let body = read_body(body).await?;
    let origin = Registration::from_json(&body)
        .and_then(Registration::into_origin)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
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
    json!({
        "id": o.id,
        "server": o.server,
        "service": o.service,
        "pid": o.pid,
        "device_id": o.device_id,
        "ip": o.ip,
        "source": o.source,
        "alive": status.alive,
        "draining": status.draining,
        "since_heartbeat_ms": status.since_heartbeat.as_millis() as u64,
        "streams": status.streams,
        "sessions": sessions,
        "weight": o.weight,
        "max_streams": o.max_streams,
        "endpoints": { "rtmp": list(&o.rtmp), "http": list(&o.http), "api": list(&o.api), "srt": list(&o.srt), "rtc": list(&o.rtc) },
    })
}

async fn servers(State(ctx): State<Arc<Context>>) -> Result<Json<Value>, ApiError> {
    let sessions = ctx.sessions.by_origin();
    let data: Vec<Value> = ctx
        .balancer
        .origins()
        .await?
        .iter()
        .map(|s| server_json(s, sessions.get(&s.origin.id).copied().unwrap_or(0)))
        .collect();
    Ok(Json(
        json!({ "code": 0, "balancer": ctx.balancer.name(), "data": data }),
    ))
}

async fn streams(State(ctx): State<Arc<Context>>) -> Result<Json<Value>, ApiError> {
    let mut local = ctx.sessions.by_stream();
    let data: Vec<Value> = ctx
        .balancer
        .placements()
        .await?
        .into_iter()
        .map(|p| {
            let here = local.remove(&p.key).unwrap_or_default();
            json!({
                "stream": p.key.to_string(),
                "vhost": p.key.vhost(), "app": p.key.app(), "name": p.key.stream(),
                "origin": p.origin,
                "sessions": here,
            })
        })
        .collect();
    Ok(Json(json!({ "code": 0, "data": data })))
}

async fn set_draining(
    ctx: &Context,
    headers: &HeaderMap,
    query: Option<&str>,
    id: String,
    draining: bool,
) -> Result<Json<Value>, ApiError> {
    authorize(ctx, headers, query)?;
    let id = OriginId::new(id);
    ctx.balancer.set_draining(&id, draining).await?;
    tracing::info!(origin = %id, draining, "drain state changed");
    let status = ctx
        .balancer
        .origin(&id)
        .await?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("unknown origin {id}")))?;
    let sessions = ctx.sessions.by_origin().get(&id).copied().unwrap_or(0);
    Ok(Json(
        json!({ "code": 0, "data": server_json(&status, sessions) }),
    ))
}

async fn drain(
    State(ctx): State<Arc<Context>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_draining(&ctx, &headers, q.as_deref(), id, true).await
}

async fn undrain(
    State(ctx): State<Arc<Context>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_draining(&ctx, &headers, q.as_deref(), id, false).await
}

async fn healthz(State(ctx): State<Arc<Context>>) -> Result<Json<Value>, ApiError> {
    // A balancer that cannot answer within a second makes this proxy unfit for new clients.
    match tokio::time::timeout(Duration::from_secs(1), ctx.balancer.origins()).await {
        Ok(Ok(origins)) => Ok(Json(json!({
            "code": 0,
            "status": "ok",
            "balancer": ctx.balancer.name(),
            "origins_alive": origins.iter().filter(|o| o.alive).count(),
            "sessions": ctx.sessions.len(),
        }))),
        Ok(Err(e)) => Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
        Err(_) => Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "balancer did not answer within 1 s".into(),
        )),
    }
}
