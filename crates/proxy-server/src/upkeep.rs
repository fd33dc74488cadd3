//! What the proxy keeps telling its balancer, so that a shared balancer that forgets (a
//! Redis restarted without persistence, placements expiring) learns it again: the
//! placements of streams with live sessions, and the static origins, which have no
//! heartbeat of their own.

use std::sync::Arc;
use std::time::Duration;

use crate::{metrics, Context};

/// Keeps static origins registered: a shared balancer (a Redis restarted without
/// persistence) may forget them, and they have no heartbeat of their own.
pub async fn keep_static_origins(ctx: Arc<Context>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.tick().await;
    loop {
        tick.tick().await;
        restore_static_origins(&ctx).await;
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

/// Keeps the balancer from forgetting where streams with live sessions are.
pub async fn keep_live_placements(ctx: Arc<Context>) {
    let ttls = &ctx.config.balancer_config;
    // Tentative placements of live players must be renewed too.
    let period = (ttls.placement_ttl.min(ttls.tentative_ttl) / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(60));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        ctx.recent.placements.sweep();
        ctx.recent.tokens.sweep();
        let live = ctx.sessions.live_streams();
        if live.is_empty() {
            continue;
        }
        if let Err(e) = ctx.balancer.touch(&live).await {
            tracing::warn!("cannot refresh placements of live streams: {e}");
            metrics::balancer_error("touch");
        }
    }
}
