//! The balancer contract, and the placement rules every implementation shares.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Candidate, Error, Origin, OriginId, OriginSource, Strategy, StreamKey};

/// Why a stream is being picked: a publisher moves off a draining origin, a player
/// follows the stream to wherever it is still live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickIntent {
    /// The client sends the stream (RTMP publish, WHIP, SRT `m=publish`).
    Publish,
    /// The client receives the stream (RTMP play, HTTP-FLV/TS, HLS, WHEP, SRT `m=request`).
    Play,
}

impl PickIntent {
    /// Whether a stream placed on an origin that is (or is not) alive and draining stays
    /// there for a request of this intent: a dead origin loses its streams; a draining one
    /// keeps its players but not its publishers.
    pub fn keeps(self, alive: bool, draining: bool) -> bool {
        alive && (!draining || self == PickIntent::Play)
    }
}

/// Timings shared by every balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalancerConfig {
    /// A registered origin is alive while its last heartbeat is younger than this
    /// (SRS's proxy: 300 s).
    pub origin_ttl: Duration,
    /// HLS and WebRTC sessions expire after this long without use (SRS's proxy: 120 s).
    pub session_ttl: Duration,
    /// A *firm* placement confirmed by a live publisher ([`Balancer::touch`]) is
    /// forgotten after this long without a pick or a touch; the proxy touches the
    /// placements of its live sessions well within it. Until a live publisher confirms
    /// it, a placement lives only [`BalancerConfig::tentative_ttl`] (never longer than
    /// this), so one whose publisher the origin refused holds its slot only that long.
    pub placement_ttl: Duration,
    /// A *tentative* placement (made by a play of a stream nobody was known to publish) is
    /// forgotten after this long without a play pick or a touch from a live session, or at
    /// once by [`Balancer::release`] when the origin had no such stream. Tentative
    /// placements reserve no capacity: they are not counted in [`OriginStatus::streams`],
    /// so plays of streams that do not exist cannot fill `max_streams`. Default 30 s.
    pub tentative_ttl: Duration,
}

impl Default for BalancerConfig {
    fn default() -> Self {
        BalancerConfig {
            origin_ttl: Duration::from_secs(300),
            session_ttl: Duration::from_secs(120),
            placement_ttl: Duration::from_secs(3600),
            tentative_ttl: Duration::from_secs(30),
        }
    }
}

/// An origin as the balancer sees it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OriginStatus {
    /// The origin.
    pub origin: Origin,
    /// Its heartbeat is fresh (registered) or it is configured (static), and no
    /// [`Balancer::mark_down`] holds it down ([`is_alive_and_up`]).
    pub alive: bool,
    /// It takes no new streams.
    pub draining: bool,
    /// Time since its last heartbeat or registration.
    pub since_heartbeat: Duration,
    /// Streams placed on it firmly (published through the balancer, or kept by a live
    /// publisher); tentative placements of plays do not count.
    pub streams: usize,
    /// Why the proxies hold it down (failing probes, a failed connect), while they do:
    /// `alive` is false meanwhile, whatever its heartbeat says.
    pub down: Option<String>,
    /// Client sessions relayed to it, summed over the proxies' latest reports
    /// ([`Balancer::report_connections`]).
    pub connections: u64,
}

impl OriginStatus {
    /// Whether a new stream may be placed here.
    pub fn accepts_new_streams(&self) -> bool {
        self.alive
            && !self.draining
            && self
                .origin
                .max_streams
                .is_none_or(|max| self.streams < max as usize)
            && self
                .origin
                .max_connections
                .is_none_or(|max| self.connections < u64::from(max))
    }

    /// Whether a stream already placed here should stay for a request of this intent: a
    /// dead origin loses its streams; a draining one keeps its players but not publishers.
    pub fn keeps_placement(&self, intent: PickIntent) -> bool {
        intent.keeps(self.alive, self.draining)
    }
}

/// A stream and the origin that holds it (as [`Balancer::placements`] lists them: firm
/// placements only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The stream.
    pub key: StreamKey,
    /// Its origin.
    pub origin: OriginId,
}

/// A stream with live sessions on this proxy, as [`Balancer::touch`] receives it: what the
/// proxy itself knows of where the stream lives, so a balancer that lost its state (a Redis
/// restart without persistence) can put the placement back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LiveStream {
    /// The stream.
    pub key: StreamKey,
    /// The origin the proxy's live sessions of the stream are relayed to.
    pub origin: OriginId,
    /// Whether one of those sessions publishes the stream (then the placement is firm).
    pub publishing: bool,
}

/// What an HLS affinity token stands for: segment requests carrying it go to this origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HlsSession {
    /// The stream whose playlist issued the token.
    pub key: StreamKey,
    /// The origin that served the playlist.
    pub origin: OriginId,
}

/// A WebRTC session, found by the server's ICE ufrag when the client's STUN checks arrive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtcSession {
    /// The stream.
    pub key: StreamKey,
    /// The origin that answered the offer.
    pub origin: OriginId,
    /// The origin's `a=ice-ufrag` (the first half of the STUN USERNAME).
    pub server_ufrag: String,
    /// The client's `a=ice-ufrag` (the second half).
    pub client_ufrag: String,
    /// The origin's `a=ice-pwd`, which keys MESSAGE-INTEGRITY of the client's checks.
    pub server_pwd: String,
    /// Where the origin receives this session's media (`ip:port`), when the signalling
    /// proxy knew it: an origin that gives each session its own port can then be relayed
    /// by any proxy of the fleet. Absent in records written by older proxies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<String>,
    /// Whether the client publishes (WHIP) rather than plays (WHEP), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publishing: Option<bool>,
    /// The client's `a=ice-pwd` (from the offer): any proxy keys its own consent checks
    /// (RFC 7675) with it before it sends media to a client address. Absent in records
    /// written by older proxies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_pwd: Option<String>,
    /// The origin's resource for the session (its `Location`, as a path and query on its
    /// API): the only target a client's DELETE or PATCH is forwarded to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Hex SHA-256 of the secret in the resource URL the proxy gave the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_secret: Option<String>,
}

/// The strategy a balancer places with, swappable while it runs
/// ([`Balancer::set_strategy`]). A pick holds its own reference, so a swap never waits on
/// one, nor changes a choice half made.
pub struct StrategySlot(RwLock<Arc<dyn Strategy>>);

impl StrategySlot {
    /// A slot holding `strategy`.
    pub fn new(strategy: Box<dyn Strategy>) -> Self {
        StrategySlot(RwLock::new(Arc::from(strategy)))
    }

    /// The strategy now.
    pub fn get(&self) -> Arc<dyn Strategy> {
        // A poisoned lock still holds a whole `Arc`: writers only replace it.
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the strategy.
    pub fn set(&self, strategy: Box<dyn Strategy>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::from(strategy);
    }
}

impl std::fmt::Debug for StrategySlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.get().name())
    }
}

/// A load balancer for the media proxy: it knows the origins, places every stream on one
/// of them, and keeps the session state the protocols need. Implementations: `lb-memory`
/// (one process), `lb-redis` (a fleet of proxies); the binary holds an `Arc<dyn Balancer>`.
#[async_trait]
pub trait Balancer: Send + Sync + 'static {
    /// A short name for logs (`memory`, `redis`).
    fn name(&self) -> &'static str;

    /// The name of the strategy placing new streams (empty if the balancer does not say).
    fn strategy_name(&self) -> &'static str {
        ""
    }

    /// Places new streams with `strategy` from now on (a configuration reload); streams
    /// already placed stay where they are. The default refuses: a balancer that cannot
    /// swap its strategy says so rather than keep the old one silently.
    fn set_strategy(&self, strategy: Box<dyn Strategy>) -> Result<(), Error> {
        Err(Error::InvalidInput(format!(
            "the {} balancer cannot change its strategy ({}) while running",
            self.name(),
            strategy.name()
        )))
    }

    /// Adds an origin or renews its heartbeat. A registration from the same `server` with a
    /// new `service`/`pid` (a restart) replaces the old process at once.
    async fn register(&self, origin: Origin) -> Result<(), Error>;

    /// One origin's status.
    async fn origin(&self, id: &OriginId) -> Result<Option<OriginStatus>, Error>;

    /// Every known origin's status, alive or not.
    async fn origins(&self) -> Result<Vec<OriginStatus>, Error>;

    /// Stops (or resumes) new placements on an origin; its live sessions go on.
    async fn set_draining(&self, id: &OriginId, draining: bool) -> Result<(), Error>;

    /// Forgets an origin (taken out of the configuration): it takes no new stream, and its
    /// streams move at their next pick, as from a dead origin; live sessions go on. An
    /// unknown origin is no error. The default refuses, for balancers shared with proxies
    /// that may still list the origin; the caller drains it instead.
    async fn remove_origin(&self, id: &OriginId) -> Result<(), Error> {
        Err(Error::InvalidInput(format!(
            "the {} balancer does not remove origins ({id})",
            self.name()
        )))
    }

    /// The origin for a stream: where it is placed, if that origin keeps it, or else a new
    /// placement chosen by the strategy, agreed atomically with every other proxy sharing
    /// this balancer.
    ///
    /// A placement is *firm* or *tentative*:
    ///
    /// - A [`PickIntent::Publish`] pick makes a firm placement: it counts in
    ///   [`OriginStatus::streams`] at once (hence in `max_streams` and least-streams), and
    ///   lasts [`BalancerConfig::tentative_ttl`] until a [`Balancer::touch`] naming a live
    ///   publisher confirms it (the origin accepted the publisher), then
    ///   [`BalancerConfig::placement_ttl`]. A publish that finds a tentative placement its
    ///   origin keeps makes it firm there.
    /// - A [`PickIntent::Play`] pick of a stream without a placement chooses the origin
    ///   alike, but the placement is tentative: it lasts only
    ///   [`BalancerConfig::tentative_ttl`] and counts nowhere, so that plays of streams
    ///   that do not exist take no capacity and leave no lasting state. A play that finds a
    ///   placement keeps it and renews it for its own kind's TTL.
    async fn pick(&self, key: &StreamKey, intent: PickIntent) -> Result<Origin, Error>;

    /// Renews the placements of streams with live sessions on this proxy, and puts back the
    /// ones the balancer lost. For each [`LiveStream`]:
    ///
    /// - a placement naming `origin` is renewed: a firm one for
    ///   [`BalancerConfig::placement_ttl`] once confirmed (a `publishing` entry confirms
    ///   it), a tentative one for [`BalancerConfig::tentative_ttl`], or made firm and
    ///   confirmed if `publishing`;
    /// - a missing placement is created naming `origin` (firm if `publishing`, tentative
    ///   otherwise), only if none exists (set-if-absent, atomic with other proxies): a
    ///   shared store that restarted empty does not split a live stream;
    /// - a placement naming another origin is left alone.
    async fn touch(&self, live: &[LiveStream]) -> Result<(), Error>;

    /// Forgets a placement that a play just made in vain: the origin answered that it has
    /// no such stream (404, refused). The placement of `key` is removed if, and only if, it
    /// is still tentative and still names `origin` (one atomic compare-and-delete); a firm
    /// placement, or one on another origin, is never removed.
    ///
    /// The default does nothing, for balancers that store no placements.
    async fn release(&self, key: &StreamKey, origin: &OriginId) -> Result<(), Error> {
        let _ = (key, origin);
        Ok(())
    }

    /// The firm placements (tentative ones are not listed), at most
    /// [`MAX_LISTED_PLACEMENTS`]: a huge number of streams cannot make one call stall the
    /// balancer's store. When there are more, which ones are listed is unspecified.
    async fn placements(&self) -> Result<Vec<Placement>, Error>;

    /// Stores an HLS affinity token.
    async fn put_hls(&self, token: &str, session: &HlsSession) -> Result<(), Error>;

    /// Resolves an HLS affinity token, renewing it.
    async fn hls(&self, token: &str) -> Result<Option<HlsSession>, Error>;

    /// Stores a WebRTC session under the origin's ufrag.
    async fn put_rtc(&self, server_ufrag: &str, session: &RtcSession) -> Result<(), Error>;

    /// Finds a WebRTC session by the origin's ufrag, renewing it.
    async fn rtc(&self, server_ufrag: &str) -> Result<Option<RtcSession>, Error>;

    /// Forgets a WebRTC session (the client sent DELETE).
    async fn remove_rtc(&self, server_ufrag: &str) -> Result<(), Error>;

    /// Holds an origin down for `duration`: its probes fail, or a connect to it just
    /// failed. Meanwhile it is not alive: it takes no new stream, and its streams move at
    /// their next pick. The mark ends when `duration` passes or [`Balancer::mark_up`]
    /// clears it; a proxy that keeps seeing failures renews it.
    ///
    /// A later mark replaces an earlier one (reason and end alike). An unknown origin is
    /// [`Error::UnknownOrigin`]; a reason longer than [`MAX_REASON_LEN`] is cut, an empty
    /// one reads `down` ([`clip_reason`]).
    ///
    /// The default ignores health, for balancers that only trust heartbeats.
    async fn mark_down(
        &self,
        id: &OriginId,
        reason: &str,
        duration: Duration,
    ) -> Result<(), Error> {
        let _ = (id, reason, duration);
        Ok(())
    }

    /// Clears a [`Balancer::mark_down`]: the origin's probes pass again. An unknown origin
    /// is [`Error::UnknownOrigin`].
    async fn mark_up(&self, id: &OriginId) -> Result<(), Error> {
        let _ = id;
        Ok(())
    }

    /// The origins as this balancer last read them from its shared state, however old,
    /// for a caller that must place new streams while that state cannot be reached (the
    /// proxy then places them by rendezvous over these, so every proxy of the fleet places
    /// alike). `None`: the balancer has no shared state to lose (the default), or has never
    /// read it.
    fn last_known_origins(&self) -> Option<Vec<OriginStatus>> {
        None
    }

    /// Records how many client sessions the proxy `proxy` relays to each origin now,
    /// replacing its previous report; a report older than `ttl` no longer counts. The
    /// sums are [`OriginStatus::connections`], which `max_connections` limits.
    ///
    /// `proxy` is at most [`MAX_PROXY_ID_LEN`] bytes and a report names at most
    /// [`MAX_REPORT_ENTRIES`] origins ([`Error::InvalidInput`] otherwise); see
    /// [`check_report`].
    ///
    /// The default ignores reports: connections then count as zero.
    async fn report_connections(
        &self,
        proxy: &str,
        counts: &[(OriginId, u64)],
        ttl: Duration,
    ) -> Result<(), Error> {
        let _ = (proxy, counts, ttl);
        Ok(())
    }
}

/// Most placements one [`Balancer::placements`] call returns (and, in a shared store, most
/// entries one call examines).
pub const MAX_LISTED_PLACEMENTS: usize = 10_000;
/// Longest proxy id accepted by [`Balancer::report_connections`], in bytes.
pub const MAX_PROXY_ID_LEN: usize = 128;
/// Most origins one connection report may name.
pub const MAX_REPORT_ENTRIES: usize = 1024;
/// Largest count one report may give for one origin; a report is a count of live sessions,
/// so anything above is a bug upstream, clamped rather than summed into an overflow.
pub const MAX_REPORTED_CONNECTIONS: u64 = 1_000_000_000;
/// Longest reason kept by [`Balancer::mark_down`], in bytes; longer ones are cut.
pub const MAX_REASON_LEN: usize = 256;

/// Whether an origin is alive **by its heartbeat alone**: static origins always are,
/// registered ones while their last heartbeat is younger than `ttl`. A balancer also holds
/// an origin down while a [`Balancer::mark_down`] lasts: see [`is_alive_and_up`], which is
/// what [`OriginStatus::alive`] reports. This one decides how long a dead origin stays
/// listed (a mark does not make a balancer forget an origin).
pub fn is_alive(source: OriginSource, since_heartbeat: Duration, ttl: Duration) -> bool {
    source == OriginSource::Static || since_heartbeat < ttl
}

/// Whether an origin is alive as [`OriginStatus::alive`] says it: alive by heartbeat
/// ([`is_alive`]) and not held down by a current [`Balancer::mark_down`].
pub fn is_alive_and_up(
    source: OriginSource,
    since_heartbeat: Duration,
    ttl: Duration,
    marked_down: bool,
) -> bool {
    !marked_down && is_alive(source, since_heartbeat, ttl)
}

/// A [`Balancer::mark_down`] reason as balancers store it: cut to at most
/// [`MAX_REASON_LEN`] bytes on a character boundary, and `down` when empty (an empty reason
/// would read as "not down").
pub fn clip_reason(reason: &str) -> &str {
    if reason.is_empty() {
        return "down";
    }
    let mut end = reason.len().min(MAX_REASON_LEN);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Checks a connection report's bounds (proxy id length, entry count) and merges it into
/// one count per origin (repeated origins add up; counts are clamped to
/// [`MAX_REPORTED_CONNECTIONS`]), as every balancer stores it.
pub fn check_report(
    proxy: &str,
    counts: &[(OriginId, u64)],
) -> Result<Vec<(OriginId, u64)>, Error> {
    if proxy.is_empty() || proxy.len() > MAX_PROXY_ID_LEN || proxy.chars().any(char::is_control) {
        return Err(Error::InvalidInput(format!(
            "a proxy id must be 1 to {MAX_PROXY_ID_LEN} printable bytes"
        )));
    }
    if counts.len() > MAX_REPORT_ENTRIES {
        return Err(Error::InvalidInput(format!(
            "a connection report names {} origins, more than {MAX_REPORT_ENTRIES}",
            counts.len()
        )));
    }
    let mut merged: HashMap<&OriginId, u64> = HashMap::with_capacity(counts.len());
    for (id, n) in counts {
        let total = merged.entry(id).or_insert(0);
        *total = (*total + (*n).min(MAX_REPORTED_CONNECTIONS)).min(MAX_REPORTED_CONNECTIONS);
    }
    let mut merged: Vec<(OriginId, u64)> = merged
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(id, n)| (id.clone(), n))
        .collect();
    merged.sort();
    Ok(merged)
}

/// Chooses an origin for a stream among `statuses` with `strategy`, or says why none can
/// take it. Shared by every balancer so that they place alike.
pub fn choose_origin<'a>(
    strategy: &dyn Strategy,
    key: &StreamKey,
    statuses: &'a [OriginStatus],
) -> Result<&'a Origin, Error> {
    let candidates: Vec<Candidate<'_>> = statuses
        .iter()
        .filter(|s| s.accepts_new_streams())
        .map(|s| Candidate {
            origin: &s.origin,
            streams: s.streams,
            connections: s.connections,
        })
        .collect();
    if candidates.is_empty() {
        return Err(Error::NoOrigin {
            registered: statuses.len(),
            alive: statuses.iter().filter(|s| s.alive).count(),
            accepting: 0,
        });
    }
    let index = strategy.choose(key, &candidates).min(candidates.len() - 1);
    Ok(candidates[index].origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_bounded_and_merged() {
        let (a, b) = (OriginId::new("a"), OriginId::new("b"));
        let merged = check_report(
            "proxy-1",
            &[
                (b.clone(), 2),
                (a.clone(), 1),
                (b.clone(), 3),
                (a.clone(), 0),
                (OriginId::new("c"), 0),
                (OriginId::new("d"), u64::MAX),
            ],
        )
        .unwrap();
        assert_eq!(
            merged,
            [
                (a, 1),
                (b, 5),
                (OriginId::new("d"), MAX_REPORTED_CONNECTIONS)
            ]
        );
        for bad in ["", "a\nb", &"p".repeat(MAX_PROXY_ID_LEN + 1)] {
            assert!(matches!(
                check_report(bad, &[]),
                Err(Error::InvalidInput(_))
            ));
        }
        let many: Vec<(OriginId, u64)> = (0..=MAX_REPORT_ENTRIES)
            .map(|n| (OriginId::new(n.to_string()), 1))
            .collect();
        assert!(check_report("p", &many).is_err());
        assert!(check_report("p", &many[1..]).is_ok());
    }

    #[test]
    fn reasons_are_cut_on_a_character_boundary() {
        assert_eq!(clip_reason("short"), "short");
        assert_eq!(clip_reason(""), "down");
        let long = "é".repeat(MAX_REASON_LEN);
        let cut = clip_reason(&long);
        assert!(cut.len() <= MAX_REASON_LEN && cut.len() >= MAX_REASON_LEN - 1);
        assert!(!is_alive_and_up(
            OriginSource::Static,
            Duration::ZERO,
            Duration::ZERO,
            true
        ));
        assert!(is_alive_and_up(
            OriginSource::Static,
            Duration::MAX,
            Duration::ZERO,
            false
        ));
    }
}
