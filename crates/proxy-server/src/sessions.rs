//! The live sessions of this proxy: what `/api/v1/streams` shows of who is watching, and
//! what keeps the balancer's placements of live streams from expiring.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use lb_core::{OriginId, PickIntent, StreamKey};
use serde::Serialize;

/// The protocol a session speaks to its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    Rtmp,
    HttpFlv,
    HttpTs,
    Hls,
    WebRtc,
    Srt,
}

impl Protocol {
    /// The name used in the API and as a metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::HttpFlv => "http-flv",
            Protocol::HttpTs => "http-ts",
            Protocol::Hls => "hls",
            Protocol::WebRtc => "webrtc",
            Protocol::Srt => "srt",
        }
    }
}

/// Bytes relayed by a session, updated by its relay.
#[derive(Debug, Default)]
pub struct Traffic {
    pub to_origin: AtomicU64,
    pub to_client: AtomicU64,
}

/// One live session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub protocol: Protocol,
    pub key: StreamKey,
    pub origin: OriginId,
    pub peer: SocketAddr,
    pub intent: PickIntent,
    pub started: Instant,
    pub traffic: Arc<Traffic>,
}

/// The registry; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Sessions {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: AtomicU64,
    live: DashMap<u64, SessionInfo>,
}

/// Removes its session from the registry when dropped, however the session ends.
#[must_use = "the session is unregistered when the guard is dropped"]
#[derive(Debug)]
pub struct SessionGuard {
    inner: Arc<Inner>,
    id: u64,
    traffic: Arc<Traffic>,
}

impl SessionGuard {
    /// The session's byte counters.
    pub fn traffic(&self) -> &Arc<Traffic> {
        &self.traffic
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.inner.live.remove(&self.id);
    }
}

/// What this proxy has of one stream.
#[derive(Debug, Default, Clone, Serialize)]
pub struct StreamSessions {
    pub publishers: usize,
    pub players: usize,
    pub bytes_to_origin: u64,
    pub bytes_to_client: u64,
    pub clients: Vec<ClientView>,
}

/// One client of a stream, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ClientView {
    pub protocol: Protocol,
    pub peer: SocketAddr,
    pub publishing: bool,
    pub seconds: u64,
}

impl Sessions {
    /// Registers a session; it stays listed while the guard lives.
    pub fn open(
        &self,
        protocol: Protocol,
        key: StreamKey,
        origin: OriginId,
        peer: SocketAddr,
        intent: PickIntent,
    ) -> SessionGuard {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let traffic = Arc::new(Traffic::default());
        let info = SessionInfo {
            protocol,
            key,
            origin,
            peer,
            intent,
            started: Instant::now(),
            traffic: traffic.clone(),
        };
        self.inner.live.insert(id, info);
        SessionGuard {
            inner: self.inner.clone(),
            id,
            traffic,
        }
    }

    /// The number of live sessions.
    pub fn len(&self) -> usize {
        self.inner.live.len()
    }

    /// The distinct streams with live sessions.
    pub fn live_keys(&self) -> Vec<StreamKey> {
        let mut keys: Vec<StreamKey> = self.inner.live.iter().map(|s| s.key.clone()).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Live sessions grouped by stream.
    pub fn by_stream(&self) -> HashMap<StreamKey, StreamSessions> {
        let mut out: HashMap<StreamKey, StreamSessions> = HashMap::new();
        for s in self.inner.live.iter() {
            let entry = out.entry(s.key.clone()).or_default();
            match s.intent {
                PickIntent::Publish => entry.publishers += 1,
                PickIntent::Play => entry.players += 1,
            }
            entry.bytes_to_origin += s.traffic.to_origin.load(Ordering::Relaxed);
            entry.bytes_to_client += s.traffic.to_client.load(Ordering::Relaxed);
            entry.clients.push(ClientView {
                protocol: s.protocol,
                peer: s.peer,
                publishing: s.intent == PickIntent::Publish,
                seconds: s.started.elapsed().as_secs(),
            });
        }
        out
    }

    /// Live sessions per origin.
    pub fn by_origin(&self) -> HashMap<OriginId, usize> {
        let mut out = HashMap::new();
        for s in self.inner.live.iter() {
            *out.entry(s.origin.clone()).or_default() += 1;
        }
        out
    }
}
