//! A [`Balancer`] for one proxy process: no dependencies, lowest latency.
//!
//! Origins, placements and sessions live in concurrent maps. Expired entries are swept
//! while the maps are used, so memory stays bounded by what is live within one TTL even if
//! nobody calls [`MemoryBalancer::sweep`].
//!
//! ```
//! # tokio_test();
//! # fn tokio_test() { tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use lb_core::{Balancer, BalancerConfig, PickIntent, Registration, StrategyKind, StreamKey};
//! use lb_memory::MemoryBalancer;
//!
//! let lb = MemoryBalancer::new(BalancerConfig::default(), StrategyKind::Random.build());
//! let body = br#"{"ip":"10.0.0.5","server":"a","service":"s","pid":"1","rtmp":["1935"]}"#;
//! lb.register(Registration::from_json(body).unwrap().into_origin().unwrap()).await.unwrap();
//! let key = StreamKey::new(None, "live", "cam").unwrap();
//! let origin = lb.pick(&key, PickIntent::Publish).await.unwrap();
//! assert_eq!(origin.rtmp[0].to_string(), "10.0.0.5:1935");
//! # }); }
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use lb_core::{
    choose_origin, is_alive, Balancer, BalancerConfig, Clock, Error, HlsSession, Origin, OriginId,
    OriginStatus, PickIntent, Placement, RtcSession, Strategy, StreamKey, SystemClock,
};

/// The in-process balancer.
pub struct MemoryBalancer {
    config: BalancerConfig,
    strategy: Box<dyn Strategy>,
    clock: Arc<dyn Clock>,
    epoch: Instant,
    origins: DashMap<OriginId, OriginEntry>,
    placements: DashMap<StreamKey, Timed<OriginId>>,
    /// Placements per origin, kept in step with `placements` (always updated while the
    /// placement's entry is locked, so the two never disagree for long).
    counts: DashMap<OriginId, usize>,
    hls: DashMap<String, Timed<HlsSession>>,
    rtc: DashMap<String, Timed<RtcSession>>,
    /// Milliseconds since `epoch` of the last sweep.
    last_sweep_ms: AtomicU64,
}

struct OriginEntry {
    origin: Origin,
    last_seen: Instant,
    draining: bool,
}

struct Timed<T> {
    value: T,
    last_used: Instant,
}

impl MemoryBalancer {
    /// A balancer on the system clock.
    pub fn new(config: BalancerConfig, strategy: Box<dyn Strategy>) -> Self {
        Self::with_clock(config, strategy, Arc::new(SystemClock))
    }

    /// A balancer on a given clock (tests use [`lb_core::ManualClock`]).
    pub fn with_clock(
        config: BalancerConfig,
        strategy: Box<dyn Strategy>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let epoch = clock.now();
        MemoryBalancer {
            config,
            strategy,
            clock,
            epoch,
            origins: DashMap::new(),
            placements: DashMap::new(),
            counts: DashMap::new(),
            hls: DashMap::new(),
            rtc: DashMap::new(),
            last_sweep_ms: AtomicU64::new(0),
        }
    }

    /// Drops expired sessions and placements, and origins dead for a further TTL.
    pub fn sweep(&self) {
        let now = self.clock.now();
        let cfg = self.config;
        self.hls
            .retain(|_, s| now.duration_since(s.last_used) < cfg.session_ttl);
        self.rtc
            .retain(|_, s| now.duration_since(s.last_used) < cfg.session_ttl);
        self.origins.retain(|_, o| {
            is_alive(
                o.origin.source,
                now.duration_since(o.last_seen),
                cfg.origin_ttl * 2,
            )
        });
        // Never hold one map's lock while taking another's: collect first.
        let known: HashSet<OriginId> = self.origins.iter().map(|o| o.key().clone()).collect();
        self.placements.retain(|_, p| {
            let keep =
                now.duration_since(p.last_used) < cfg.placement_ttl && known.contains(&p.value);
            if !keep {
                self.count(&p.value, -1);
            }
            keep
        });
        self.counts.retain(|id, n| *n > 0 && known.contains(id));
    }

    fn count(&self, origin: &OriginId, delta: isize) {
        let mut n = self.counts.entry(origin.clone()).or_insert(0);
        *n = n.saturating_add_signed(delta);
    }

    /// The number of entries held: (origins, placements, HLS sessions, WebRTC sessions).
    pub fn sizes(&self) -> (usize, usize, usize, usize) {
        (
            self.origins.len(),
            self.placements.len(),
            self.hls.len(),
            self.rtc.len(),
        )
    }

    /// Sweeps at most once per half of the shortest TTL, from whatever call comes by.
    fn sweep_if_due(&self) {
        let now_ms = self.millis_since_epoch();
        let period = (self.config.session_ttl.min(self.config.origin_ttl) / 2).as_millis() as u64;
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) >= period.max(1)
            && self
                .last_sweep_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.sweep();
        }
    }

    fn millis_since_epoch(&self) -> u64 {
        self.clock.now().duration_since(self.epoch).as_millis() as u64
    }

    fn status(&self, entry: &OriginEntry, streams: usize, now: Instant) -> OriginStatus {
        let since = now.duration_since(entry.last_seen);
        OriginStatus {
            origin: entry.origin.clone(),
            alive: is_alive(entry.origin.source, since, self.config.origin_ttl),
            draining: entry.draining,
            since_heartbeat: since,
            streams,
            down: None,
            connections: 0,
        }
    }

    fn statuses(&self) -> Vec<OriginStatus> {
        let counts: HashMap<OriginId, usize> = self
            .counts
            .iter()
            .map(|c| (c.key().clone(), *c.value()))
            .collect();
        let now = self.clock.now();
        let mut all: Vec<OriginStatus> = self
            .origins
            .iter()
            .map(|e| self.status(&e, counts.get(e.key()).copied().unwrap_or(0), now))
            .collect();
        all.sort_by(|a, b| a.origin.id.cmp(&b.origin.id));
        all
    }

    /// The origin of an existing placement, if it keeps the stream for this intent.
    fn keeping_origin(&self, id: &OriginId, intent: PickIntent) -> Option<Origin> {
        let entry = self.origins.get(id)?;
        let alive = is_alive(
            entry.origin.source,
            self.clock.now().duration_since(entry.last_seen),
            self.config.origin_ttl,
        );
        intent
            .keeps(alive, entry.draining)
            .then(|| entry.origin.clone())
    }

    fn touch_session<T: Clone>(&self, map: &DashMap<String, Timed<T>>, id: &str) -> Option<T> {
        let now = self.clock.now();
        let mut entry = map.get_mut(id)?;
        if now.duration_since(entry.last_used) >= self.config.session_ttl {
            drop(entry);
            map.remove(id);
            return None;
        }
        entry.last_used = now;
        Some(entry.value.clone())
    }
}

#[async_trait]
impl Balancer for MemoryBalancer {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn register(&self, origin: Origin) -> Result<(), Error> {
        self.sweep_if_due();
        let now = self.clock.now();
        // The same server under a new service/pid is a restart: the old process is gone.
        self.origins
            .retain(|id, e| *id == origin.id || e.origin.server != origin.server);
        match self.origins.entry(origin.id.clone()) {
            Entry::Occupied(mut e) => {
                let entry = e.get_mut();
                entry.origin = origin;
                entry.last_seen = now;
            }
            Entry::Vacant(e) => {
                e.insert(OriginEntry {
                    origin,
                    last_seen: now,
                    draining: false,
                });
            }
        }
        Ok(())
    }

    async fn origin(&self, id: &OriginId) -> Result<Option<OriginStatus>, Error> {
        Ok(self.statuses().into_iter().find(|s| &s.origin.id == id))
    }

    async fn origins(&self) -> Result<Vec<OriginStatus>, Error> {
        Ok(self.statuses())
    }

    async fn set_draining(&self, id: &OriginId, draining: bool) -> Result<(), Error> {
        let mut entry = self
            .origins
            .get_mut(id)
            .ok_or_else(|| Error::UnknownOrigin(id.clone()))?;
        entry.draining = draining;
        Ok(())
    }

    async fn pick(&self, key: &StreamKey, intent: PickIntent) -> Result<Origin, Error> {
        self.sweep_if_due();
        // Fast path: the stream is placed and its origin keeps it.
        let placed = self.placements.get(key).map(|p| p.value.clone());
        if let Some(origin) = placed.and_then(|id| self.keeping_origin(&id, intent)) {
            self.touch(std::slice::from_ref(key)).await?;
            return Ok(origin);
        }
        let statuses = self.statuses();
        let now = self.clock.now();
        // The entry lock makes check-then-place atomic for concurrent picks of one stream;
        // the check is repeated because another pick may have placed it meanwhile.
        let mut entry = self.placements.entry(key.clone());
        if let Entry::Occupied(placed) = &mut entry {
            let current = statuses.iter().find(|s| s.origin.id == placed.get().value);
            if let Some(status) = current.filter(|s| s.keeps_placement(intent)) {
                placed.get_mut().last_used = now;
                return Ok(status.origin.clone());
            }
        }
        let chosen = choose_origin(self.strategy.as_ref(), key, &statuses)?;
        if let Entry::Occupied(previous) = &entry {
            self.count(&previous.get().value, -1);
        }
        self.count(&chosen.id, 1);
        entry.insert(Timed {
            value: chosen.id.clone(),
            last_used: now,
        });
        Ok(chosen.clone())
    }

    async fn touch(&self, keys: &[StreamKey]) -> Result<(), Error> {
        let now = self.clock.now();
        for key in keys {
            if let Some(mut p) = self.placements.get_mut(key) {
                p.last_used = now;
            }
        }
        Ok(())
    }

    async fn placements(&self) -> Result<Vec<Placement>, Error> {
        let now = self.clock.now();
        let ttl = self.config.placement_ttl;
        let mut all: Vec<Placement> = self
            .placements
            .iter()
            .filter(|p| now.duration_since(p.last_used) < ttl)
            .map(|p| Placement {
                key: p.key().clone(),
                origin: p.value.clone(),
            })
            .collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(all)
    }

    async fn put_hls(&self, token: &str, session: &HlsSession) -> Result<(), Error> {
        self.sweep_if_due();
        self.hls.insert(
            token.to_owned(),
            Timed {
                value: session.clone(),
                last_used: self.clock.now(),
            },
        );
        Ok(())
    }

    async fn hls(&self, token: &str) -> Result<Option<HlsSession>, Error> {
        Ok(self.touch_session(&self.hls, token))
    }

    async fn put_rtc(&self, server_ufrag: &str, session: &RtcSession) -> Result<(), Error> {
        self.sweep_if_due();
        self.rtc.insert(
            server_ufrag.to_owned(),
            Timed {
                value: session.clone(),
                last_used: self.clock.now(),
            },
        );
        Ok(())
    }

    async fn rtc(&self, server_ufrag: &str) -> Result<Option<RtcSession>, Error> {
        Ok(self.touch_session(&self.rtc, server_ufrag))
    }

    async fn remove_rtc(&self, server_ufrag: &str) -> Result<(), Error> {
        self.rtc.remove(server_ufrag);
        Ok(())
    }
}

impl std::fmt::Debug for MemoryBalancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBalancer")
            .field("strategy", &self.strategy.name())
            .field("origins", &self.origins.len())
            .field("placements", &self.placements.len())
            .field("hls_sessions", &self.hls.len())
            .field("rtc_sessions", &self.rtc.len())
            .finish()
    }
}

#[cfg(test)]
mod tests;
