#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use lb_core::{
    check_report, choose_origin, clip_reason, is_alive, is_alive_and_up, Balancer, BalancerConfig,
    Clock, Error, HlsSession, LiveStream, Origin, OriginId, OriginStatus, PickIntent, Placement,
    RtcSession, Strategy, StreamKey, SystemClock, MAX_LISTED_PLACEMENTS,
};

/// The in-process balancer.
pub struct MemoryBalancer {
    config: BalancerConfig,
    strategy: lb_core::StrategySlot,
    clock: Arc<dyn Clock>,
    epoch: Instant,
    origins: DashMap<OriginId, OriginEntry>,
    placements: DashMap<StreamKey, Placed>,
    /// Firm placements per origin, kept in step with `placements` (always updated while the
    /// placement's entry is locked, so the two never disagree for long). An expired firm
    /// placement counts until it is swept or replaced.
    counts: DashMap<OriginId, usize>,
    hls: DashMap<String, Timed<HlsSession>>,
    rtc: DashMap<String, Timed<RtcSession>>,
    /// Each proxy's latest connection report (one entry for this process, in practice).
    reports: DashMap<String, Report>,
    /// Milliseconds since `epoch` of the last sweep.
    last_sweep_ms: AtomicU64,
}

struct OriginEntry {
    origin: Origin,
    last_seen: Instant,
    draining: bool,
    /// A [`Balancer::mark_down`]: its reason and when it ends.
    down: Option<(String, Instant)>,
}

impl OriginEntry {
    fn down_at(&self, now: Instant) -> Option<&str> {
        self.down
            .as_ref()
            .filter(|(_, until)| now < *until)
            .map(|(reason, _)| reason.as_str())
    }
}

struct Report {
    counts: Vec<(OriginId, u64)>,
    until: Instant,
}

struct Timed<T> {
    value: T,
    last_used: Instant,
}

/// A stream's placement.
struct Placed {
    origin: OriginId,
    last_used: Instant,
    /// Counted in `counts` (a publisher placed it); otherwise tentative, counted nowhere.
    firm: bool,
    /// A live publisher was seen on it ([`Balancer::touch`]): kept for `placement_ttl`.
    /// Until then every placement lives `tentative_ttl`, so one whose publisher the origin
    /// refused holds its slot only that long.
    confirmed: bool,
}

impl Placed {
    fn live_at(&self, now: Instant, config: &BalancerConfig) -> bool {
        // Never longer than a confirmed placement's.
        let ttl = if self.firm && self.confirmed {
            config.placement_ttl
        } else {
            config.tentative_ttl.min(config.placement_ttl)
        };
        now.duration_since(self.last_used) < ttl
    }
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
            strategy: lb_core::StrategySlot::new(strategy),
            clock,
            epoch,
            origins: DashMap::new(),
            placements: DashMap::new(),
            counts: DashMap::new(),
            hls: DashMap::new(),
            rtc: DashMap::new(),
            reports: DashMap::new(),
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
        self.reports.retain(|_, r| now < r.until);
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
            let keep = p.live_at(now, &cfg) && known.contains(&p.origin);
            if !keep && p.firm {
                self.count(&p.origin, -1);
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
        let shortest = self
            .config
            .session_ttl
            .min(self.config.origin_ttl)
            .min(self.config.tentative_ttl);
        let period = (shortest / 2).as_millis() as u64;
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

    fn status(
        &self,
        entry: &OriginEntry,
        streams: usize,
        connections: u64,
        now: Instant,
    ) -> OriginStatus {
        let since = now.duration_since(entry.last_seen);
        let down = entry.down_at(now);
        OriginStatus {
            origin: entry.origin.clone(),
            alive: is_alive_and_up(
                entry.origin.source,
                since,
                self.config.origin_ttl,
                down.is_some(),
            ),
            draining: entry.draining,
            since_heartbeat: since,
            streams,
            down: down.map(str::to_owned),
            connections,
        }
    }

    /// Connections per origin, summed over the reports still current.
    fn connections(&self, now: Instant) -> HashMap<OriginId, u64> {
        let mut sums: HashMap<OriginId, u64> = HashMap::new();
        for report in self.reports.iter().filter(|r| now < r.until) {
            for (id, n) in &report.counts {
                *sums.entry(id.clone()).or_insert(0) += n;
            }
        }
        sums
    }

    fn statuses(&self) -> Vec<OriginStatus> {
        let counts: HashMap<OriginId, usize> = self
            .counts
            .iter()
            .map(|c| (c.key().clone(), *c.value()))
            .collect();
        let now = self.clock.now();
        let connections = self.connections(now);
        let mut all: Vec<OriginStatus> = self
            .origins
            .iter()
            .map(|e| {
                let streams = counts.get(e.key()).copied().unwrap_or(0);
                let conns = connections.get(e.key()).copied().unwrap_or(0);
                self.status(&e, streams, conns, now)
            })
            .collect();
        all.sort_by(|a, b| a.origin.id.cmp(&b.origin.id));
        all
    }

    /// The origin of an existing placement, if it keeps the stream for this intent.
    fn keeping_origin(&self, id: &OriginId, intent: PickIntent) -> Option<Origin> {
        let entry = self.origins.get(id)?;
        let now = self.clock.now();
        let alive = is_alive_and_up(
            entry.origin.source,
            now.duration_since(entry.last_seen),
            self.config.origin_ttl,
            entry.down_at(now).is_some(),
        );
        intent
            .keeps(alive, entry.draining)
            .then(|| entry.origin.clone())
    }

    /// [`Balancer::pick`], and its outcome for `proxy_picks_total`.
    async fn pick_counted(
        &self,
        key: &StreamKey,
        intent: PickIntent,
    ) -> (Result<Origin, Error>, &'static str) {
        self.sweep_if_due();
        let now = self.clock.now();
        // Fast path: the stream is placed, its origin keeps it, and the pick does not make
        // it firm (which must count under the entry lock).
        let placed = self
            .placements
            .get(key)
            .filter(|p| p.live_at(now, &self.config))
            .filter(|p| p.firm || intent == PickIntent::Play)
            .map(|p| p.origin.clone());
        if let Some(origin) = placed.and_then(|id| self.keeping_origin(&id, intent)) {
            if let Some(mut p) = self.placements.get_mut(key) {
                p.last_used = now;
            }
            return (Ok(origin), "kept");
        }
        let statuses = self.statuses();
        // The entry lock makes check-then-place atomic for concurrent picks of one stream;
        // the check is repeated because another pick may have placed it meanwhile.
        let mut entry = self.placements.entry(key.clone());
        if let Entry::Occupied(placed) = &mut entry {
            let p = placed.get_mut();
            let current = statuses.iter().find(|s| s.origin.id == p.origin);
            let kept = current.filter(|s| s.keeps_placement(intent));
            if let Some(status) = kept.filter(|_| p.live_at(now, &self.config)) {
                if intent == PickIntent::Publish && !p.firm {
                    p.firm = true;
                    self.count(&p.origin, 1);
                }
                p.last_used = now;
                return (Ok(status.origin.clone()), "kept");
            }
        }
        let chosen = match choose_origin(self.strategy.get().as_ref(), key, &statuses) {
            Ok(chosen) => chosen,
            Err(e) => return (Err(e), "failed"),
        };
        let mut outcome = "placed";
        if let Entry::Occupied(previous) = &entry {
            let previous = previous.get();
            if previous.firm {
                self.count(&previous.origin, -1);
            }
            // An expired placement is no placement: the stream left nothing.
            if previous.origin != chosen.id && previous.live_at(now, &self.config) {
                outcome = "replaced";
            }
        }
        let firm = intent == PickIntent::Publish;
        if firm {
            self.count(&chosen.id, 1);
        }
        entry.insert(Placed {
            origin: chosen.id.clone(),
            last_used: now,
            firm,
            confirmed: false,
        });
        (Ok(chosen.clone()), outcome)
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

    fn strategy_name(&self) -> &'static str {
        self.strategy.get().name()
    }

    fn set_strategy(&self, strategy: Box<dyn Strategy>) -> Result<(), Error> {
        self.strategy.set(strategy);
        Ok(())
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
                    down: None,
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

    async fn remove_origin(&self, id: &OriginId) -> Result<(), Error> {
        self.origins.remove(id);
        Ok(())
    }

    async fn pick(&self, key: &StreamKey, intent: PickIntent) -> Result<Origin, Error> {
        let (picked, outcome) = self.pick_counted(key, intent).await;
        metrics::counter!("proxy_picks_total", "balancer" => "memory", "outcome" => outcome)
            .increment(1);
        picked
    }

    async fn touch(&self, live: &[LiveStream]) -> Result<(), Error> {
        let now = self.clock.now();
        for stream in live {
            match self.placements.entry(stream.key.clone()) {
                Entry::Occupied(mut placed) => {
                    let p = placed.get_mut();
                    if !p.live_at(now, &self.config) {
                        // Expired but not yet swept: as good as missing.
                        if p.firm {
                            self.count(&p.origin, -1);
                        }
                        p.origin = stream.origin.clone();
                        p.firm = stream.publishing;
                        p.confirmed = stream.publishing;
                        if p.firm {
                            self.count(&p.origin, 1);
                        }
                    } else if p.origin != stream.origin {
                        continue;
                    } else if stream.publishing {
                        if !p.firm {
                            p.firm = true;
                            self.count(&p.origin, 1);
                        }
                        p.confirmed = true;
                    }
                    p.last_used = now;
                }
                Entry::Vacant(vacant) => {
                    if stream.publishing {
                        self.count(&stream.origin, 1);
                    }
                    vacant.insert(Placed {
                        origin: stream.origin.clone(),
                        last_used: now,
                        firm: stream.publishing,
                        confirmed: stream.publishing,
                    });
                }
            }
        }
        Ok(())
    }

    async fn release(&self, key: &StreamKey, origin: &OriginId) -> Result<(), Error> {
        // Firm placements are never removed, so no count changes.
        self.placements
            .remove_if(key, |_, p| !p.firm && p.origin == *origin);
        Ok(())
    }

    async fn placements(&self) -> Result<Vec<Placement>, Error> {
        let now = self.clock.now();
        let mut all: Vec<Placement> = self
            .placements
            .iter()
            .filter(|p| p.firm && p.live_at(now, &self.config))
            .map(|p| Placement {
                key: p.key().clone(),
                origin: p.origin.clone(),
            })
            .collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all.truncate(MAX_LISTED_PLACEMENTS);
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

    async fn mark_down(
        &self,
        id: &OriginId,
        reason: &str,
        duration: Duration,
    ) -> Result<(), Error> {
        let mut entry = self
            .origins
            .get_mut(id)
            .ok_or_else(|| Error::UnknownOrigin(id.clone()))?;
        let until = later(self.clock.now(), duration);
        entry.down = Some((clip_reason(reason).to_owned(), until));
        Ok(())
    }

    async fn mark_up(&self, id: &OriginId) -> Result<(), Error> {
        let mut entry = self
            .origins
            .get_mut(id)
            .ok_or_else(|| Error::UnknownOrigin(id.clone()))?;
        entry.down = None;
        Ok(())
    }

    async fn report_connections(
        &self,
        proxy: &str,
        counts: &[(OriginId, u64)],
        ttl: Duration,
    ) -> Result<(), Error> {
        let counts = check_report(proxy, counts)?;
        self.sweep_if_due();
        let until = later(self.clock.now(), ttl);
        self.reports
            .insert(proxy.to_owned(), Report { counts, until });
        Ok(())
    }
}

/// `now + by`, saturating: a caller's absurd duration means "for as long as can be", not a
/// panic.
fn later(now: Instant, by: Duration) -> Instant {
    now.checked_add(by)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

impl std::fmt::Debug for MemoryBalancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBalancer")
            .field("strategy", &self.strategy.get().name())
            .field("origins", &self.origins.len())
            .field("placements", &self.placements.len())
            .field("hls_sessions", &self.hls.len())
            .field("rtc_sessions", &self.rtc.len())
            .finish()
    }
}

#[cfg(test)]
mod tests;
