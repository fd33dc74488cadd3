//! The live sessions of this proxy: what `/api/v1/streams` shows of who is watching, and
//! what keeps the balancer's placements of live streams from expiring.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use lb_core::{LiveStream, OriginId, PickIntent, StreamKey};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// The protocol a session speaks to its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    Rtmp,
    HttpFlv,
    HttpTs,
    Hls,
    #[serde(rename = "webrtc")]
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

/// Bytes relayed by a session, updated by its relay through [`Traffic::add_to_origin`]
/// and [`Traffic::add_to_client`], which also feed `proxy_bytes_total`.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Bytes sent to the origin so far (read them; add through the methods).
    pub to_origin: AtomicU64,
    /// Bytes sent to the client so far.
    pub to_client: AtomicU64,
    /// The protocol's byte counters, resolved once per session: a label lookup per packet
    /// would cost more than the relaying.
    counters: ByteCounters,
}

#[derive(Debug, Clone)]
struct ByteCounters {
    to_origin: metrics::Counter,
    to_client: metrics::Counter,
}

impl Default for ByteCounters {
    fn default() -> Self {
        ByteCounters {
            to_origin: metrics::Counter::noop(),
            to_client: metrics::Counter::noop(),
        }
    }
}

impl Traffic {
    /// Counters for a session of `protocol`, feeding `proxy_bytes_total`.
    pub fn for_protocol(protocol: Protocol) -> Self {
        Traffic {
            counters: ByteCounters {
                to_origin: crate::metrics::bytes_counter(protocol.as_str(), "to_origin"),
                to_client: crate::metrics::bytes_counter(protocol.as_str(), "to_client"),
            },
            ..Traffic::default()
        }
    }

    /// `n` more bytes went to the origin.
    pub fn add_to_origin(&self, n: usize) {
        self.to_origin.fetch_add(n as u64, Ordering::Relaxed);
        self.counters.to_origin.increment(n as u64);
    }

    /// `n` more bytes went to the client.
    pub fn add_to_client(&self, n: usize) {
        self.to_client.fetch_add(n as u64, Ordering::Relaxed);
        self.counters.to_client.increment(n as u64);
    }
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
    /// Cancelled when the session must end now (its origin was found dead).
    pub cut: CancellationToken,
    /// Whether it counts as a connection to its origin ([`Sessions::count_for_origin`]).
    pub counted: bool,
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
    /// Live sessions per origin, kept as sessions come and go so that a per-origin limit
    /// costs one lookup; an origin leaves the map when its last session ends.
    per_origin: DashMap<OriginId, usize>,
    /// Woken when a session opens, for periodic work that has nothing to do while none is
    /// live (connection reports) and need not wake an idle proxy.
    opened: tokio::sync::Notify,
}

/// Removes its session from the registry when dropped, however the session ends.
#[must_use = "the session is unregistered when the guard is dropped"]
#[derive(Debug)]
pub struct SessionGuard {
    inner: Arc<Inner>,
    id: u64,
    traffic: Arc<Traffic>,
    cut: CancellationToken,
}

impl SessionGuard {
    /// The session's byte counters.
    pub fn traffic(&self) -> &Arc<Traffic> {
        &self.traffic
    }

    /// Cancelled when the session must end now: its relay watches it, because a hung
    /// origin may never close the connection itself ([`Sessions::cut_origin`]).
    pub fn cut(&self) -> &CancellationToken {
        &self.cut
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let Some((_, info)) = self.inner.live.remove(&self.id) else {
            return;
        };
        crate::metrics::session_closed(info.protocol.as_str());
        if !info.counted {
            return;
        }
        if let dashmap::mapref::entry::Entry::Occupied(mut count) =
            self.inner.per_origin.entry(info.origin)
        {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.remove();
            }
        }
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
    /// `publish` or `play`.
    pub role: &'static str,
    pub publishing: bool,
    /// The origin this client's session is relayed to.
    pub origin: OriginId,
    pub seconds: u64,
    pub bytes_to_origin: u64,
    pub bytes_to_client: u64,
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
        self.open_as(protocol, key, origin, peer, intent, true)
    }

    /// Registers a session listed like any other but not counted as a connection to its
    /// origin (per-origin limits, the reports to the balancer): an edge's HLS viewer
    /// served from the cache, which costs the origin nothing.
    pub fn open_uncounted(
        &self,
        protocol: Protocol,
        key: StreamKey,
        origin: OriginId,
        peer: SocketAddr,
        intent: PickIntent,
    ) -> SessionGuard {
        self.open_as(protocol, key, origin, peer, intent, false)
    }

    fn open_as(
        &self,
        protocol: Protocol,
        key: StreamKey,
        origin: OriginId,
        peer: SocketAddr,
        intent: PickIntent,
        counted: bool,
    ) -> SessionGuard {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let traffic = Arc::new(Traffic::for_protocol(protocol));
        let cut = CancellationToken::new();
        if counted {
            *self.inner.per_origin.entry(origin.clone()).or_insert(0) += 1;
        }
        crate::metrics::session_opened(protocol.as_str());
        let info = SessionInfo {
            protocol,
            key,
            origin,
            peer,
            intent,
            started: Instant::now(),
            traffic: traffic.clone(),
            cut: cut.clone(),
            counted,
        };
        self.inner.live.insert(id, info);
        self.inner.opened.notify_one();
        SessionGuard {
            inner: self.inner.clone(),
            id,
            traffic,
            cut,
        }
    }

    /// Completes when a session opens; at once if one opened since the last call that
    /// completed (a single waiter is expected: the connection reports).
    pub async fn opened(&self) {
        self.inner.opened.notified().await;
    }

    /// Ends every live session relayed to `origin` (its probes say it is dead: a hung
    /// origin holds its clients until socket buffers fill, minutes at a low bitrate), so
    /// that they reconnect and are placed elsewhere. Returns how many were cut.
    pub fn cut_origin(&self, origin: &OriginId) -> usize {
        let mut cut = 0;
        for s in self.inner.live.iter().filter(|s| &s.origin == origin) {
            if !s.cut.is_cancelled() {
                s.cut.cancel();
                cut += 1;
            }
        }
        cut
    }

    /// The number of live sessions.
    pub fn len(&self) -> usize {
        self.inner.live.len()
    }

    /// The distinct streams with live sessions, with the origin they are relayed to and
    /// whether one of them publishes; a stream's publishing origin comes first, so that a
    /// balancer putting back a lost placement picks the publisher's.
    pub fn live_streams(&self) -> Vec<LiveStream> {
        let mut merged: HashMap<(StreamKey, OriginId), bool> = HashMap::new();
        for s in self.inner.live.iter() {
            *merged.entry((s.key.clone(), s.origin.clone())).or_default() |=
                s.intent == PickIntent::Publish;
        }
        let mut live: Vec<LiveStream> = merged
            .into_iter()
            .map(|((key, origin), publishing)| LiveStream {
                key,
                origin,
                publishing,
            })
            .collect();
        live.sort_by(|a, b| a.key.cmp(&b.key).then(b.publishing.cmp(&a.publishing)));
        live
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
            let up = s.traffic.to_origin.load(Ordering::Relaxed);
            let down = s.traffic.to_client.load(Ordering::Relaxed);
            entry.bytes_to_origin += up;
            entry.bytes_to_client += down;
            let publishing = s.intent == PickIntent::Publish;
            entry.clients.push(ClientView {
                protocol: s.protocol,
                peer: s.peer,
                role: if publishing { "publish" } else { "play" },
                publishing,
                origin: s.origin.clone(),
                seconds: s.started.elapsed().as_secs(),
                bytes_to_origin: up,
                bytes_to_client: down,
            });
        }
        for stream in out.values_mut() {
            // Longest-running first: the publisher usually, then the oldest viewers.
            stream.clients.sort_by_key(|c| std::cmp::Reverse(c.seconds));
        }
        out
    }

    /// Live sessions per origin.
    pub fn by_origin(&self) -> HashMap<OriginId, usize> {
        self.inner
            .per_origin
            .iter()
            .map(|e| (e.key().clone(), *e.value()))
            .collect()
    }

    /// Live sessions of this proxy relayed to `origin`; O(1), for per-origin limits.
    pub fn count_for_origin(&self, origin: &OriginId) -> usize {
        self.inner.per_origin.get(origin).map_or(0, |c| *c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(sessions: &Sessions, origin: &str, port: u16) -> SessionGuard {
        sessions.open(
            Protocol::Rtmp,
            StreamKey::new(None, "live", "cam").unwrap(),
            OriginId::new(origin),
            SocketAddr::from(([127, 0, 0, 1], port)),
            PickIntent::Play,
        )
    }

    #[test]
    fn per_origin_counts_follow_sessions_and_forget_empty_origins() {
        let sessions = Sessions::default();
        let (a, b) = (OriginId::new("a"), OriginId::new("b"));
        let first = open(&sessions, "a", 1);
        let second = open(&sessions, "a", 2);
        let third = open(&sessions, "b", 3);
        assert_eq!(sessions.count_for_origin(&a), 2);
        assert_eq!(sessions.count_for_origin(&b), 1);
        drop(first);
        drop(third);
        assert_eq!(sessions.count_for_origin(&a), 1);
        assert_eq!(sessions.count_for_origin(&b), 0);
        assert_eq!(sessions.by_origin().len(), 1, "b left the map at zero");
        drop(second);
        assert!(sessions.by_origin().is_empty());
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn cutting_an_origin_cancels_its_sessions_only() {
        let sessions = Sessions::default();
        let (on_a, also_a, on_b) = (
            open(&sessions, "a", 1),
            open(&sessions, "a", 2),
            open(&sessions, "b", 3),
        );
        assert_eq!(sessions.cut_origin(&OriginId::new("a")), 2);
        assert!(on_a.cut().is_cancelled() && also_a.cut().is_cancelled());
        assert!(!on_b.cut().is_cancelled());
        assert_eq!(sessions.cut_origin(&OriginId::new("a")), 0, "already cut");
        // Cut sessions stay listed until their relays end and drop the guards.
        assert_eq!(sessions.count_for_origin(&OriginId::new("a")), 2);
    }

    #[test]
    fn traffic_methods_update_the_session_totals() {
        let sessions = Sessions::default();
        let guard = open(&sessions, "a", 1);
        guard.traffic().add_to_origin(10);
        guard.traffic().add_to_client(7);
        guard.traffic().add_to_client(5);
        let seen = &sessions.by_stream()[&StreamKey::new(None, "live", "cam").unwrap()];
        assert_eq!((seen.bytes_to_origin, seen.bytes_to_client), (10, 12));
        assert_eq!(seen.clients[0].role, "play");
        assert_eq!(seen.clients[0].bytes_to_client, 12);
    }
}
