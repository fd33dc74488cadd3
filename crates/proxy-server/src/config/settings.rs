//! The settings table. One row per setting gives its key (the TOML key, the flag with `-`
//! for `_`, and its field in [`Settings`]), environment variable, default, parser and
//! help; [`SETTINGS`] and [`Settings::read`] are both generated from it, so they cannot
//! disagree, and code reads a value through its typed field: a misspelt setting does not
//! compile.
//!
//! A row's parser is the one place its value is checked and normalised (the idle timeout
//! raised to 1 s, a budget in MiB turned into bytes, `0` meaning "no limit"...): what
//! reaches [`super::Config`] needs no clamping where it is used.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lb_core::StrategyKind;

use super::layers::{Layers, Problems};
use super::parse::*;
use super::{ProxyProtocolLegs, ProxyProtocolVersion};
use crate::limits::TrustedProxies;

/// One setting, as `--help` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The TOML key (`rtmp_server`).
    pub key: &'static str,
    /// The environment variable, also read from `.env` (`PROXY_RTMP_SERVER`).
    pub env: &'static str,
    /// The value when no layer sets one.
    pub default: &'static str,
    /// What the setting does.
    pub help: &'static str,
}

impl Setting {
    /// The command-line flag, without its dashes (`rtmp-server`).
    pub fn flag(&self) -> String {
        self.key.replace('_', "-")
    }
}

macro_rules! settings {
    ($(
        $key:ident: $ty:ty {
            env: $env:literal, default: $default:literal, parse: $parse:expr,
            help: $help:literal $(,)?
        }
    )*) => {
        /// Every setting, in `--help` order.
        pub const SETTINGS: &[Setting] = &[$(
            Setting { key: stringify!($key), env: $env, default: $default, help: $help },
        )*];

        /// Every setting's value, parsed and normalised by its row's parser.
        pub struct Settings {
            $(#[doc = $help] pub $key: $ty,)*
        }

        impl Settings {
            /// Reads every setting from the most important layer that sets it. Each bad
            /// value is added to `problems`; `None` if there was any.
            pub fn read(layers: &Layers, problems: &mut Problems) -> Option<Settings> {
                $(
                    let setting =
                        Setting { key: stringify!($key), env: $env, default: $default, help: $help };
                    let $key = layers.read(&setting, $parse, problems);
                )*
                match ($($key,)*) {
                    ($(Some($key),)*) => Some(Settings { $($key,)* }),
                    _ => None,
                }
            }
        }
    };
}

settings! {
    rtmp_server: Option<SocketAddr> {
        env: "PROXY_RTMP_SERVER", default: "11935", parse: listen_any,
        help: "RTMP listen port or host:port (off to disable)",
    }
    http_server: Option<SocketAddr> {
        env: "PROXY_HTTP_SERVER", default: "18080", parse: listen_any,
        help: "HTTP-FLV/TS/HLS listen port or host:port",
    }
    http_api: Option<SocketAddr> {
        env: "PROXY_HTTP_API", default: "11985", parse: listen_any,
        help: "WHIP/WHEP HTTP API listen port or host:port",
    }
    webrtc_server: Option<SocketAddr> {
        env: "PROXY_WEBRTC_SERVER", default: "18000", parse: listen_any,
        help: "WebRTC UDP media listen port or host:port",
    }
    srt_server: Option<SocketAddr> {
        env: "PROXY_SRT_SERVER", default: "20080", parse: listen_any,
        help: "SRT UDP listen port or host:port",
    }
    system_api: Option<SocketAddr> {
        env: "PROXY_SYSTEM_API", default: "12025", parse: listen_loopback,
        help: "System API (registration, status); a bare port binds 127.0.0.1",
    }
    static_files: Option<PathBuf> {
        env: "PROXY_STATIC_FILES", default: "./trunk/research", parse: optional_path,
        help: "directory served for paths no stream claims (players)",
    }
    load_balancer_type: BalancerType {
        env: "PROXY_LOAD_BALANCER_TYPE", default: "memory", parse: balancer_type,
        help: "memory (one proxy) or redis (a fleet)",
    }
    redis_host: String {
        env: "PROXY_REDIS_HOST", default: "127.0.0.1", parse: text,
        help: "Redis host",
    }
    redis_port: u16 {
        env: "PROXY_REDIS_PORT", default: "6379", parse: port,
        help: "Redis port",
    }
    redis_password: Option<String> {
        env: "PROXY_REDIS_PASSWORD", default: "", parse: optional_text,
        help: "Redis password",
    }
    redis_db: u8 {
        env: "PROXY_REDIS_DB", default: "0", parse: database,
        help: "Redis database number",
    }
    grace_quit_timeout: Duration {
        env: "PROXY_GRACE_QUIT_TIMEOUT", default: "20s", parse: duration,
        help: "on SIGTERM, how long live sessions may run on",
    }
    force_quit_timeout: Duration {
        env: "PROXY_FORCE_QUIT_TIMEOUT", default: "30s", parse: duration,
        help: "on SIGTERM, when the process exits regardless",
    }
    default_backend_enabled: bool {
        env: "PROXY_DEFAULT_BACKEND_ENABLED", default: "off", parse: switch,
        help: "add the default backend as a static origin",
    }
    default_backend_ip: String {
        env: "PROXY_DEFAULT_BACKEND_IP", default: "127.0.0.1", parse: host,
        help: "default backend address",
    }
    default_backend_rtmp: String {
        env: "PROXY_DEFAULT_BACKEND_RTMP", default: "1935", parse: endpoint,
        help: "default backend RTMP port",
    }
    default_backend_http: String {
        env: "PROXY_DEFAULT_BACKEND_HTTP", default: "8080", parse: endpoint,
        help: "default backend HTTP port",
    }
    default_backend_api: String {
        env: "PROXY_DEFAULT_BACKEND_API", default: "1985", parse: endpoint,
        help: "default backend HTTP API port",
    }
    default_backend_rtc: String {
        env: "PROXY_DEFAULT_BACKEND_RTC", default: "8000", parse: endpoint,
        help: "default backend WebRTC UDP port",
    }
    default_backend_srt: String {
        env: "PROXY_DEFAULT_BACKEND_SRT", default: "10080", parse: endpoint,
        help: "default backend SRT port",
    }

    // Beyond the reference.
    redis_url: Option<String> {
        env: "PROXY_REDIS_URL", default: "", parse: optional_text,
        help: "Redis URL (redis://, rediss://, redis-sentinel://...), overrides \
            host/port/password/db",
    }
    system_api_token: Option<String> {
        env: "PROXY_SYSTEM_API_TOKEN", default: "", parse: optional_text,
        help: "bearer token (or ?token=) required by the System API's write endpoints",
    }
    lb_strategy: StrategyKind {
        env: "PROXY_LB_STRATEGY", default: "random", parse: strategy,
        help: "placement of new streams: random, round-robin, least-streams, least-load (SRS \
            heartbeat summaries), weighted",
    }
    origin_ttl: Duration {
        env: "PROXY_ORIGIN_TTL", default: "300s", parse: duration,
        help: "a registered origin is alive while its last heartbeat is younger",
    }
    session_ttl: Duration {
        env: "PROXY_SESSION_TTL", default: "120s", parse: duration,
        help: "HLS and WebRTC sessions expire after this long unused",
    }
    placement_ttl: Duration {
        env: "PROXY_PLACEMENT_TTL", default: "1h", parse: duration,
        help: "a stream's placement is forgotten after this long with no session",
    }
    tentative_ttl: Duration {
        env: "PROXY_TENTATIVE_TTL", default: "30s", parse: tentative_ttl,
        help: "a placement made by a player (no publisher yet) holds no capacity and is forgotten \
            after this long with no session; one whose origin answers that it has no such \
            stream is forgotten at once",
    }
    max_connections: usize {
        env: "PROXY_MAX_CONNECTIONS", default: "10000", parse: positive,
        help: "most client connections (all TCP listeners together) at once",
    }
    handshake_timeout: Duration {
        env: "PROXY_HANDSHAKE_TIMEOUT", default: "10s", parse: nonzero_duration,
        help: "time a client has to say which stream it wants",
    }
    origin_connect_timeout: Duration {
        env: "PROXY_ORIGIN_CONNECT_TIMEOUT", default: "5s", parse: nonzero_duration,
        help: "time an origin has to accept and answer the proxy",
    }
    idle_timeout: Duration {
        env: "PROXY_IDLE_TIMEOUT", default: "30s", parse: idle_timeout,
        help: "a relay is closed when this long passes without traffic (for UDP relays, whose \
            peers send keep-alives, when either side falls silent); at least 1s",
    }
    rtc_candidate: Option<String> {
        env: "PROXY_RTC_CANDIDATE", default: "", parse: optional_text,
        help: "IP or host put in WebRTC answers' candidates (default: the WebRTC listen IP, or \
            127.0.0.1 if it is a wildcard)",
    }
    rtc_tcp_candidates: bool {
        env: "PROXY_RTC_TCP_CANDIDATES", default: "off", parse: switch,
        help: "keep the origin's TCP candidates in WebRTC answers (the proxy relays UDP only)",
    }
    max_connections_per_ip: Option<usize> {
        env: "PROXY_MAX_CONNECTIONS_PER_IP", default: "1000", parse: limit,
        help: "most connections and sessions (every listener) from one client IP at once; 0 for no \
            limit",
    }
    health_check_interval: Option<Duration> {
        env: "PROXY_HEALTH_CHECK_INTERVAL", default: "2s", parse: probe_interval,
        help: "how often each origin's TCP endpoints are probed (off to disable probes)",
    }
    health_check_timeout: Duration {
        env: "PROXY_HEALTH_CHECK_TIMEOUT", default: "1s", parse: nonzero_duration,
        help: "time an origin has to accept a probe's connection",
    }
    health_check_rise: u32 {
        env: "PROXY_HEALTH_CHECK_RISE", default: "2", parse: threshold,
        help: "consecutive passing probes that bring a down origin back",
    }
    health_check_fall: u32 {
        env: "PROXY_HEALTH_CHECK_FALL", default: "3", parse: threshold,
        help: "consecutive failing probes that take an origin down",
    }
    health_check_registered: bool {
        env: "PROXY_HEALTH_CHECK_REGISTERED", default: "off", parse: switch,
        help: "probe registered origins too (static origins are always probed)",
    }
    health_check_cut_sessions: bool {
        env: "PROXY_HEALTH_CHECK_CUT_SESSIONS", default: "on", parse: switch,
        help: "when probes take an origin down, end the sessions relayed to it so that their \
            clients reconnect elsewhere",
    }
    suspect_for: Duration {
        env: "PROXY_SUSPECT_FOR", default: "10s", parse: duration,
        help: "an origin that refuses a connection is held down this long (0s: never)",
    }
    origin_connect_attempts: usize {
        env: "PROXY_ORIGIN_CONNECT_ATTEMPTS", default: "3", parse: connect_attempts,
        help: "origins tried for one client before it sees an error",
    }
    origin_proxy_protocol: ProxyProtocolLegs {
        env: "PROXY_ORIGIN_PROXY_PROTOCOL", default: "off", parse: proxy_protocol_legs,
        help: "send a PROXY protocol header to origins on these TCP legs: off, or a list of rtmp, \
            http, api (all: every one)",
    }
    trusted_proxies: TrustedProxies {
        env: "PROXY_TRUSTED_PROXIES", default: "", parse: trusted_proxies,
        help: "addresses or blocks (10.0.0.0/8, 2001:db8::/32) of proxies in front of this one, \
            whose X-Forwarded-For is kept; anyone else's is replaced by its address",
    }
    origin_proxy_protocol_version: ProxyProtocolVersion {
        env: "PROXY_ORIGIN_PROXY_PROTOCOL_VERSION", default: "2", parse: proxy_protocol_version,
        help: "PROXY protocol version sent to origins: 2 (binary), or 1 (text; nginx-rtmp reads \
            only this one)",
    }
    rtmps_server: Option<SocketAddr> {
        env: "PROXY_RTMPS_SERVER", default: "off", parse: listen_any,
        help: "RTMPS (RTMP over TLS) listen port or host:port, into the RTMP front-end; needs \
            PROXY_TLS_CERT and PROXY_TLS_KEY",
    }
    https_server: Option<SocketAddr> {
        env: "PROXY_HTTPS_SERVER", default: "off", parse: listen_any,
        help: "HTTPS (HTTP/1.1 and HTTP/2) HTTP-FLV/TS/HLS listen port or host:port",
    }
    https_api: Option<SocketAddr> {
        env: "PROXY_HTTPS_API", default: "off", parse: listen_any,
        help: "WHIP/WHEP over HTTPS listen port or host:port",
    }
    tls_cert: Option<PathBuf> {
        env: "PROXY_TLS_CERT", default: "", parse: optional_path,
        help: "PEM certificate chain (leaf first) of the TLS listeners; reloaded on SIGHUP and \
            when the file changes",
    }
    tls_key: Option<PathBuf> {
        env: "PROXY_TLS_KEY", default: "", parse: optional_path,
        help: "PEM private key (RSA, ECDSA or Ed25519) of PROXY_TLS_CERT",
    }
    rtmp_buffer_budget: Option<usize> {
        env: "PROXY_RTMP_BUFFER_BUDGET", default: "256", parse: mebibytes,
        help: "MiB of partial messages and pending output all RTMP connections together may hold \
            beyond each one's first 256 KiB; a connection needing more is closed (0: no budget)",
    }
    fleet_secret: Option<String> {
        env: "PROXY_FLEET_SECRET", default: "", parse: optional_text,
        help: "secret shared by a fleet's proxies: it signs HLS affinity tokens and WHIP/WHEP \
            resource URLs so that any proxy of the fleet routes them without a store lookup \
            (empty: tokens are stored in the balancer, as before)",
    }
    fleet_secret_previous: Option<String> {
        env: "PROXY_FLEET_SECRET_PREVIOUS", default: "", parse: optional_text,
        help: "during a rotation, the fleet's previous secret: tokens it signed are still \
            accepted, new ones are signed with PROXY_FLEET_SECRET",
    }
    fleet_token_ttl: Duration {
        env: "PROXY_FLEET_TOKEN_TTL", default: "10m", parse: nonzero_duration,
        help: "signed HLS tokens expire after this long (each playlist fetch renews them); an \
            expired token on a playlist is placed again, on a segment it is refused",
    }
    log_filter: Option<String> {
        env: "PROXY_LOG_FILTER", default: "", parse: log_filter,
        help: "which logs to keep, as RUST_LOG says it (info, proxy_server=debug,warn...); empty: \
            RUST_LOG, else info. A reload applies it",
    }
    edge: bool {
        env: "PROXY_EDGE", default: "off", parse: switch,
        help: "edge mode: RTMP and HTTP-FLV players of a stream share one upstream RTMP pull, \
            HTTP-TS players one TS pull, fanned out with a GOP cache; HLS is cached",
    }
    edge_cache_size: usize {
        env: "PROXY_EDGE_CACHE_SIZE", default: "256MiB", parse: byte_size,
        help: "in edge mode, bytes of HLS playlists, segments, parts and keys kept in memory \
            (K, M, G suffixes: binary multiples); one response is cached only up to an eighth \
            of it",
    }
    edge_linger: Duration {
        env: "PROXY_EDGE_LINGER", default: "5s", parse: duration,
        help: "in edge mode, how long a stream's upstream pull stays open after its last viewer \
            left",
    }
    edge_merge_writes: Duration {
        env: "PROXY_EDGE_MERGE_WRITES", default: "200ms", parse: nonzero_duration,
        help: "in edge mode, viewers are woken for new media at most this often and write what \
            arrived meanwhile at once: shorter is lower latency, longer costs less CPU per viewer",
    }
}
