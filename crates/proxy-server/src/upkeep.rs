//! The proxy's periodic chores, run by one task on one shared tick: the origin probes
//! ([`crate::health`]), and what the proxy keeps telling its balancer, so that a shared
//! balancer that forgets (a Redis restarted without persistence, placements expiring)
//! learns it again: the placements of streams with live sessions, and the static origins,
//! which have no heartbeat of their own.
//!
//! Each chore has a window: it is due at the latest at `due`, and may run from
//! `due - early`. A wake-up runs every chore whose window has opened, so chores with
//! similar periods share one wake-up instead of each costing its own (an idle proxy's CPU
//! is mostly the cost of waking up). With the default settings everything runs on the
//! probes' tick, about every 2 s; with probes off the static-origin check sets it.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::health::{self, Prober};
use crate::{metrics, Context};

/// How often static origins are checked: at most every [`STATIC_EVERY`] plus a tenth, so
/// that probes at their default interval (2 s, give or take a tenth) always carry it.
const STATIC_EVERY: Duration = Duration::from_secs(2);
/// How much earlier than [`STATIC_EVERY`] the static-origin check may run to share a
/// wake-up: checking more often costs nothing but the (in-memory or Redis) lookup.
const STATIC_EARLY: Duration = Duration::from_millis(700);

/// One periodic chore's window.
#[derive(Debug, Clone, Copy)]
struct Chore {
    /// Runs at this instant at the latest.
    due: Instant,
    /// May run this much before `due`, on another chore's wake-up.
    early: Duration,
}

impl Chore {
    fn open(&self, now: Instant) -> bool {
        now + self.early >= self.due
    }
}

/// Runs every periodic chore until the process ends. Probes stop when the proxy stops
/// accepting; the balancer upkeep goes on, since sessions may still be draining.
pub async fn run(ctx: Arc<Context>) {
    let ttls = &ctx.config.balancer_config;
    // Tentative placements of live players must be renewed too.
    let placement_period = (ttls.placement_ttl.min(ttls.tentative_ttl) / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(60));
    let start = Instant::now();
    let mut placements = Chore {
        due: start,
        early: placement_period / 4,
    };
    let mut statics = Chore {
        due: start + STATIC_EVERY + STATIC_EVERY / 10,
        early: STATIC_EARLY,
    };
    // `None` while probes are off (or stopped): an origin listed at start is probed at once.
    let mut probes: Option<Chore> = None;
    let mut prober = Prober::new();
    let mut probing = true;
    let mut reloads = ctx.live_changes();
    let mut watching = true;
    loop {
        let now = Instant::now();
        if placements.open(now) {
            placements.due = now + placement_period;
            bounded("placement upkeep", keep_live_placements(&ctx)).await;
        }
        if statics.open(now) {
            statics.due = now + STATIC_EVERY + STATIC_EVERY / 10;
            bounded("static-origin check", restore_static_origins(&ctx)).await;
        }
        // Read at every wake-up: a reload may change the interval, or turn probes off or on.
        match ctx.live().health_check.interval.filter(|_| probing) {
            None => {
                probes = None;
                prober.clear();
            }
            Some(interval) => {
                let chore = probes.get_or_insert(Chore {
                    due: now,
                    early: Duration::ZERO,
                });
                if chore.open(now) {
                    // Counted from the round's start, as an interval timer would.
                    chore.due = now + health::jittered(interval);
                    tokio::select! {
                        () = prober.round(&ctx, interval) => {}
                        () = ctx.lifecycle.stopped_accepting() => probing = false,
                    }
                }
            }
        }
        let next = [
            Some(placements.due),
            Some(statics.due),
            probes.map(|c| c.due),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(placements.due);
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            // A reload may turn probes on: no need to poll for it.
            changed = reloads.changed(), if watching => watching = changed.is_ok(),
            () = ctx.lifecycle.stopped_accepting(), if probing => probing = false,
        }
    }
}

/// Longest a balancer chore may hold the shared tick: the probes share it, and a shared
/// balancer that hangs (Redis unreachable) must not leave origins unprobed. What a cut chore
/// did not do, the next tick does.
const CHORE_LIMIT: Duration = Duration::from_secs(1);

/// Runs `chore` for at most [`CHORE_LIMIT`].
async fn bounded(what: &str, chore: impl std::future::Future<Output = ()>) {
    if tokio::time::timeout(CHORE_LIMIT, chore).await.is_err() {
        tracing::warn!("{what} took over {CHORE_LIMIT:?}: left for the next tick");
        metrics::balancer_error("upkeep_timeout");
    }
}

/// Adds again the static origins the balancer has forgotten, with their draining flags.
pub(crate) async fn restore_static_origins(ctx: &Context) {
    let live = ctx.live();
    for (origin, draining) in &live.static_origins {
        if let Ok(None) = ctx.balancer.origin(&origin.id).await {
            tracing::info!(origin = %origin.id, "static origin forgotten by the balancer; adding it again");
            let restored = ctx.balancer.register(origin.clone()).await;
            let restored = match restored {
                Ok(()) if *draining => ctx.balancer.set_draining(&origin.id, true).await,
                other => other,
            };
            if let Err(e) = restored {
                tracing::warn!(origin = %origin.id, "cannot add static origin: {e}");
            }
        }
    }
}

/// Forgets stale recent routes, and keeps the balancer from forgetting where streams with
/// live sessions are.
async fn keep_live_placements(ctx: &Context) {
    ctx.recent.placements.sweep();
    ctx.recent.tokens.sweep();
    if ctx.sessions.len() == 0 {
        return;
    }
    let live = ctx.sessions.live_streams();
    if live.is_empty() {
        return;
    }
    if let Err(e) = ctx.balancer.touch(&live).await {
        tracing::warn!("cannot refresh placements of live streams: {e}");
        metrics::balancer_error("touch");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_chore_opens_early_by_its_margin_only() {
        let now = Instant::now();
        let chore = Chore {
            due: now + Duration::from_secs(2),
            early: Duration::from_millis(700),
        };
        assert!(!chore.open(now + Duration::from_millis(1299)));
        assert!(chore.open(now + Duration::from_millis(1300)));
        assert!(chore.open(now + Duration::from_secs(3)), "late still runs");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_chore_is_cut_at_the_limit() {
        let started = Instant::now();
        bounded("test chore", std::future::pending()).await;
        assert_eq!(started.elapsed(), CHORE_LIMIT);
    }

    #[test]
    fn probes_at_the_default_interval_carry_the_static_check() {
        // Probes come every 1.8 to 2.2 s; the static check's window after a shared
        // wake-up spans 1.5 to 2.2 s, so a probe round always opens it.
        let latest = STATIC_EVERY + STATIC_EVERY / 10;
        let earliest = latest - STATIC_EARLY;
        let interval = Duration::from_secs(2);
        assert!(earliest <= interval.mul_f64(0.9));
        assert!(latest >= interval.mul_f64(1.1));
    }
}
