//! Caching HLS at an edge, sans-IO: how long a response may be served without asking the
//! origin again ([`Policy`]), what the origin's `Cache-Control` allows ([`CacheControl`]),
//! the key a request is cached under ([`cache_query`]), and a byte-bounded LRU ([`Lru`])
//! whose clock is whatever the caller passes in.
//!
//! A live playlist changes every segment (every part, in LL-HLS), so it is kept for a
//! fraction of its target duration: a player polling it is never more than that late,
//! and a thousand players polling it cost the origin one request per period. Segments,
//! parts, init segments and keys do not change once published and are kept longer,
//! bounded by the memory budget.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::Duration;

use crate::query::is_param;

/// Longest `Cache-Control` value read. A longer one is taken as `no-store`: what it says
/// is not known, and keeping a response the origin meant to forbid is the worse mistake.
pub const MAX_CACHE_CONTROL_LEN: usize = 4096;

/// The directives of an origin's `Cache-Control` the edge acts on (RFC 9111 §5.2.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheControl {
    /// `no-store`: never kept.
    pub no_store: bool,
    /// `private`: for one user's cache, not a shared one such as an edge.
    pub private: bool,
    /// `no-cache`: every use must be revalidated; the edge does not keep it.
    pub no_cache: bool,
    /// `max-age`, in seconds.
    pub max_age: Option<Duration>,
    /// `s-maxage`, in seconds: overrides `max-age` for a shared cache.
    pub s_maxage: Option<Duration>,
}

impl CacheControl {
    /// Reads a `Cache-Control` value (several headers joined with `,`). Unknown directives
    /// are ignored; one over [`MAX_CACHE_CONTROL_LEN`] is `no-store`; a number too large saturates; a malformed `max-age` counts as 0, as
    /// RFC 9111 §4.2.1 asks (stale at once).
    pub fn parse(value: &str) -> Self {
        let mut cc = CacheControl::default();
        if value.len() > MAX_CACHE_CONTROL_LEN {
            cc.no_store = true;
            return cc;
        }
        for directive in value.split(',') {
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            let seconds = || {
                let digits = arg.unwrap_or("");
                let secs = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    digits.parse::<u64>().unwrap_or(u64::MAX)
                } else {
                    0
                };
                Duration::from_secs(secs.min(MAX_AGE_CAP.as_secs()))
            };
            if name.eq_ignore_ascii_case("no-store") {
                cc.no_store = true;
            } else if name.eq_ignore_ascii_case("private") {
                cc.private = true;
            } else if name.eq_ignore_ascii_case("no-cache") {
                cc.no_cache = true;
            } else if name.eq_ignore_ascii_case("max-age") {
                cc.max_age.get_or_insert_with(seconds);
            } else if name.eq_ignore_ascii_case("s-maxage") {
                cc.s_maxage.get_or_insert_with(seconds);
            }
        }
        cc
    }

    /// Whether a shared cache may keep the response at all.
    pub fn storable(&self) -> bool {
        !(self.no_store || self.private || self.no_cache)
    }

    /// The longest a shared cache may serve it without asking again, if the origin says.
    pub fn limit(&self) -> Option<Duration> {
        self.s_maxage.or(self.max_age)
    }
}

/// The largest age read from a header: larger values mean "a long time", and a clock
/// plus this cannot overflow.
const MAX_AGE_CAP: Duration = Duration::from_secs(365 * 24 * 3600);

/// What a playlist says about how fast it changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlaylistTiming {
    /// `#EXT-X-TARGETDURATION`.
    pub target_duration: Option<Duration>,
    /// `PART-TARGET` of `#EXT-X-PART-INF` (LL-HLS).
    pub part_target: Option<Duration>,
    /// `#EXT-X-ENDLIST`: the playlist will not change again.
    pub ended: bool,
}

impl PlaylistTiming {
    /// Reads the timing tags of a playlist's bytes. Never fails: a line that is not
    /// understood is skipped, and at most `crate::DEFAULT_MAX_SIZE` bytes are looked at.
    pub fn of(playlist: &[u8]) -> Self {
        let playlist = playlist.get(..crate::DEFAULT_MAX_SIZE).unwrap_or(playlist);
        let mut timing = PlaylistTiming::default();
        for line in playlist.split(|&b| b == b'\n') {
            let Ok(line) = std::str::from_utf8(line) else {
                continue;
            };
            let line = line.trim_end_matches('\r');
            if let Some(value) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                timing.target_duration = seconds(value);
            } else if let Some(attrs) = line.strip_prefix("#EXT-X-PART-INF:") {
                timing.part_target = attrs
                    .split(',')
                    .filter_map(|a| a.split_once('='))
                    .find(|(name, _)| name.trim() == "PART-TARGET")
                    .and_then(|(_, v)| seconds(v));
            } else if line.starts_with("#EXT-X-ENDLIST") {
                timing.ended = true;
            }
        }
        timing
    }
}

/// A decimal number of seconds (`6`, `0.33334`), above zero and at most a day.
fn seconds(value: &str) -> Option<Duration> {
    let s: f64 = value.trim().parse().ok()?;
    (s.is_finite() && s > 0.0).then(|| Duration::from_secs_f64(s.min(86_400.0)))
}

/// What a response is, to the cache policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// A playlist answering an ordinary request.
    Playlist(PlaylistTiming),
    /// A playlist answering an LL-HLS blocking reload (`_HLS_msn`, `_HLS_part`): it
    /// holds the part asked for, so it answers any later request for that part too.
    BlockingPlaylist(PlaylistTiming),
    /// A segment, part, init segment or key: immutable once published.
    Media,
}

/// How long the edge keeps each kind of response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A live playlist is kept for its part target (LL-HLS) or target duration divided
    /// by this (at least 1).
    pub playlist_divisor: u32,
    /// A playlist with no target duration: a master playlist, whose variant URIs (SRS's
    /// `hls_ctx` among them) must stay the same for every viewer for a while.
    pub master_ttl: Duration,
    /// Segments, parts, init segments, keys, and ended playlists.
    pub media_ttl: Duration,
    /// Nothing is kept for less: below it, caching saves nothing.
    pub min_ttl: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            playlist_divisor: 2,
            master_ttl: Duration::from_secs(30),
            media_ttl: Duration::from_secs(60),
            min_ttl: Duration::from_millis(50),
        }
    }
}

impl Policy {
    /// How long a successful response may be served from the cache; `None`: not kept
    /// (the origin forbids it, or its freshness is too short to matter). The origin's
    /// `max-age`/`s-maxage` bounds what the policy would give.
    pub fn freshness(&self, resource: Resource, cc: &CacheControl) -> Option<Duration> {
        if !cc.storable() {
            return None;
        }
        let divisor = self.playlist_divisor.max(1);
        let own = match resource {
            Resource::Playlist(t) if t.ended => self.media_ttl,
            Resource::Playlist(t) => match (t.part_target, t.target_duration) {
                (Some(part), _) => part / divisor,
                (None, Some(target)) => target / divisor,
                (None, None) => self.master_ttl,
            },
            Resource::BlockingPlaylist(t) => {
                t.target_duration.or(t.part_target).unwrap_or(self.min_ttl)
            }
            Resource::Media => self.media_ttl,
        };
        let ttl = match cc.limit() {
            Some(limit) => own.min(limit),
            None => own,
        };
        (ttl >= self.min_ttl).then_some(ttl)
    }
}

/// The query a request is cached (and coalesced) under: without the affinity token
/// `token_param`, and with SRS's per-client `hls_ctx` reduced to its name, since its value
/// names the viewer, not the content (but its presence does: SRS answers a playlist
/// request without it with a master playlist that hands one out). Components are sorted
/// so that players ordering `_HLS_msn` and `_HLS_part` differently share an entry.
///
/// ```
/// use hls_rewrite::cache::cache_query;
/// assert_eq!(
///     cache_query("_HLS_part=2&hls_ctx=a1&spbhid=k&_HLS_msn=9", "spbhid"),
///     "_HLS_msn=9&_HLS_part=2&hls_ctx"
/// );
/// ```
pub fn cache_query(query: &str, token_param: &str) -> String {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut kept: Vec<&str> = query
        .split('&')
        .filter(|c| !c.is_empty() && !is_param(c, token_param))
        .map(|c| if is_param(c, HLS_CTX) { HLS_CTX } else { c })
        .collect();
    kept.sort_unstable();
    kept.dedup_by(|a, b| *a == HLS_CTX && *b == HLS_CTX);
    kept.join("&")
}

/// `query` with the value of every `name` component set to `value`; every other byte
/// kept. An edge sends the origin one `hls_ctx` per stream, whichever viewer asks.
///
/// ```
/// use hls_rewrite::cache::set_param;
/// assert_eq!(set_param("a=1&hls_ctx=v9&b", "hls_ctx", "e1"), "a=1&hls_ctx=e1&b");
/// assert_eq!(set_param("a=1", "hls_ctx", "e1"), "a=1");
/// ```
pub fn set_param(query: &str, name: &str, value: &str) -> String {
    let query = query.strip_prefix('?').unwrap_or(query);
    query
        .split('&')
        .map(|c| {
            if is_param(c, name) {
                format!("{name}={value}")
            } else {
                c.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// SRS's per-client HLS session parameter.
pub const HLS_CTX: &str = "hls_ctx";

/// Why [`Lru::insert`] did not keep an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// It is larger than the per-entry cap.
    TooLarge,
}

/// A cache bounded by the sum of its entries' sizes: inserting evicts the least recently
/// used entries until the new one fits. Entries expire at a time the caller gives, on the
/// caller's clock (`now` is any monotonic duration, e.g. since start), which makes it
/// deterministic to test.
///
/// Lookups and inserts are O(log n).
#[derive(Debug)]
pub struct Lru<K, V> {
    budget: usize,
    entry_cap: usize,
    used: usize,
    tick: u64,
    map: HashMap<K, Slot<V>>,
    /// Recency: tick of last use → key; the first is the least recently used.
    order: BTreeMap<u64, K>,
}

#[derive(Debug)]
struct Slot<V> {
    value: V,
    size: usize,
    expires: Duration,
    tick: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> Lru<K, V> {
    /// An empty cache holding at most `budget` bytes, no entry above `entry_cap`
    /// (clamped to `budget`).
    pub fn new(budget: usize, entry_cap: usize) -> Self {
        Lru {
            budget,
            entry_cap: entry_cap.min(budget),
            used: 0,
            tick: 0,
            map: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    /// The entry under `key`, if it has not expired at `now`; it becomes the most recently
    /// used. An expired entry is dropped.
    pub fn get<Q>(&mut self, key: &Q, now: Duration) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = self.map.get_mut(key)?;
        if slot.expires <= now {
            let (size, tick) = (slot.size, slot.tick);
            self.map.remove(key);
            self.order.remove(&tick);
            self.used -= size;
            return None;
        }
        self.tick += 1;
        let old = std::mem::replace(&mut slot.tick, self.tick);
        let value = slot.value.clone();
        if let Some(k) = self.order.remove(&old) {
            self.order.insert(self.tick, k);
        }
        Some(value)
    }

    /// Keeps `value` (of `size` bytes) under `key` until `expires`, replacing any entry
    /// there, and evicts the least recently used entries until the budget holds.
    pub fn insert(
        &mut self,
        key: K,
        value: V,
        size: usize,
        expires: Duration,
    ) -> Result<(), Rejected> {
        if size > self.entry_cap {
            return Err(Rejected::TooLarge);
        }
        self.remove(&key);
        while self.used + size > self.budget {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(slot) = self.map.remove(&oldest) {
                self.used -= slot.size;
            }
        }
        self.tick += 1;
        self.order.insert(self.tick, key.clone());
        self.map.insert(
            key,
            Slot {
                value,
                size,
                expires,
                tick: self.tick,
            },
        );
        self.used += size;
        Ok(())
    }

    /// Drops the entry under `key`, if any.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = self.map.remove(key)?;
        self.order.remove(&slot.tick);
        self.used -= slot.size;
        Some(slot.value)
    }

    /// Bytes held.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Entries held (some may have expired and not been looked up since).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The byte budget.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// The largest entry kept.
    pub fn entry_cap(&self) -> usize {
        self.entry_cap
    }

    /// Whether the bookkeeping agrees with the entries (for the fuzz target and tests).
    pub(crate) fn consistent(&self) -> Result<(), String> {
        let sum: usize = self.map.values().map(|s| s.size).sum();
        if sum != self.used || self.used > self.budget {
            return Err(format!(
                "used {} of {}, entries hold {sum}",
                self.used, self.budget
            ));
        }
        if self.map.len() != self.order.len()
            || self
                .order
                .iter()
                .any(|(tick, k)| self.map.get(k).map(|s| s.tick) != Some(*tick))
        {
            return Err("recency order and entries disagree".into());
        }
        if self.map.values().any(|s| s.size > self.entry_cap) {
            return Err("an entry over the cap".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
