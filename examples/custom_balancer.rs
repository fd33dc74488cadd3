//! A balancer of your own, running the whole proxy.
//!
//! `RendezvousBalancer` places each stream by rendezvous (highest-random-weight) hashing
//! over the live origins: every proxy computes the same placement without sharing any
//! state, and a dead origin moves only its own streams. Sessions (HLS tokens, WebRTC
//! ufrags) are kept in this process only, so it suits a single proxy or a fleet whose L4
//! balancer keeps a client on one proxy.
//!
//! `cargo run -p proxy-examples --example custom_balancer -- --config proxy.toml`

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lb_core::{
    is_alive, Balancer, Error, HlsSession, LiveStream, Origin, OriginId, OriginStatus, PickIntent,
    Placement, RtcSession, StreamKey,
};

#[derive(Default)]
struct RendezvousBalancer {
    origins: Mutex<HashMap<OriginId, (Origin, Instant, bool)>>,
    hls: Mutex<HashMap<String, HlsSession>>,
    rtc: Mutex<HashMap<String, RtcSession>>,
}

const ORIGIN_TTL: Duration = Duration::from_secs(300);

impl RendezvousBalancer {
    fn statuses(&self) -> Vec<OriginStatus> {
        let origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
        origins
            .values()
            .map(|(origin, seen, draining)| OriginStatus {
                origin: origin.clone(),
                alive: is_alive(origin.source, seen.elapsed(), ORIGIN_TTL),
                draining: *draining,
                since_heartbeat: seen.elapsed(),
                streams: 0,
                down: None,
                connections: 0,
            })
            .collect()
    }
}

fn score(key: &StreamKey, origin: &OriginId) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    origin.hash(&mut h);
    h.finish()
}

#[async_trait]
impl Balancer for RendezvousBalancer {
    fn name(&self) -> &'static str {
        "rendezvous"
    }

    async fn register(&self, origin: Origin) -> Result<(), Error> {
        let mut origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
        let draining = origins.get(&origin.id).is_some_and(|(_, _, d)| *d);
        origins.insert(origin.id.clone(), (origin, Instant::now(), draining));
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
        let entry = origins
            .get_mut(id)
            .ok_or_else(|| Error::UnknownOrigin(id.clone()))?;
        entry.2 = draining;
        Ok(())
    }

    async fn pick(&self, key: &StreamKey, intent: PickIntent) -> Result<Origin, Error> {
        let statuses = self.statuses();
        // Players may stay on a draining origin; everyone needs a live one.
        let usable = |s: &&OriginStatus| s.alive && (!s.draining || intent == PickIntent::Play);
        statuses
            .iter()
            .filter(usable)
            .max_by_key(|s| score(key, &s.origin.id))
            .map(|s| s.origin.clone())
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
        self.hls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.to_owned(), session.clone());
        Ok(())
    }

    async fn hls(&self, token: &str) -> Result<Option<HlsSession>, Error> {
        Ok(self
            .hls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned())
    }

    async fn put_rtc(&self, ufrag: &str, session: &RtcSession) -> Result<(), Error> {
        self.rtc
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ufrag.to_owned(), session.clone());
        Ok(())
    }

    async fn rtc(&self, ufrag: &str) -> Result<Option<RtcSession>, Error> {
        Ok(self
            .rtc
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(ufrag)
            .cloned())
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
    proxy_server::run_with_balancer(config, Arc::new(RendezvousBalancer::default())).await
}
