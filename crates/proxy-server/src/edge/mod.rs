//! Edge mode (`PROXY_EDGE`): the players of a stream share one upstream session.
//!
//! RTMP and HTTP-FLV players of a stream share one RTMP pull from the stream's origin
//! (placed through the balancer as any play is, [`crate::origin_link::with_origins`]);
//! HTTP-TS players share one HTTP GET of the origin's `.ts`. What the upstream sends goes
//! into one [`Hub`] per stream: a [`flv_http::FanOut`] (or [`flv_http::TsFanOut`]) behind
//! a mutex, holding the media once; each viewer is a task with a cursor into it, woken
//! when media arrives, that writes at its own pace. A viewer that falls behind skips ahead
//! to a keyframe or is cut ([`flv_http::FanOutConfig`]); the upstream never waits for one.
//!
//! The upstream of a hub ([`pull`]) is re-pulled through the balancer when it ends, while
//! viewers stay connected; the fan-out's timestamps carry on across it. When no upstream
//! delivers media for `idle_timeout`, viewers get a clear end. The upstream closes
//! `PROXY_EDGE_LINGER` after the last viewer left.
//!
//! HLS is served from the edge's cache ([`crate::hls_cache`]), each media response to a
//! viewer in a session as on a plain proxy. Publishing, WebRTC and SRT are relayed as
//! without edge mode.

mod pull;
pub mod serve;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use flv_http::fanout::{Cursor, ReadOutcome};
use flv_http::{FanOut, FanOutConfig, FlvTag, TsFanOut};
use lb_core::{OriginId, StreamKey};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::sessions::Protocol;
use crate::Context;

/// No media from an upstream session for this long: it is closed and the stream pulled
/// again through the balancer (the publisher may have moved to another origin, which an
/// origin that accepted the play does not say).
const UPSTREAM_STALL: Duration = Duration::from_secs(5);

/// A buffer a hub fans out: FLV/RTMP tags or TS packets.
pub trait Buffer: Send + 'static {
    /// What a viewer reads.
    type Unit: Clone + Send + 'static;
    /// A cursor for a new viewer.
    fn join(&self) -> Cursor;
    /// The viewer's next units.
    fn read(&mut self, cursor: &mut Cursor, max: usize, out: &mut Vec<Self::Unit>) -> ReadOutcome;
    /// Whether the viewer has units waiting.
    fn has_data(&self, cursor: &Cursor) -> bool;
    /// The upstream starts again.
    fn new_part(&mut self);
    /// The bytes of a unit.
    fn bytes(unit: &Self::Unit) -> &bytes::Bytes;
}

impl Buffer for FanOut {
    type Unit = FlvTag;
    fn join(&self) -> Cursor {
        FanOut::join(self)
    }
    fn read(&mut self, cursor: &mut Cursor, max: usize, out: &mut Vec<FlvTag>) -> ReadOutcome {
        FanOut::read(self, cursor, max, out)
    }
    fn has_data(&self, cursor: &Cursor) -> bool {
        FanOut::has_data(self, cursor)
    }
    fn new_part(&mut self) {
        FanOut::new_part(self)
    }
    fn bytes(unit: &FlvTag) -> &bytes::Bytes {
        unit.bytes()
    }
}

impl Buffer for TsFanOut {
    type Unit = flv_http::fanout::TsChunk;
    fn join(&self) -> Cursor {
        TsFanOut::join(self)
    }
    fn read(&mut self, cursor: &mut Cursor, max: usize, out: &mut Vec<Self::Unit>) -> ReadOutcome {
        TsFanOut::read(self, cursor, max, out)
    }
    fn has_data(&self, cursor: &Cursor) -> bool {
        TsFanOut::has_data(self, cursor)
    }
    fn new_part(&mut self) {
        TsFanOut::new_part(self)
    }
    fn bytes(unit: &Self::Unit) -> &bytes::Bytes {
        &unit.bytes
    }
}

/// Where a hub's upstream is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Looking for the stream, or waiting for the origin's answer.
    Connecting,
    /// An upstream session runs (or ran, and is being replaced).
    Live,
    /// No upstream, for good: viewers end with this reason.
    Ended(String),
}

/// The shared state of one stream on an edge.
pub struct Hub<B> {
    key: StreamKey,
    /// `rtmp` (the FLV/RTMP hub) or `http-ts`.
    upstream_protocol: &'static str,
    buffer: Mutex<B>,
    /// Bumped when media arrived (at most every the merge interval) or the status changed; viewers
    /// wait on it.
    wake: watch::Sender<u64>,
    /// Media arrived since viewers were last woken.
    dirty: std::sync::atomic::AtomicBool,
    /// When media last arrived, in milliseconds since `started` (0: never).
    last_media_ms: AtomicU64,
    status: Mutex<Status>,
    origin: Mutex<Option<(OriginId, Instant)>>,
    /// Viewers now, by protocol (RTMP, HTTP-FLV, HTTP-TS).
    viewers: [AtomicUsize; 3],
    /// Total viewers, watched by the upstream's linger.
    count: watch::Sender<usize>,
    repulls: AtomicU64,
    started: Instant,
}

fn protocol_slot(protocol: Protocol) -> usize {
    match protocol {
        Protocol::Rtmp => 0,
        Protocol::HttpFlv => 1,
        _ => 2,
    }
}

const SLOT_NAMES: [&str; 3] = ["rtmp", "http-flv", "http-ts"];

impl<B: Buffer> Hub<B> {
    fn new(key: StreamKey, upstream_protocol: &'static str, buffer: B) -> Self {
        Hub {
            key,
            upstream_protocol,
            buffer: Mutex::new(buffer),
            wake: watch::channel(0).0,
            dirty: std::sync::atomic::AtomicBool::new(false),
            last_media_ms: AtomicU64::new(0),
            status: Mutex::new(Status::Connecting),
            origin: Mutex::new(None),
            viewers: Default::default(),
            count: watch::channel(0).0,
            repulls: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// The fan-out buffer, locked (briefly: the upstream pushes and every viewer reads
    /// through it).
    pub fn buffer(&self) -> MutexGuard<'_, B> {
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The upstream's status.
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_status(&self, status: Status) {
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = status;
        self.wake_viewers();
    }

    fn wake_viewers(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Media was pushed: viewers are woken at the next merge tick ([`Hub::merge_ticks`]).
    fn media_arrived(&self) {
        self.dirty.store(true, Ordering::Relaxed);
        let ms = self.started.elapsed().as_millis().max(1);
        self.last_media_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Time since media last arrived (since the hub started, if none did).
    fn since_media(&self) -> Duration {
        let at = Duration::from_millis(self.last_media_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(at)
    }

    /// Wakes viewers every `merge` (`PROXY_EDGE_MERGE_WRITES`) when media arrived, until
    /// the hub ends. Viewers then write all that arrived meanwhile at once (SRS's "merged
    /// write"): a write per frame per viewer would cost a thousand viewers tens of
    /// thousands of system calls a second. A viewer joining is served at once; live media
    /// reaches viewers up to `merge` later.
    async fn merge_ticks(self: Arc<Self>, merge: Duration) {
        let mut tick = tokio::time::interval(merge);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            if matches!(self.status(), Status::Ended(_)) {
                return;
            }
            if self.dirty.swap(false, Ordering::Relaxed) {
                self.wake_viewers();
            }
        }
    }

    /// A receiver that changes when there is something new for viewers.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    /// The stream.
    pub fn key(&self) -> &StreamKey {
        &self.key
    }

    /// The origin of the current upstream session, if one runs.
    pub fn origin(&self) -> Option<OriginId> {
        self.origin
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(o, _)| o.clone())
    }

    fn viewer_count(&self) -> usize {
        *self.count.borrow()
    }

    /// Waits until the upstream is live (`Ok`) or has ended (`Err` with its reason), at
    /// most `wait`.
    pub async fn wait_live(&self, wait: Duration) -> Result<(), String> {
        let mut rx = self.subscribe();
        let waited = tokio::time::timeout(wait, async {
            loop {
                match self.status() {
                    Status::Live => return Ok(()),
                    Status::Ended(reason) => return Err(reason),
                    Status::Connecting => {}
                }
                if rx.changed().await.is_err() {
                    return Err("the stream's upstream ended".to_owned());
                }
            }
        })
        .await;
        waited.unwrap_or_else(|_| Err(format!("no upstream for the stream within {wait:?}")))
    }

    fn view(&self) -> Value {
        let origin = self
            .origin
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut viewers = serde_json::Map::new();
        for (slot, name) in SLOT_NAMES.iter().enumerate() {
            let n = self.viewers[slot].load(Ordering::Relaxed);
            if n > 0 {
                viewers.insert((*name).to_owned(), json!(n));
            }
        }
        json!({
            "upstream": {
                "protocol": self.upstream_protocol,
                "origin": origin.as_ref().map(|(o, _)| o.to_string()),
                "seconds": origin.map(|(_, since)| since.elapsed().as_secs()),
                "status": match self.status() {
                    Status::Connecting => "connecting".to_owned(),
                    Status::Live => "live".to_owned(),
                    Status::Ended(reason) => format!("ended: {reason}"),
                },
                "re_pulls": self.repulls.load(Ordering::Relaxed),
                "age_seconds": self.started.elapsed().as_secs(),
            },
            "viewers": viewers,
        })
    }
}

/// A viewer of a hub, counted while it lives.
pub struct ViewerGuard<B: Buffer> {
    hub: Arc<Hub<B>>,
    slot: usize,
}

impl<B: Buffer> ViewerGuard<B> {
    /// The hub viewed.
    pub fn hub(&self) -> &Arc<Hub<B>> {
        &self.hub
    }
}

impl<B: Buffer> Drop for ViewerGuard<B> {
    fn drop(&mut self) {
        self.hub.viewers[self.slot].fetch_sub(1, Ordering::Relaxed);
        self.hub.count.send_modify(|n| *n = n.saturating_sub(1));
        metrics::gauge!("proxy_edge_viewers", "protocol" => SLOT_NAMES[self.slot]).decrement(1.0);
    }
}

/// The hubs of one kind, by stream.
pub type Hubs<B> = Mutex<HashMap<StreamKey, Arc<Hub<B>>>>;

/// The hubs of this edge.
#[derive(Default)]
pub struct Edge {
    live: Hubs<FanOut>,
    ts: Hubs<TsFanOut>,
}

fn fanout_config() -> FanOutConfig {
    FanOutConfig::default()
}

impl Edge {
    /// Joins the FLV/RTMP hub of `key` as a viewer of `protocol`, starting its upstream
    /// if there is none.
    pub fn join_live(
        ctx: &Arc<Context>,
        key: &StreamKey,
        protocol: Protocol,
    ) -> ViewerGuard<FanOut> {
        let edge = &ctx.edge;
        join(
            ctx,
            &edge.live,
            key,
            protocol,
            || Hub::new(key.clone(), "rtmp", FanOut::new(fanout_config())),
            |ctx, hub| tokio::spawn(pull::run_rtmp(ctx, hub)),
        )
    }

    /// Joins the TS hub of `key`, starting its upstream if there is none.
    pub fn join_ts(ctx: &Arc<Context>, key: &StreamKey) -> ViewerGuard<TsFanOut> {
        let edge = &ctx.edge;
        join(
            ctx,
            &edge.ts,
            key,
            Protocol::HttpTs,
            || Hub::new(key.clone(), "http-ts", TsFanOut::new(fanout_config())),
            |ctx, hub| tokio::spawn(pull::run_ts(ctx, hub)),
        )
    }

    /// What `/api/v1/streams` shows of a stream on this edge; `hls`: its HLS sessions
    /// open now (HLS media responses being sent to viewers: HLS has no hub, and a player
    /// is only known while it downloads).
    pub fn stream_view(&self, key: &StreamKey, hls: usize) -> Option<Value> {
        let live = lock(&self.live).get(key).map(|h| h.view());
        let ts = lock(&self.ts).get(key).map(|h| h.view());
        let hls = (hls > 0).then(|| json!({ "viewers": { "hls": hls } }));
        match (live, ts, hls) {
            (None, None, None) => None,
            (live, ts, hls) => Some(json!({ "live": live, "ts": ts, "hls": hls })),
        }
    }

    /// The streams with a hub.
    pub fn keys(&self) -> Vec<StreamKey> {
        let mut keys: Vec<StreamKey> = lock(&self.live).keys().cloned().collect();
        keys.extend(lock(&self.ts).keys().cloned());
        keys.sort();
        keys.dedup();
        keys
    }

    /// Upstream sessions by protocol (`[rtmp, http-ts]`) and viewers, across the hubs.
    fn counts(&self) -> ([usize; 2], usize) {
        let mut upstreams = [0usize; 2];
        let mut viewers = 0usize;
        for hub in lock(&self.live).values() {
            if hub.origin().is_some() {
                upstreams[0] += 1;
            }
            viewers += hub.viewer_count();
        }
        for hub in lock(&self.ts).values() {
            if hub.origin().is_some() {
                upstreams[1] += 1;
            }
            viewers += hub.viewer_count();
        }
        (upstreams, viewers)
    }

    /// What the console's "this proxy" panel shows of the edge: upstream sessions,
    /// viewers, and viewers per upstream session; `hls`: HLS sessions open now (served
    /// from the HLS cache, not from a hub: outside the ratio).
    pub fn summary(&self, hls: usize) -> Value {
        let (upstreams, viewers) = self.counts();
        let total = upstreams[0] + upstreams[1];
        json!({
            "upstreams": { "rtmp": upstreams[0], "http-ts": upstreams[1] },
            "viewers": viewers,
            "hls_viewers": hls,
            "fanout_ratio": if total == 0 { 0.0 } else { viewers as f64 / total as f64 },
        })
    }

    /// Gauges rendered at scrape time: upstream sessions, viewers and their ratio.
    pub fn gauges(&self) -> String {
        let (upstreams, viewers) = self.counts();
        let mut g = crate::metrics::ScrapeGauges::default();
        g.family(
            "proxy_edge_upstream_sessions",
            "Upstream sessions an edge holds, by protocol (rtmp for RTMP and HTTP-FLV players, http-ts).",
        );
        g.sample(
            "proxy_edge_upstream_sessions",
            &[("protocol", "rtmp")],
            upstreams[0] as f64,
        );
        g.sample(
            "proxy_edge_upstream_sessions",
            &[("protocol", "http-ts")],
            upstreams[1] as f64,
        );
        g.family(
            "proxy_edge_fanout_ratio",
            "Viewers per upstream session on this edge (0 without upstream).",
        );
        let total = upstreams[0] + upstreams[1];
        let ratio = if total == 0 {
            0.0
        } else {
            viewers as f64 / total as f64
        };
        g.sample("proxy_edge_fanout_ratio", &[], ratio);
        g.finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn join<B: Buffer>(
    ctx: &Arc<Context>,
    map: &Hubs<B>,
    key: &StreamKey,
    protocol: Protocol,
    make: impl FnOnce() -> Hub<B>,
    start: impl FnOnce(Arc<Context>, Arc<Hub<B>>) -> tokio::task::JoinHandle<()>,
) -> ViewerGuard<B> {
    let slot = protocol_slot(protocol);
    // The count changes under the map's lock, so that an upstream closing for want of
    // viewers (which removes the hub under the same lock) never strands a new viewer.
    let mut hubs = lock(map);
    let hub = match hubs.get(key) {
        Some(hub) if !matches!(hub.status(), Status::Ended(_)) => hub.clone(),
        _ => {
            let hub = Arc::new(make());
            hubs.insert(key.clone(), hub.clone());
            start(ctx.clone(), hub.clone());
            tokio::spawn(hub.clone().merge_ticks(ctx.config.edge_merge_writes));
            hub
        }
    };
    hub.viewers[slot].fetch_add(1, Ordering::Relaxed);
    hub.count.send_modify(|n| *n += 1);
    metrics::gauge!("proxy_edge_viewers", "protocol" => SLOT_NAMES[slot]).increment(1.0);
    ViewerGuard { hub, slot }
}

/// Removes `hub` from `map` if it has no viewer (under the map's lock, see [`join`]);
/// returns whether it did.
fn retire<B: Buffer>(map: &Hubs<B>, hub: &Arc<Hub<B>>, reason: &str) -> bool {
    let mut hubs = lock(map);
    if hub.viewer_count() > 0 {
        return false;
    }
    if hubs.get(&hub.key).is_some_and(|h| Arc::ptr_eq(h, hub)) {
        hubs.remove(&hub.key);
    }
    hub.set_status(Status::Ended(reason.to_owned()));
    true
}
