#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod accept;
mod api;
pub mod config;
mod edge;
mod forward;
mod health;
mod hls_cache;
mod http_front;
mod lifecycle;
mod limits;
mod media_http;
mod media_raw;
/// The raw HTTP-FLV/TS relay loop, for `benches/raw_pump.rs`; not an API.
#[doc(hidden)]
pub use media_raw::bench_pump;
pub mod metrics;
mod origin_link;
mod proxy_protocol;
mod reload;
mod rtmp;
mod sessions;
mod srt;
pub mod tls;
mod udp_batch;
mod upkeep;
mod webrtc;
mod write_watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use lb_core::Balancer;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;

use crate::config::BalancerKind;
use crate::lifecycle::Lifecycle;
use crate::sessions::Sessions;

/// What every listener and session shares.
pub struct Context {
    /// The configuration the proxy started with: read startup-only settings (listeners,
    /// the balancer) here, and reloadable ones through [`Context::live`].
    pub config: Config,
    /// The configuration in effect, which a reload replaces.
    live: reload::LiveConfig,
    /// Where streams are placed.
    pub balancer: Arc<dyn Balancer>,
    /// This proxy's live sessions.
    pub sessions: Sessions,
    /// Accepting, draining and stopping.
    pub lifecycle: Lifecycle,
    /// One permit per client connection, across the TCP listeners.
    pub connections: Arc<Semaphore>,
    /// Routes remembered to ride out an unreachable balancer.
    pub recent: origin_link::RecentRoutes,
    /// Connections and sessions per client IP, across every listener.
    pub per_ip: limits::PerIpLimiter,
    /// The TLS listeners' certificates, when any is configured ([`tls::CertStore::reload`]).
    pub tls: Option<Arc<tls::CertStore>>,
    /// The HLS cache of an edge (PROXY_EDGE); `None` on a plain proxy.
    pub hls_cache: Option<hls_cache::EdgeCache>,
    /// Edge mode's hubs (empty when edge mode is off).
    pub edge: edge::Edge,
}

impl Context {
    /// The configuration in effect now. Read it once where a session or a round starts:
    /// a reload between two reads may change it.
    pub fn live(&self) -> Arc<Config> {
        self.live.get()
    }

    /// Told of each reload that replaces the configuration (its `changed()` completes),
    /// for loops that keep reloadable values and would otherwise poll [`Context::live`].
    pub fn live_changes(&self) -> tokio::sync::watch::Receiver<()> {
        self.live.subscribe()
    }
}

pub use config::{load as load_config, Config};
pub use reload::{log_filter_of, set_log_reloader};

/// Runs the proxy with the balancer its configuration names, until SIGTERM or SIGINT.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let balancer = build_balancer(&config).await?;
    run_with_balancer(config, balancer).await
}

/// Runs the proxy with a given balancer, until SIGTERM or SIGINT, then shuts down
/// gracefully (stop accepting, let sessions run up to the grace timeout).
pub async fn run_with_balancer(config: Config, balancer: Arc<dyn Balancer>) -> anyhow::Result<()> {
    // Before any listener, so every session is counted; an embedder's own recorder wins.
    metrics::install_prometheus();
    raise_descriptor_limit(&config);
    for (origin, draining) in &config.static_origins {
        balancer
            .register(origin.clone())
            .await
            .with_context(|| format!("adding static origin {}", origin.id))?;
        if *draining {
            balancer.set_draining(&origin.id, true).await?;
        }
        tracing::info!(origin = %origin.id, draining, "static origin");
    }
    // Read before any listener binds: a certificate that does not load stops the start.
    let tls = match &config.tls {
        Some(files) => Some(tls::CertStore::load(files).context("loading the TLS certificates")?),
        None => None,
    };
    let connections = Arc::new(Semaphore::new(config.max_connections));
    let config_per_ip = config.max_connections_per_ip;
    let edge_cache = config
        .edge
        .then(|| hls_cache::EdgeCache::new(config.edge_cache_size));
    let ctx = Arc::new(Context {
        live: reload::LiveConfig::new(config.clone()),
        config,
        balancer,
        sessions: Sessions::default(),
        lifecycle: Lifecycle::new(),
        connections,
        recent: Default::default(),
        per_ip: limits::PerIpLimiter::new(config_per_ip),
        tls,
        hls_cache: edge_cache,
        edge: edge::Edge::default(),
    });
    if let Some(store) = &ctx.tls {
        store.watch();
    }

    let mut system_api = None;
    if let Some(addr) = ctx.config.system_api_listen {
        let listener = bind_tcp("system-api", addr).await?;
        system_api = listener.local_addr().ok();
        if ctx.config.system_api_token.is_none() && !addr.ip().is_loopback() {
            tracing::warn!(%addr, "System API is reachable beyond loopback without a token: anyone who reaches it can register an origin (set PROXY_SYSTEM_API_TOKEN)");
        }
        tokio::spawn(api::serve(ctx.clone(), listener));
    }
    rtmp::start(ctx.clone()).await?;
    media_http::start(ctx.clone()).await?;
    webrtc::start(ctx.clone()).await?;
    srt::start(ctx.clone()).await?;
    // Probes, static origins and placements: one task, one shared tick.
    tokio::spawn(upkeep::run(ctx.clone()));
    health::start(ctx.clone());
    reload::watch_sighup(ctx.clone());
    let shutdown = shutdown_signal();
    warn_loopback_candidate(&ctx.config);
    first_run_guidance(&ctx, system_api).await;
    tracing::info!("ready");
    notify_service_manager(sd_notify::NotifyState::Ready);

    shutdown.await;
    tracing::info!("shutting down");
    notify_service_manager(sd_notify::NotifyState::Stopping);
    let live = ctx.live();
    ctx.lifecycle
        .shutdown(live.grace_quit, live.force_quit)
        .await;
    tracing::info!("bye");
    Ok(())
}

/// Tells systemd (`Type=notify`) where the proxy is, when it runs under one
/// (`NOTIFY_SOCKET` set); elsewhere, nothing.
fn notify_service_manager(state: sd_notify::NotifyState<'_>) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(&[state]) {
        tracing::warn!("cannot notify the service manager (NOTIFY_SOCKET): {e}");
    }
}

/// WebRTC answers name 127.0.0.1 when no `PROXY_RTC_CANDIDATE` is set and the UDP
/// listener is on a wildcard (or loopback) address; if clients can reach the proxy from
/// elsewhere (a wildcard listener), their media would go to their own loopback.
fn warn_loopback_candidate(config: &Config) {
    let Some(udp) = config.webrtc_listen else {
        return;
    };
    if (config.http_api_listen.is_none() && config.https_api_listen.is_none())
        || config.rtc_candidate.is_some()
    {
        return;
    }
    let answers_loopback = udp.ip().is_unspecified() || udp.ip().is_loopback();
    let wildcard = [
        config.webrtc_listen,
        config.http_api_listen,
        config.https_api_listen,
    ]
    .into_iter()
    .flatten()
    .find(|a| a.ip().is_unspecified());
    if let (true, Some(addr)) = (answers_loopback, wildcard) {
        tracing::warn!(
            %addr,
            "listening on a wildcard address, but WebRTC answers name 127.0.0.1: remote WHIP/WHEP \
             clients will send their media to themselves. Set PROXY_RTC_CANDIDATE to this host's \
             address as clients reach it (an IP or a name, with :port behind a NAT)"
        );
    }
}

/// With no origin at all (none static, none registered yet), says once how to add one:
/// the heartbeat block for SRS with this proxy's System API address, or a static origin.
async fn first_run_guidance(ctx: &Context, system_api: Option<SocketAddr>) {
    if !ctx.config.static_origins.is_empty() {
        return;
    }
    // A fleet's Redis may already know origins registered through other proxies.
    if !matches!(ctx.balancer.origins().await, Ok(origins) if origins.is_empty()) {
        return;
    }
    let register = match system_api {
        Some(addr) => {
            let host = if addr.ip().is_unspecified() {
                "THIS_PROXY_HOST".to_owned()
            } else {
                addr.ip().to_string()
            };
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            let token = if ctx.config.system_api_token.is_some() {
                "?token=TOKEN"
            } else {
                ""
            };
            let mut text = format!(
                "SRS registers itself with this block in its config (srs.conf):\n\
                 \x20   heartbeat {{\n\
                 \x20       enabled on;\n\
                 \x20       interval 9;\n\
                 \x20       url http://{host}:{port}/api/v1/srs/register{token};\n\
                 \x20       device_id origin1;\n\
                 \x20       ports on;\n\
                 \x20   }}\n",
                port = addr.port()
            );
            if !token.is_empty() {
                text.push_str("  (TOKEN: the value of PROXY_SYSTEM_API_TOKEN)\n");
            }
            if addr.ip().is_unspecified() {
                text.push_str(
                    "  (THIS_PROXY_HOST: this proxy's address as the origin reaches it)\n",
                );
            } else if addr.ip().is_loopback() {
                text.push_str(
                    "  (the System API listens on loopback: only an origin on this host can \
                     register; for others, set PROXY_SYSTEM_API=0.0.0.0:PORT and \
                     PROXY_SYSTEM_API_TOKEN)\n",
                );
            }
            text
        }
        None => "The System API is off (PROXY_SYSTEM_API), so origins cannot register; \
                 turn it on, or:\n"
            .to_owned(),
    };
    tracing::warn!(
        "no origins yet: every stream is refused until one is added.\n{register}\
         Or list a static origin (nginx-rtmp, SRS without heartbeat) in the TOML file given \
         with --config:\n\
         \x20   [[origins]]\n\
         \x20   name = \"origin1\"\n\
         \x20   ip = \"10.0.0.5\"\n\
         \x20   rtmp = 1935\n\
         \x20   http = 8080\n\
         \x20   api = 1985\n\
         or set PROXY_DEFAULT_BACKEND_ENABLED=on with PROXY_DEFAULT_BACKEND_IP and its ports."
    );
}

async fn build_balancer(config: &Config) -> anyhow::Result<Arc<dyn Balancer>> {
    match &config.balancer {
        BalancerKind::Memory => {
            tracing::info!(strategy = ?config.strategy, "memory balancer");
            Ok(Arc::new(lb_memory::MemoryBalancer::new(
                config.balancer_config,
                config.strategy.build(),
            )))
        }
        BalancerKind::Redis(redis) => {
            let settings = lb_redis::RedisBalancerConfig {
                url: redis.url.clone(),
                host: redis.host.clone(),
                port: redis.port,
                password: redis.password.clone(),
                db: redis.db,
                ..lb_redis::RedisBalancerConfig::default()
            };
            let shown = settings
                .url
                .clone()
                .unwrap_or_else(|| format!("{}:{}/{}", settings.host, settings.port, settings.db));
            // Redis may come up after the proxy (a fleet starting together): wait for it
            // rather than exit, saying so.
            let mut delay = Duration::from_millis(250);
            loop {
                match lb_redis::RedisBalancer::connect(
                    settings.clone(),
                    config.balancer_config,
                    config.strategy.build(),
                )
                .await
                {
                    Ok(balancer) => {
                        tracing::info!(redis = %shown, strategy = ?config.strategy, "redis balancer");
                        return Ok(Arc::new(balancer));
                    }
                    Err(e) => {
                        tracing::warn!(redis = %shown, "cannot reach Redis yet ({e}); retrying in {delay:?}");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
    }
}

/// Descriptors the proxy needs beyond two per client connection (its own and the
/// origin's): listeners, the System API's connections, probes, Redis, logs.
const DESCRIPTOR_OVERHEAD: u64 = 512;

/// Raises the soft limit on open file descriptors to the hard one, and warns when the
/// configured connection limit cannot fit in it: running out of descriptors turns every
/// client beyond it away, whatever the origins' health.
fn raise_descriptor_limit(config: &Config) {
    let wanted = 2 * config.max_connections as u64 + DESCRIPTOR_OVERHEAD;
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!("cannot read or raise the open-file limit: {e}");
            return;
        }
    };
    if limit < wanted {
        tracing::warn!(
            limit,
            wanted,
            max_connections = config.max_connections,
            "the open-file limit is too low for the connection limit (each client needs two descriptors, one to its origin): raise it (ulimit -n, LimitNOFILE) or lower PROXY_MAX_CONNECTIONS"
        );
    } else {
        tracing::debug!(limit, "open-file limit");
    }
}

/// Binds a TCP listener and says where, in a line tests and operators can rely on.
pub async fn bind_tcp(name: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {name} on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!("listening name={name} addr={local}");
    Ok(listener)
}

/// Receive and send buffer asked for on UDP listeners: one socket carries every client's
/// media, and the kernel's default (about 200 KiB) drops datagrams at a few tens of Mbit/s.
/// The kernel caps it at `net.core.rmem_max` / `wmem_max`.
const UDP_BUFFER: usize = 8 * 1024 * 1024;

/// Binds a UDP socket with large buffers and says where, like [`bind_tcp`].
pub async fn bind_udp(name: &str, addr: SocketAddr) -> anyhow::Result<UdpSocket> {
    let socket = UdpSocket::bind(addr)
        .await
        .with_context(|| format!("binding {name} on {addr}"))?;
    let sock = socket2::SockRef::from(&socket);
    if let Err(e) = sock
        .set_recv_buffer_size(UDP_BUFFER)
        .and_then(|()| sock.set_send_buffer_size(UDP_BUFFER))
    {
        tracing::warn!("cannot enlarge the {name} socket buffers: {e}");
    }
    let granted = sock.recv_buffer_size().unwrap_or(0);
    let local = socket.local_addr()?;
    tracing::info!("listening name={name} addr={local}");
    if granted < UDP_BUFFER {
        tracing::info!(
            name,
            granted,
            "UDP receive buffer capped by the kernel; raise net.core.rmem_max for high bitrates"
        );
    }
    Ok(socket)
}

/// Watches SIGTERM and SIGINT from the call on (so that a signal sent once "ready" is
/// logged cannot meet the default action, which kills the process), and resolves at the
/// first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                (term, int) => {
                    let e = term.err().or(int.err()).map(|e| e.to_string());
                    tracing::warn!("cannot watch SIGTERM/SIGINT ({e:?}); waiting for Ctrl-C");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
