//! A balancer of your own, running the whole proxy, and checked against the balancer
//! conformance suite.
//!
//! `RendezvousBalancer` places each stream by rendezvous (highest-random-weight) hashing
//! over the live origins: every proxy computes the same placement without sharing any
//! state, and a dead origin moves only its own streams. The hashing is the product's
//! (`lb_core::Rendezvous`, `PROXY_LB_STRATEGY=rendezvous`, which both built-in balancers
//! run with stored placements on top); this example shows a balancer that stores none. Sessions (HLS tokens, WebRTC
//! ufrags) are kept in this process only, so it suits a single proxy or a fleet whose L4
//! balancer keeps a client on one proxy.
//!
//! `cargo run -p proxy-examples --example custom_balancer -- --config proxy.toml`
//!
//! # Testing it
//!
//! The `conformance` module below runs lb-core's conformance suite (`lb_core::testing`,
//! feature `testing`) against it: a [`Harness`](lb_core::testing::Harness) makes a fresh
//! balancer per scenario on a [`ManualClock`](lb_core::ManualClock), so the suite's time
//! passes at once, and `lb_core::conformance_tests!` expands to one test per scenario:
//!
//! `cargo nextest run -p proxy-examples -E 'binary(custom_balancer)'`
//!
//! By design this balancer stores no placements (they are computed, so a new origin takes
//! some streams over, and a drained origin's players follow its publisher only once it is
//! gone), and it ignores health marks and connection reports (the trait's defaults). Its
//! harness declares that in `capabilities()`: the scenarios that need those parts check
//! instead that their calls are accepted and ignored; everything else (stickiness, dead,
//! restarted and draining origins, `NoOrigin`, session expiry) it must pass like any
//! other balancer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use lb_core::{
    is_alive, Balancer, BalancerConfig, Candidate, Clock, Error, HlsSession, LiveStream, Origin,
    OriginId, OriginStatus, PickIntent, Placement, Rendezvous, RtcSession, StreamKey, SystemClock,
};

struct RendezvousBalancer {
    config: BalancerConfig,
    clock: Arc<dyn Clock>,
    origins: Mutex<HashMap<OriginId, Known>>,
    hls: Mutex<HashMap<String, Timed<HlsSession>>>,
    rtc: Mutex<HashMap<String, Timed<RtcSession>>>,
}

struct Known {
    origin: Origin,
    seen: Instant,
    draining: bool,
}

/// A session and when it was last used.
type Timed<T> = (T, Instant);

impl RendezvousBalancer {
    /// A balancer reading the time from `clock` (tests use a `ManualClock`).
    fn new(config: BalancerConfig, clock: Arc<dyn Clock>) -> Self {
        RendezvousBalancer {
            config,
            clock,
            origins: Mutex::default(),
            hls: Mutex::default(),
            rtc: Mutex::default(),
        }
    }

    fn statuses(&self) -> Vec<OriginStatus> {
        let now = self.clock.now();
        let origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
        origins
            .values()
            .map(|known| {
                let since = now.duration_since(known.seen);
                OriginStatus {
                    origin: known.origin.clone(),
                    alive: is_alive(known.origin.source, since, self.config.origin_ttl),
                    draining: known.draining,
                    since_heartbeat: since,
                    streams: 0,
                    down: None,
                    connections: 0,
                }
            })
            .collect()
    }

    fn put_session<T>(&self, map: &Mutex<HashMap<String, Timed<T>>>, id: &str, session: T) {
        let now = self.clock.now();
        let ttl = self.config.session_ttl;
        let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
        // A sketch's sweep: O(sessions) per new one keeps memory bounded by one TTL's worth.
        map.retain(|_, (_, used)| now.duration_since(*used) < ttl);
        map.insert(id.to_owned(), (session, now));
    }

    /// The session, renewed, unless it has been idle for the session TTL.
    fn use_session<T: Clone>(&self, map: &Mutex<HashMap<String, Timed<T>>>, id: &str) -> Option<T> {
        let now = self.clock.now();
        let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
        let (session, used) = map.get_mut(id)?;
        if now.duration_since(*used) >= self.config.session_ttl {
            map.remove(id);
            return None;
        }
        *used = now;
        Some(session.clone())
    }
}

#[async_trait]
impl Balancer for RendezvousBalancer {
    fn name(&self) -> &'static str {
        "rendezvous"
    }

    async fn register(&self, origin: Origin) -> Result<(), Error> {
        let now = self.clock.now();
        let mut origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
        // The same server under a new service/pid is a restart: the old process is gone.
        origins.retain(|id, known| *id == origin.id || known.origin.server != origin.server);
        let draining = origins.get(&origin.id).is_some_and(|known| known.draining);
        origins.insert(
            origin.id.clone(),
            Known {
                origin,
                seen: now,
                draining,
            },
        );
        Ok(())
    }

    async fn origin(&self, id: &OriginId) -> Result<Option<OriginStatus>, Error> {
        Ok(self.statuses().into_iter().find(|s| &s.origin.id == id))
    }

    async fn origins(&self) -> Result<Vec<OriginStatus>, Error> {
        Ok(self.statuses())
    }

    async fn set_draining(&self, id: &OriginId, draining: bool) -> Result<(), Error> {
        let mut origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
        let known = origins
            .get_mut(id)
            .ok_or_else(|| Error::UnknownOrigin(id.clone()))?;
        known.draining = draining;
        Ok(())
    }

    async fn pick(&self, key: &StreamKey, intent: PickIntent) -> Result<Origin, Error> {
        let statuses = self.statuses();
        // Players may stay on a draining origin; everyone needs a live one.
        let usable: Vec<Candidate<'_>> = statuses
            .iter()
            .filter(|s| s.keeps_placement(intent))
            .map(|s| Candidate {
                origin: &s.origin,
                streams: 0,
                connections: 0,
            })
            .collect();
        // lb-core's weighted rendezvous: the same answer as the product strategy.
        Rendezvous::order(key, &usable)
            .first()
            .map(|&i| usable[i].origin.clone())
            .ok_or(Error::NoOrigin {
                registered: statuses.len(),
                alive: statuses.iter().filter(|s| s.alive).count(),
                accepting: 0,
            })
    }

    async fn touch(&self, _: &[LiveStream]) -> Result<(), Error> {
        Ok(()) // placements are computed, not stored
    }

    async fn placements(&self) -> Result<Vec<Placement>, Error> {
        Ok(Vec::new()) // computed on demand; nothing to list
    }

    async fn put_hls(&self, token: &str, session: &HlsSession) -> Result<(), Error> {
        self.put_session(&self.hls, token, session.clone());
        Ok(())
    }

    async fn hls(&self, token: &str) -> Result<Option<HlsSession>, Error> {
        Ok(self.use_session(&self.hls, token))
    }

    async fn put_rtc(&self, ufrag: &str, session: &RtcSession) -> Result<(), Error> {
        self.put_session(&self.rtc, ufrag, session.clone());
        Ok(())
    }

    async fn rtc(&self, ufrag: &str) -> Result<Option<RtcSession>, Error> {
        Ok(self.use_session(&self.rtc, ufrag))
    }

    async fn remove_rtc(&self, ufrag: &str) -> Result<(), Error> {
        self.rtc
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(ufrag);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let config = proxy_server::load_config(std::env::args())?;
    let balancer = RendezvousBalancer::new(config.balancer_config, Arc::new(SystemClock));
    proxy_server::run_with_balancer(config, Arc::new(balancer)).await
}

/// lb-core's conformance suite, run against `RendezvousBalancer`.
#[cfg(test)]
mod conformance {
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use lb_core::testing::{Capabilities, Harness};
    use lb_core::{Balancer, BalancerConfig, ManualClock, Strategy};

    use super::RendezvousBalancer;

    /// Rendezvous balancers on one fake clock: the suite's time passes at once.
    #[derive(Default)]
    struct Rendezvous(Arc<ManualClock>);

    #[async_trait]
    impl Harness for Rendezvous {
        async fn balancer(
            &self,
            config: BalancerConfig,
            _strategy: Box<dyn Strategy>,
        ) -> Arc<dyn Balancer> {
            // Rendezvous hashing is its own strategy: `placements: false` below says so.
            Arc::new(RendezvousBalancer::new(config, self.0.clone()))
        }

        async fn advance(&self, by: Duration) {
            self.0.advance(by);
        }

        fn capabilities(&self) -> Capabilities {
            Capabilities {
                placements: false,
                health_marks: false,
                connection_reports: false,
            }
        }
    }

    lb_core::conformance_tests!(Rendezvous::default());
}
