//! The edge's HLS cache (PROXY_EDGE): responses kept in memory, shared by every viewer,
//! and one upstream fetch for all the requests that want the same response at once.
//!
//! What is kept, for how long, and the byte-bounded LRU are `hls_rewrite::cache`'s
//! (sans-IO); this module does the waiting and the HTTP: a request whose response is
//! being fetched waits for that fetch (coalescing) instead of making its own, and every
//! response leaves with validators that describe the bytes sent.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hls_rewrite::cache::{CacheControl, Lru, PlaylistTiming, Policy, Resource};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use lb_core::Origin;
use sha2::Digest;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::forward::strip_hop_by_hop;
use crate::http_front::{full, BoxError, ProxyBody, Refusal};

/// Longest the fetching request may take to read a whole response; its waiters wait as
/// long. An LL-HLS blocking reload is answered only when its part exists, hence seconds.
pub const FETCH_WAIT: Duration = Duration::from_secs(30);

/// What a cached response is: playlists are bounded by the rewriter's limit and
/// rewritten per viewer; media are served as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A playlist.
    Playlist {
        /// Asked as an LL-HLS blocking reload (`_HLS_msn`).
        blocking: bool,
        /// Asked with SRS's `hls_ctx`: a media playlist is expected.
        with_ctx: bool,
    },
    /// A segment, part, init segment or key.
    Media,
}

impl Class {
    fn label(self) -> &'static str {
        match self {
            Class::Playlist { .. } => "playlist",
            Class::Media => "media",
        }
    }
}

/// One upstream response, whole, as viewers get it.
#[derive(Debug)]
pub struct Entry {
    /// The origin that answered.
    pub origin: Origin,
    /// Its status.
    pub status: StatusCode,
    /// Its end-to-end headers, without the validators and length of its bytes (set per
    /// response, from what is sent).
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
    /// Strong ETag of `body`.
    pub etag: HeaderValue,
    /// When it was fetched.
    pub fetched: Instant,
    /// How long the cache serves it; `None`: not kept (it went only to the requests
    /// that waited for it).
    pub fresh_for: Option<Duration>,
    /// Whether the requests that waited for it may have it too: not when it is one
    /// viewer's own (`Cache-Control: private`, or it sets a cookie).
    pub shared: bool,
}

/// How a request was answered.
pub enum Served {
    /// From the cache, or from a fetch another request made (`coalesced`); `fetched` if
    /// this request made the upstream fetch.
    Entry {
        /// The response.
        entry: Arc<Entry>,
        /// Taken from the cache.
        hit: bool,
        /// Waited for another request's fetch.
        coalesced: bool,
    },
    /// Too large to cache: the origin (boxed with its response, streamed through).
    Through(Box<(Origin, Response<ProxyBody>)>),
}

/// A response too large for the cache, left for its own request only.
struct TooLarge(Box<(Origin, Response<ProxyBody>)>);

type Inflight = Arc<OnceCell<Arc<Entry>>>;

/// The cache: an LRU of entries, the fetches under way, and the `hls_ctx` each stream is
/// fetched with.
pub struct EdgeCache {
    lru: Mutex<Lru<Arc<str>, Arc<Entry>>>,
    inflight: Mutex<HashMap<Arc<str>, Inflight>>,
    /// Stream → the one `hls_ctx` the origins see for it; counted as one byte each.
    pins: Mutex<Lru<String, Arc<str>>>,
    policy: Policy,
    epoch: Instant,
}

/// Streams whose upstream `hls_ctx` is remembered at once.
const MAX_PINS: usize = 100_000;
/// A stream's upstream `hls_ctx` is forgotten after this long unused; SRS forgets its
/// sessions after twice its HLS window (a minute by default), so it is still alive there.
const PIN_TTL: Duration = Duration::from_secs(30);

impl EdgeCache {
    /// A cache of at most `budget` bytes; one entry holds at most an eighth of it.
    pub fn new(budget: usize) -> Self {
        EdgeCache {
            lru: Mutex::new(Lru::new(budget, budget / 8)),
            inflight: Mutex::new(HashMap::new()),
            pins: Mutex::new(Lru::new(MAX_PINS, 1)),
            policy: Policy::default(),
            epoch: Instant::now(),
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn lru(&self) -> std::sync::MutexGuard<'_, Lru<Arc<str>, Arc<Entry>>> {
        // A panic elsewhere while holding the lock leaves a consistent LRU (its methods
        // do not panic half-way): keep using it.
        self.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn inflight(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Inflight>> {
        self.inflight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `hls_ctx` the origin gets for `stream`: the first one a
    /// viewer sent, kept while the stream is being fetched, so that the origin sees one
    /// HLS session per stream however many viewers (each with its own `hls_ctx`) there are.
    pub fn upstream_ctx(&self, stream: &str, viewers: &str) -> Arc<str> {
        let now = self.now();
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        let ctx = pins.get(stream, now).unwrap_or_else(|| viewers.into());
        // Re-inserted to move its expiry on; one byte each, so it always fits.
        let _ = pins.insert(stream.to_owned(), ctx.clone(), 1, now + PIN_TTL);
        ctx
    }

    /// The response under `key`: from the cache, from a fetch under way, or from
    /// `fetch()`, made by this request for itself and every request that comes for `key`
    /// while it runs.
    pub async fn serve<F, Fut>(
        &self,
        key: String,
        class: Class,
        fetch: F,
    ) -> Result<Served, Refusal>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<
            Output = Result<(Origin, Response<crate::forward::OriginBody>), Refusal>,
        >,
    {
        let key: Arc<str> = key.into();
        let cell = {
            // The LRU is read under the in-flight lock: a fetch stores its entry before it
            // leaves the in-flight map, so a request sees one or the other, never neither.
            let mut inflight = self.inflight();
            let mut lru = self.lru();
            let cached = lru.get(&key, self.now());
            // A lookup may have dropped an expired entry.
            crate::metrics::edge_cache_stored(lru.used());
            drop(lru);
            if let Some(entry) = cached {
                return Ok(Served::Entry {
                    entry,
                    hit: true,
                    coalesced: false,
                });
            }
            inflight.entry(key.clone()).or_default().clone()
        };
        let mut led = false;
        let mut failure: Option<Result<TooLarge, Refusal>> = None;
        // Taken by whichever fetch runs: this request's coalesced one, or its own below.
        let mut fetch = Some(fetch);
        let got = cell
            .get_or_try_init(|| async {
                led = true;
                let _leaving = Leaving {
                    cache: self,
                    key: &key,
                    cell: &cell,
                };
                let Some(fetch) = fetch.take() else {
                    return Err(());
                };
                match self.fetch(&key, class, fetch).await {
                    Ok(entry) => Ok(entry),
                    Err(e) => {
                        failure = Some(e);
                        Err(())
                    }
                }
            })
            .await
            .cloned();
        if let (Ok(entry), Some(fetch)) = (&got, fetch.take()) {
            if !entry.shared {
                // Another viewer's own response (a cookie, `private`): not for this one,
                // who asks the origin for its own.
                return match self.fetch(&key, class, fetch).await {
                    Ok(entry) => Ok(Served::Entry {
                        entry,
                        hit: false,
                        coalesced: false,
                    }),
                    Err(Ok(TooLarge(through))) => Ok(Served::Through(through)),
                    Err(Err(refusal)) => Err(refusal),
                };
            }
        }
        match (got, failure) {
            (Ok(entry), _) => Ok(Served::Entry {
                entry,
                hit: false,
                coalesced: !led,
            }),
            (Err(()), Some(Ok(TooLarge(through)))) => Ok(Served::Through(through)),
            (Err(()), Some(Err(refusal))) => Err(refusal),
            (Err(()), None) => Err(Refusal::new(
                StatusCode::BAD_GATEWAY,
                "the upstream fetch failed",
            )),
        }
    }

    /// Fetches, reads and (if the policy allows) stores one response.
    async fn fetch<F, Fut>(
        &self,
        key: &Arc<str>,
        class: Class,
        fetch: F,
    ) -> Result<Arc<Entry>, Result<TooLarge, Refusal>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<
            Output = Result<(Origin, Response<crate::forward::OriginBody>), Refusal>,
        >,
    {
        let (origin, response) = fetch().await.map_err(Err)?;
        let (mut parts, mut body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let cap = match class {
            Class::Playlist { .. } => hls_rewrite::DEFAULT_MAX_SIZE,
            Class::Media => self.lru().entry_cap(),
        };
        let too_large = |prefix: Option<Bytes>,
                         rest: crate::forward::OriginBody,
                         mut parts: http::response::Parts| {
            if class != Class::Media {
                return Err(Err(Refusal::new(
                    StatusCode::BAD_GATEWAY,
                    format!("the origin's playlist is over {cap} bytes"),
                )));
            }
            if prefix.is_some() {
                parts.headers.remove(header::CONTENT_LENGTH);
            }
            let body = Prefixed { prefix, rest }.boxed_unsync();
            Err(Ok(TooLarge(Box::new((
                origin.clone(),
                Response::from_parts(parts, body),
            )))))
        };
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > cap as u64) {
            return too_large(None, body, parts);
        }
        let mut read = BytesMut::new();
        let reading = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| format!("reading from the origin: {e}"))?;
                if let Ok(data) = frame.into_data() {
                    read.extend_from_slice(&data);
                    if read.len() > cap {
                        return Ok(false);
                    }
                }
            }
            Ok::<_, String>(true)
        };
        let whole = tokio::time::timeout(FETCH_WAIT, reading)
            .await
            .map_err(|_| {
                Err(Refusal::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the origin did not finish its response in time",
                ))
            })?
            .map_err(|e| Err(Refusal::new(StatusCode::BAD_GATEWAY, e)))?;
        if !whole {
            return too_large(Some(read.freeze()), body, parts);
        }
        let body = read.freeze();
        let cc = parts
            .headers
            .get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        let cc = CacheControl::parse(&cc);
        let (resource, unexpected) = match class {
            Class::Playlist { blocking, with_ctx } => {
                let timing = PlaylistTiming::of(&body);
                // SRS answers an hls_ctx it does not know (yet) with a master playlist
                // naming it; the media playlist comes on the next request, which must not
                // be answered from the cache with that master.
                let unexpected = with_ctx && timing.target_duration.is_none();
                match blocking {
                    true => (Resource::BlockingPlaylist(timing), unexpected),
                    false => (Resource::Playlist(timing), unexpected),
                }
            }
            Class::Media => (Resource::Media, false),
        };
        // Only a complete 200 is kept; one that sets a cookie is someone's own, and one
        // that varies on anything (`Vary: *`) cannot be matched to the next request.
        let varies = parts.headers.get_all(header::VARY).iter().any(|v| {
            v.to_str()
                .map_or(true, |v| v.split(',').any(|f| f.trim() == "*"))
        });
        let shared = !cc.private && !parts.headers.contains_key(header::SET_COOKIE);
        let fresh_for = (parts.status == StatusCode::OK && !unexpected && !varies && shared)
            .then(|| self.policy.freshness(resource, &cc))
            .flatten();
        for name in [
            header::ETAG,
            header::CONTENT_LENGTH,
            header::ACCEPT_RANGES,
            header::CONTENT_RANGE,
            header::AGE,
            header::DATE,
        ] {
            parts.headers.remove(name);
        }
        let entry = Arc::new(Entry {
            origin,
            status: parts.status,
            etag: etag_of(&body),
            headers: parts.headers,
            body,
            fetched: Instant::now(),
            fresh_for,
            shared,
        });
        if let Some(ttl) = fresh_for {
            let size = entry.body.len() + key.len() + header_bytes(&entry.headers) + 256;
            let mut lru = self.lru();
            if lru
                .insert(key.clone(), entry.clone(), size, self.now() + ttl)
                .is_ok()
            {
                crate::metrics::edge_cache_stored(lru.used());
            }
        }
        Ok(entry)
    }
}

/// Takes a fetch out of the in-flight map when it ends, however it ends (a cancelled
/// fetch too: its viewer left, and the next waiter fetches again).
struct Leaving<'a> {
    cache: &'a EdgeCache,
    key: &'a Arc<str>,
    cell: &'a Inflight,
}

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        let mut inflight = self.cache.inflight();
        if inflight
            .get(self.key)
            .is_some_and(|c| Arc::ptr_eq(c, self.cell))
        {
            inflight.remove(self.key);
        }
    }
}

fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum()
}

/// A strong ETag over `bytes`: 128 bits of their SHA-256, so that every edge of a fleet
/// gives the same bytes the same tag.
pub fn etag_of(bytes: &[u8]) -> HeaderValue {
    let digest = sha2::Sha256::digest(bytes);
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for b in &digest[..16] {
        use std::fmt::Write as _;
        let _ = write!(tag, "{b:02x}");
    }
    tag.push('"');
    HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// Whether `If-None-Match` (`request`) names `etag` (weak comparison, RFC 9110 §13.1.2).
pub fn none_match(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.as_bytes();
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t).as_bytes() == ours)
}

/// The response for `body` sent under `status` and `headers` (end-to-end, without
/// validators): with `etag` (which must be [`etag_of`] `body`) and its Content-Length, or 304 when the request's
/// `If-None-Match` names that ETag. `age`: how long ago the response was fetched, when it
/// comes from a cache; with no `Cache-Control` from the origin, a cached response says how
/// much longer it is fresh (`fresh_for` minus its age).
pub fn respond(
    request: &HeaderMap,
    status: StatusCode,
    headers: &HeaderMap,
    body: Bytes,
    etag: HeaderValue,
    age: Option<Duration>,
    fresh_for: Option<Duration>,
) -> Response<ProxyBody> {
    let mut headers = headers.clone();
    headers.remove(header::ETAG);
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(header::ETAG, etag.clone());
    if let Some(age) = age {
        headers.insert(header::AGE, HeaderValue::from(age.as_secs()));
        if !headers.contains_key(header::CACHE_CONTROL) {
            if let Some(fresh) = fresh_for {
                let left = fresh.saturating_sub(age).as_secs();
                if let Ok(v) = HeaderValue::from_str(&format!("max-age={left}")) {
                    headers.insert(header::CACHE_CONTROL, v);
                }
            }
        }
    }
    let not_modified = status.is_success() && none_match(request, &etag);
    let (status, body) = if not_modified {
        (StatusCode::NOT_MODIFIED, Bytes::new())
    } else {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        (status, body)
    };
    if not_modified {
        headers.remove(header::CONTENT_TYPE);
    }
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// Records how an edge answered one HLS request.
pub fn count(class: Class, served: &Served, sent: usize) {
    let outcome = match served {
        Served::Entry { hit: true, .. } => "hit",
        Served::Entry {
            coalesced: true, ..
        } => "coalesced",
        Served::Entry { .. } => "miss",
        Served::Through(_) => "uncacheable",
    };
    crate::metrics::edge_cache(class.label(), outcome, sent);
}

/// The bytes already read from a response too large to cache, then the rest of it.
struct Prefixed {
    prefix: Option<Bytes>,
    rest: crate::forward::OriginBody,
}

impl Body for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        Pin::new(&mut self.rest).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.is_end_stream()
    }
}

/// Largest frame a viewer's HLS response is handed to hyper in. hyper queues up to 16
/// frames (or about 400 KB) before it waits for the socket, so a cached segment given
/// whole (one `Bytes`) would be taken at once and its session closed before the viewer
/// had it; in slices the session lasts until all but the last few are written.
const VIEWER_FRAME: usize = 16 * 1024;

/// The body of an HLS media response on its way to a viewer of an edge, in a session
/// (what a plain proxy's segment relay opens): the session is listed while the body
/// lives, and ends when it is sent or dropped (the viewer left mid-body); the bytes
/// handed on count as the session's bytes to the client.
pub struct Viewed {
    inner: ProxyBody,
    /// The rest of a frame larger than [`VIEWER_FRAME`].
    pending: Bytes,
    session: crate::sessions::SessionGuard,
}

impl Viewed {
    /// `inner` sent within `session`.
    pub fn new(inner: ProxyBody, session: crate::sessions::SessionGuard) -> Self {
        Viewed {
            inner,
            pending: Bytes::new(),
            session,
        }
    }

    fn slice(&mut self, mut data: Bytes) -> Frame<Bytes> {
        if data.len() > VIEWER_FRAME {
            self.pending = data.split_off(VIEWER_FRAME);
        }
        self.session.traffic().add_to_client(data.len());
        Frame::data(data)
    }
}

impl Body for Viewed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if !this.pending.is_empty() {
            let rest = std::mem::take(&mut this.pending);
            return Poll::Ready(Some(Ok(this.slice(rest))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => Poll::Ready(Some(Ok(this.slice(data)))),
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        let inner = self.inner.size_hint();
        let pending = self.pending.len() as u64;
        let mut hint = hyper::body::SizeHint::new();
        hint.set_lower(inner.lower() + pending);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + pending);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_viewed_body_goes_in_slices_counted_in_a_session_that_ends_with_it() {
        let sessions = crate::sessions::Sessions::default();
        let key = lb_core::StreamKey::new(None, "live", "cam").unwrap();
        let session = sessions.open_uncounted(
            crate::sessions::Protocol::Hls,
            key,
            lb_core::OriginId::new("o"),
            ([127, 0, 0, 1], 1).into(),
            lb_core::PickIntent::Play,
        );
        let traffic = session.traffic().clone();
        let body = Bytes::from(vec![7u8; 2 * VIEWER_FRAME + 5]);
        let mut viewed = Viewed::new(full(body.clone()), session);
        assert_eq!(viewed.size_hint().exact(), Some(body.len() as u64));
        let first = viewed.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first.len(), VIEWER_FRAME);
        assert_eq!(
            viewed.size_hint().exact(),
            Some((body.len() - VIEWER_FRAME) as u64)
        );
        assert!(!viewed.is_end_stream());
        assert_eq!(sessions.len(), 1);
        let origin = lb_core::OriginId::new("o");
        assert_eq!(sessions.count_for_origin(&origin), 0, "not a connection");
        let mut sent = first.len();
        while let Some(frame) = viewed.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            assert!(data.len() <= VIEWER_FRAME);
            sent += data.len();
        }
        assert_eq!(sent, body.len());
        assert_eq!(
            traffic.to_client.load(std::sync::atomic::Ordering::Relaxed),
            body.len() as u64
        );
        drop(viewed);
        assert_eq!(sessions.len(), 0, "the session ends with its body");
    }

    #[test]
    fn etags_follow_the_bytes_and_if_none_match_compares_weakly() {
        let a = etag_of(b"#EXTM3U\n");
        assert_eq!(a, etag_of(b"#EXTM3U\n"));
        assert_ne!(a, etag_of(b"#EXTM3U\r\n"));
        assert_eq!(a.len(), 34);
        let mut req = HeaderMap::new();
        assert!(!none_match(&req, &a));
        let weak = format!("\"x\", W/{}", a.to_str().unwrap());
        req.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&weak).unwrap());
        assert!(none_match(&req, &a));
        req.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(none_match(&req, &a));
    }

    #[test]
    fn a_response_describes_the_bytes_it_sends() {
        let mut origin = HeaderMap::new();
        origin.insert(header::ETAG, HeaderValue::from_static("\"origin\""));
        origin.insert(header::CONTENT_LENGTH, HeaderValue::from_static("262"));
        let body = Bytes::from_static(b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n");
        let r = respond(
            &HeaderMap::new(),
            StatusCode::OK,
            &origin,
            body.clone(),
            etag_of(&body),
            Some(Duration::from_millis(300)),
            Some(Duration::from_secs(3)),
        );
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::ETAG], etag_of(&body));
        assert_eq!(r.headers()[header::CONTENT_LENGTH], body.len().to_string());
        assert_eq!(r.headers()[header::AGE], "0");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "max-age=2");
        let mut req = HeaderMap::new();
        req.insert(header::IF_NONE_MATCH, etag_of(&body));
        let r = respond(
            &req,
            StatusCode::OK,
            &origin,
            body.clone(),
            etag_of(&body),
            None,
            None,
        );
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert!(r.headers().get(header::CONTENT_LENGTH).is_none());
        assert!(r.headers().get(header::CACHE_CONTROL).is_none());
    }
}
