//! Live reconfiguration: SIGHUP and `POST /api/v1/reload` read the configuration again
//! (command line, environment, `.env`, the TOML file) and apply what can change while
//! sessions run: static origins, the placement strategy, limits, timeouts, health checks
//! and the log filter. Sessions already running keep what they started with.
//!
//! A configuration that does not load changes nothing. Settings that only a restart can
//! change (listeners, the balancer) keep their running value and are reported as needing
//! one.
//!
//! Code reads reloadable values through [`crate::Context::live`], once per session or per
//! round, and startup-only ones from [`crate::Context::config`].

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

use lb_core::{OriginId, OriginSource};
use serde::Serialize;

use crate::config::{Config, Invocation};
use crate::Context;

/// The configuration in effect, replaced whole by a reload.
pub struct LiveConfig {
    current: RwLock<Arc<Config>>,
    /// One reload at a time: two racing would each diff against the same old snapshot.
    reloading: tokio::sync::Mutex<()>,
    /// Told of each replacement, so that long-lived loops (the UDP routers) take up new
    /// limits when they change instead of polling for them.
    changed: tokio::sync::watch::Sender<()>,
}

impl LiveConfig {
    /// The configuration the proxy started with.
    pub fn new(config: Config) -> Self {
        LiveConfig {
            current: RwLock::new(Arc::new(config)),
            reloading: tokio::sync::Mutex::new(()),
            changed: tokio::sync::watch::Sender::new(()),
        }
    }

    /// A receiver whose `changed()` completes after each later replacement.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<()> {
        self.changed.subscribe()
    }

    /// The configuration in effect now.
    pub fn get(&self) -> Arc<Config> {
        // Writers only swap a whole `Arc`: a poisoned lock still holds a valid one.
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, config: Config) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
        self.changed.send_replace(());
    }
}

type LogReloader = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

static LOG_RELOADER: OnceLock<LogReloader> = OnceLock::new();

/// Lets a reload change the log filter: `reload` installs a filter given in `RUST_LOG`'s
/// syntax. The binary sets it once, with the subscriber; without it, a changed
/// `log_filter` is reported as needing a restart.
pub fn set_log_reloader(reload: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) {
    let _ = LOG_RELOADER.set(Box::new(reload));
}

/// The filter a configuration asks for: its `log_filter`, else `RUST_LOG`, else `info`.
pub fn log_filter_of(config: &Config) -> String {
    config
        .log_filter
        .clone()
        .or_else(|| {
            std::env::var("RUST_LOG")
                .ok()
                .filter(|v| !v.trim().is_empty())
        })
        .unwrap_or_else(|| "info".to_owned())
}

/// What a reload did.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    /// Settings whose new value is in effect.
    pub applied: Vec<&'static str>,
    /// Settings changed in the file that keep their running value until a restart.
    pub needs_restart: Vec<&'static str>,
    /// Static origins added.
    pub origins_added: Vec<String>,
    /// Static origins removed (taken out of the balancer, or drained where it cannot).
    pub origins_removed: Vec<String>,
    /// Static origins whose endpoints, weight or limits changed.
    pub origins_updated: Vec<String>,
    /// What could not be applied (the balancer refused, or could not be reached).
    pub warnings: Vec<String>,
    /// From the request (or signal) to the new configuration in effect.
    pub millis: f64,
}

/// Reads the configuration again and applies it; `trigger` says who asked (for the log).
/// A configuration that does not load changes nothing: the error names every problem.
pub async fn reload(ctx: &Context, trigger: &'static str) -> Result<Outcome, String> {
    let started = Instant::now();
    let _one = ctx.live.reloading.lock().await;
    // Reading files and the environment blocks: keep it off the runtime's workers.
    let loaded = tokio::task::spawn_blocking(|| crate::config::load_invocation(std::env::args()))
        .await
        .map_err(|e| format!("the reload task failed: {e}"))
        .and_then(|loaded| match loaded {
            Ok(Invocation::Run(config)) => Ok(*config),
            Ok(Invocation::Check(_)) => Err("--check-config cannot be reloaded".to_owned()),
            Err(e) => Err(format!("{e:#}")),
        });
    let new = match loaded {
        Ok(config) => config,
        Err(e) => {
            // Logged before it is counted: whoever watches the counter finds the reason.
            tracing::error!(trigger, "configuration reload failed; nothing changed: {e}");
            crate::metrics::config_reload(false);
            return Err(e);
        }
    };
    let old = ctx.live();
    let (effective, needs_restart) = keep_startup_settings(&old, new);
    let mut outcome = Outcome {
        applied: changed(&old, &effective),
        needs_restart,
        ..Outcome::default()
    };
    // In effect before the balancer hears of it, so that the task restoring static
    // origins a balancer forgot cannot add back one this reload removes.
    ctx.live.set(effective.clone());
    apply(ctx, &old, &effective, &mut outcome).await;
    // SIGHUP reaches the certificate store through its own listener.
    if let (Some(store), false) = (ctx.tls.clone(), trigger == "SIGHUP") {
        match tokio::task::spawn_blocking(move || store.reload()).await {
            Ok(done) if done.failed == 0 => outcome.applied.push("tls_certificates"),
            Ok(done) => outcome.warnings.push(format!(
                "TLS certificates: {} pair(s) kept their previous certificate (see the log)",
                done.failed
            )),
            Err(e) => outcome.warnings.push(format!("TLS certificates: {e}")),
        }
    }
    outcome.millis = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        trigger,
        applied = ?outcome.applied,
        needs_restart = ?outcome.needs_restart,
        added = ?outcome.origins_added,
        removed = ?outcome.origins_removed,
        updated = ?outcome.origins_updated,
        millis = format!("{:.1}", outcome.millis),
        "configuration reloaded"
    );
    crate::metrics::config_reload(true);
    for setting in &outcome.needs_restart {
        tracing::warn!(
            setting,
            "changed in the configuration, but only a restart applies it"
        );
    }
    for warning in &outcome.warnings {
        tracing::warn!("reload: {warning}");
    }
    Ok(outcome)
}

/// Reloads on every SIGHUP, until the process ends.
pub fn watch_sighup(ctx: Arc<Context>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(hup) => hup,
            Err(e) => {
                tracing::warn!("cannot watch SIGHUP, reload through the System API only: {e}");
                return;
            }
        };
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the configuration");
                // The outcome is logged by `reload`.
                let _ = reload(&ctx, "SIGHUP").await;
            }
        });
    }
    #[cfg(not(unix))]
    let _ = ctx;
}

/// Names the fields that differ between two configurations.
macro_rules! differing {
    ($old:expr, $new:expr, [$($field:ident),* $(,)?]) => {{
        let mut out = Vec::new();
        $(if $old.$field != $new.$field {
            out.push(stringify!($field));
        })*
        out
    }};
}

/// Every field of [`Config`] is named here once: `live` ones a reload applies, `restart`
/// ones keep their running value and are reported as needing a restart. A field added to
/// `Config` without a place here does not compile, so no setting is silently ignored.
macro_rules! classify {
    (live: [$($live:ident),* $(,)?], restart: [$($restart:ident),* $(,)?] $(,)?) => {
        /// The live settings that differ between two configurations.
        fn changed(old: &Config, new: &Config) -> Vec<&'static str> {
            differing!(old, new, [$($live),*])
        }

        /// Puts the startup-only settings of `new` back to their running values, and
        /// names those that differed.
        fn restore_restart_only(old: &Config, new: &mut Config) -> Vec<&'static str> {
            let differed = differing!(old, new, [$($restart),*]);
            $(new.$restart = old.$restart.clone();)*
            differed
        }

        #[allow(dead_code)]
        fn every_field_is_classified(config: &Config) {
            let Config { $($live: _,)* $($restart: _,)* } = config;
        }
    };
}

classify! {
    live: [
        strategy,
        grace_quit,
        force_quit,
        system_api_token,
        fleet_keys,
        fleet_token_ttl,
        static_origins,
        max_connections,
        handshake_timeout,
        origin_connect_timeout,
        idle_timeout,
        max_connections_per_ip,
        health_check,
        suspect_for,
        origin_connect_attempts,
        origin_proxy_protocol,
        log_filter,
    ],
    restart: [
        rtmp_listen,
        http_listen,
        http_api_listen,
        webrtc_listen,
        srt_listen,
        system_api_listen,
        rtmps_listen,
        https_listen,
        https_api_listen,
        // Which files; their contents reload on SIGHUP, on change, and with the API's reload.
        tls,
        static_files,
        balancer,
        balancer_config,
        rtc_candidate,
        rtc_tcp_candidates,
        trusted_proxies,
        rtmp_buffer_budget,
        edge,
        edge_cache_size,
        edge_linger,
        edge_merge_writes,
    ],
}

/// The new configuration with the settings only a restart changes put back to their
/// running values, and the names of those that differed.
fn keep_startup_settings(old: &Config, mut new: Config) -> (Config, Vec<&'static str>) {
    let mut restart = restore_restart_only(old, &mut new);
    if LOG_RELOADER.get().is_none() && old.log_filter != new.log_filter {
        restart.push("log_filter");
        new.log_filter = old.log_filter.clone();
    }
    (new, restart)
}

/// Makes the running proxy follow `new`: the balancer's static origins and strategy, the
/// connection limits, the log filter. Timeouts and health checks need nothing: they are
/// read from the live configuration where they are used.
async fn apply(ctx: &Context, old: &Config, new: &Config, outcome: &mut Outcome) {
    if old.strategy != new.strategy {
        if let Err(e) = ctx.balancer.set_strategy(new.strategy.build()) {
            outcome.warnings.push(format!("strategy: {e}"));
        }
    }
    apply_origins(ctx, old, new, outcome).await;
    resize(&ctx.connections, old.max_connections, new.max_connections);
    ctx.per_ip.set_limit(new.max_connections_per_ip);
    if old.log_filter != new.log_filter {
        if let Some(reload) = LOG_RELOADER.get() {
            if let Err(e) = reload(&log_filter_of(new)) {
                outcome.warnings.push(format!("log filter: {e}"));
            }
        }
    }
}

async fn apply_origins(ctx: &Context, old: &Config, new: &Config, outcome: &mut Outcome) {
    let before: HashMap<&OriginId, &(lb_core::Origin, bool)> = old
        .static_origins
        .iter()
        .map(|entry| (&entry.0.id, entry))
        .collect();
    let mut warn = |what: String| outcome.warnings.push(what);
    let (mut added, mut updated, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    for (origin, draining) in &new.static_origins {
        let id = &origin.id;
        let (register, set_drain) = match before.get(id) {
            None => {
                added.push(id.to_string());
                (true, *draining)
            }
            Some((was, was_draining)) => {
                if was != origin {
                    updated.push(id.to_string());
                }
                // A drain set through the API stands until the file changes its own flag.
                (was != origin, was_draining != draining)
            }
        };
        if register {
            if let Err(e) = ctx.balancer.register(origin.clone()).await {
                warn(format!("origin {id}: {e}"));
                continue;
            }
        }
        if set_drain || (register && *draining) {
            if let Err(e) = ctx.balancer.set_draining(id, *draining).await {
                warn(format!("origin {id}: {e}"));
            }
        }
    }
    for (origin, _) in &old.static_origins {
        let id = &origin.id;
        if new.static_origins.iter().any(|(o, _)| &o.id == id) {
            continue;
        }
        removed.push(id.to_string());
        // An origin that registers itself under the same name is not the file's to remove.
        match ctx.balancer.origin(id).await {
            Ok(Some(status)) if status.origin.source != OriginSource::Static => continue,
            Ok(None) => continue,
            _ => {}
        }
        if let Err(e) = ctx.balancer.remove_origin(id).await {
            // A shared balancer keeps it for the other proxies; this one stops using it.
            tracing::debug!(origin = %id, "cannot remove, draining instead: {e}");
            if let Err(e) = ctx.balancer.set_draining(id, true).await {
                warn(format!("origin {id}: {e}"));
            }
        }
    }
    outcome.origins_added = added;
    outcome.origins_updated = updated;
    outcome.origins_removed = removed;
}

/// Changes the number of permits a semaphore hands out, from `old` to `new`: permits in
/// use are not taken back, so a lower limit is reached as connections end.
fn resize(permits: &Arc<tokio::sync::Semaphore>, old: usize, new: usize) {
    if new > old {
        permits.add_permits(new - old);
    } else if new < old {
        let missing = (old - new) - permits.forget_permits(old - new);
        if missing > 0 {
            let permits = permits.clone();
            tokio::spawn(async move {
                let Ok(missing) = u32::try_from(missing) else {
                    return;
                };
                if let Ok(taken) = permits.acquire_many_owned(missing).await {
                    taken.forget();
                }
            });
        }
    }
}

/// The configuration in effect, as `GET /api/v1/config` shows it: every setting, secrets
/// masked, and the static origins.
pub fn effective_json(config: &Config) -> serde_json::Value {
    use serde_json::json;
    let masked = |v: &Option<String>| v.as_ref().map(|_| "***");
    let duration = |d: std::time::Duration| format!("{d:?}");
    let listen = |a: Option<std::net::SocketAddr>| a.map(|a| a.to_string());
    let balancer = match &config.balancer {
        crate::config::BalancerKind::Memory => json!({ "type": "memory" }),
        crate::config::BalancerKind::Redis(r) => json!({
            "type": "redis",
            "url": r.url.as_deref().map(crate::config::mask_url_password),
            "host": r.host, "port": r.port, "db": r.db,
            "password": masked(&r.password),
        }),
    };
    let origins: Vec<_> = config
        .static_origins
        .iter()
        .map(|(o, draining)| {
            let list =
                |v: &[lb_core::Endpoint]| v.iter().map(|e| e.to_string()).collect::<Vec<_>>();
            json!({
                "name": o.id, "ip": o.ip, "rtmp": list(&o.rtmp), "http": list(&o.http),
                "api": list(&o.api), "srt": list(&o.srt), "rtc": list(&o.rtc),
                "weight": o.weight, "max_streams": o.max_streams,
                "max_connections": o.max_connections, "draining": draining,
            })
        })
        .collect();
    let h = &config.health_check;
    json!({
        "rtmp_server": listen(config.rtmp_listen),
        "http_server": listen(config.http_listen),
        "http_api": listen(config.http_api_listen),
        "webrtc_server": listen(config.webrtc_listen),
        "srt_server": listen(config.srt_listen),
        "system_api": listen(config.system_api_listen),
        "rtmps_server": listen(config.rtmps_listen),
        "https_server": listen(config.https_listen),
        "https_api": listen(config.https_api_listen),
        "tls": config.tls.as_ref().map(|t| json!({
            "cert": t.cert, "key": t.key,
            "sni": t.sni.iter().map(|p| json!({ "names": p.names, "cert": p.cert, "key": p.key })).collect::<Vec<_>>(),
        })),
        "edge": config.edge,
        "edge_cache_size": config.edge_cache_size,
        "edge_linger": duration(config.edge_linger),
        "edge_merge_writes": duration(config.edge_merge_writes),
        "static_files": config.static_files,
        "balancer": balancer,
        "lb_strategy": config.strategy.build().name(),
        "origin_ttl": duration(config.balancer_config.origin_ttl),
        "session_ttl": duration(config.balancer_config.session_ttl),
        "placement_ttl": duration(config.balancer_config.placement_ttl),
        "tentative_ttl": duration(config.balancer_config.tentative_ttl),
        "grace_quit_timeout": duration(config.grace_quit),
        "force_quit_timeout": duration(config.force_quit),
        "system_api_token": masked(&config.system_api_token),
        "fleet_secret": config.fleet_keys.as_ref().map(|_| "***"),
        "fleet_token_ttl": duration(config.fleet_token_ttl),
        "max_connections": config.max_connections,
        "max_connections_per_ip": config.max_connections_per_ip,
        "handshake_timeout": duration(config.handshake_timeout),
        "origin_connect_timeout": duration(config.origin_connect_timeout),
        "idle_timeout": duration(config.idle_timeout),
        "rtc_candidate": config.rtc_candidate,
        "rtc_tcp_candidates": config.rtc_tcp_candidates,
        "health_check": {
            "interval": h.interval.map(duration),
            "timeout": duration(h.timeout),
            "rise": h.rise, "fall": h.fall,
            "registered": h.registered, "cut_sessions": h.cut_sessions,
        },
        "suspect_for": duration(config.suspect_for),
        "origin_connect_attempts": config.origin_connect_attempts,
        "origin_proxy_protocol": format!("{:?}", config.origin_proxy_protocol),
        "trusted_proxies": format!("{:?}", config.trusted_proxies),
        "rtmp_buffer_budget": config.rtmp_buffer_budget,
        "log_filter": log_filter_of(config),
        "origins": origins,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lower_limit_takes_back_free_permits_then_the_rest_as_they_return() {
        let permits = Arc::new(tokio::sync::Semaphore::new(4));
        let held = permits.clone().acquire_many_owned(3).await.unwrap();
        resize(&permits, 4, 2);
        assert_eq!(permits.available_permits(), 0);
        drop(held);
        tokio::task::yield_now().await;
        // The spawned task takes one of the three returned.
        for _ in 0..10 {
            if permits.available_permits() == 2 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(permits.available_permits(), 2);
        resize(&permits, 2, 5);
        assert_eq!(permits.available_permits(), 5);
    }
}
