//! Configuration: the reference's `PROXY_*` environment variables (also read from a `.env`
//! file), a TOML file and command-line flags, in the precedence flag > env > .env > file >
//! default. Every setting is one row of [`SETTINGS`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use lb_core::{BalancerConfig, Endpoint, Origin, OriginId, OriginSource, StrategyKind, Transport};
use serde::Deserialize;

/// One setting: its TOML key and flag (`rtmp_server`, `--rtmp-server`), environment
/// variable, default and help.
pub struct Setting {
    pub key: &'static str,
    pub env: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

const fn s(
    key: &'static str,
    env: &'static str,
    default: &'static str,
    help: &'static str,
) -> Setting {
    Setting {
        key,
        env,
        default,
        help,
    }
}

/// Every setting. The first block is the reference's, with its defaults.
pub const SETTINGS: &[Setting] = &[
    s("rtmp_server", "PROXY_RTMP_SERVER", "11935", "RTMP listen port or host:port (off to disable)"),
    s("http_server", "PROXY_HTTP_SERVER", "18080", "HTTP-FLV/TS/HLS listen port or host:port"),
    s("http_api", "PROXY_HTTP_API", "11985", "WHIP/WHEP HTTP API listen port or host:port"),
    s("webrtc_server", "PROXY_WEBRTC_SERVER", "18000", "WebRTC UDP media listen port or host:port"),
    s("srt_server", "PROXY_SRT_SERVER", "20080", "SRT UDP listen port or host:port"),
    s("system_api", "PROXY_SYSTEM_API", "12025", "System API (registration, status); a bare port binds 127.0.0.1"),
    s("static_files", "PROXY_STATIC_FILES", "./trunk/research", "directory served for paths no stream claims (players)"),
    s("load_balancer_type", "PROXY_LOAD_BALANCER_TYPE", "memory", "memory (one proxy) or redis (a fleet)"),
    s("redis_host", "PROXY_REDIS_HOST", "127.0.0.1", "Redis host"),
    s("redis_port", "PROXY_REDIS_PORT", "6379", "Redis port"),
    s("redis_password", "PROXY_REDIS_PASSWORD", "", "Redis password"),
    s("redis_db", "PROXY_REDIS_DB", "0", "Redis database number"),
    s("grace_quit_timeout", "PROXY_GRACE_QUIT_TIMEOUT", "20s", "on SIGTERM, how long live sessions may run on"),
    s("force_quit_timeout", "PROXY_FORCE_QUIT_TIMEOUT", "30s", "on SIGTERM, when the process exits regardless"),
    s("default_backend_enabled", "PROXY_DEFAULT_BACKEND_ENABLED", "off", "add the default backend as a static origin"),
    s("default_backend_ip", "PROXY_DEFAULT_BACKEND_IP", "127.0.0.1", "default backend address"),
    s("default_backend_rtmp", "PROXY_DEFAULT_BACKEND_RTMP", "1935", "default backend RTMP port"),
    s("default_backend_http", "PROXY_DEFAULT_BACKEND_HTTP", "8080", "default backend HTTP port"),
    s("default_backend_api", "PROXY_DEFAULT_BACKEND_API", "1985", "default backend HTTP API port"),
    s("default_backend_rtc", "PROXY_DEFAULT_BACKEND_RTC", "8000", "default backend WebRTC UDP port"),
    s("default_backend_srt", "PROXY_DEFAULT_BACKEND_SRT", "10080", "default backend SRT port"),
    // Beyond the reference.
    s("redis_url", "PROXY_REDIS_URL", "", "Redis URL (redis://, rediss://, redis-sentinel://...), overrides host/port/password/db"),
    s("system_api_token", "PROXY_SYSTEM_API_TOKEN", "", "bearer token (or ?token=) required by the System API's write endpoints"),
    s("lb_strategy", "PROXY_LB_STRATEGY", "random", "placement of new streams: random, round-robin, least-streams, least-load (SRS heartbeat summaries), weighted"),
    s("origin_ttl", "PROXY_ORIGIN_TTL", "300s", "a registered origin is alive while its last heartbeat is younger"),
    s("session_ttl", "PROXY_SESSION_TTL", "120s", "HLS and WebRTC sessions expire after this long unused"),
    s("placement_ttl", "PROXY_PLACEMENT_TTL", "1h", "a stream's placement is forgotten after this long with no session"),
    s("tentative_ttl", "PROXY_TENTATIVE_TTL", "30s", "a placement made by a player (no publisher yet) holds no capacity and is forgotten after this long with no session; one whose origin answers that it has no such stream is forgotten at once"),
    s("max_connections", "PROXY_MAX_CONNECTIONS", "10000", "most client connections (all TCP listeners together) at once"),
    s("handshake_timeout", "PROXY_HANDSHAKE_TIMEOUT", "10s", "time a client has to say which stream it wants"),
    s("origin_connect_timeout", "PROXY_ORIGIN_CONNECT_TIMEOUT", "5s", "time an origin has to accept and answer the proxy"),
    s("idle_timeout", "PROXY_IDLE_TIMEOUT", "30s", "a relay is closed when this long passes without traffic (for UDP relays, whose peers send keep-alives, when either side falls silent)"),
    s("rtc_candidate", "PROXY_RTC_CANDIDATE", "", "IP or host put in WebRTC answers' candidates (default: the WebRTC listen IP, or 127.0.0.1 if it is a wildcard)"),
    s("rtc_tcp_candidates", "PROXY_RTC_TCP_CANDIDATES", "off", "keep the origin's TCP candidates in WebRTC answers (the proxy relays UDP only)"),
    s("max_connections_per_ip", "PROXY_MAX_CONNECTIONS_PER_IP", "1000", "most connections and sessions (every listener) from one client IP at once; 0 for no limit"),
    s("health_check_interval", "PROXY_HEALTH_CHECK_INTERVAL", "2s", "how often each origin's TCP endpoints are probed (off to disable probes)"),
    s("health_check_timeout", "PROXY_HEALTH_CHECK_TIMEOUT", "1s", "time an origin has to accept a probe's connection"),
    s("health_check_rise", "PROXY_HEALTH_CHECK_RISE", "2", "consecutive passing probes that bring a down origin back"),
    s("health_check_fall", "PROXY_HEALTH_CHECK_FALL", "3", "consecutive failing probes that take an origin down"),
    s("health_check_registered", "PROXY_HEALTH_CHECK_REGISTERED", "off", "probe registered origins too (static origins are always probed)"),
    s("health_check_cut_sessions", "PROXY_HEALTH_CHECK_CUT_SESSIONS", "on", "when probes take an origin down, end the sessions relayed to it so that their clients reconnect elsewhere"),
    s("suspect_for", "PROXY_SUSPECT_FOR", "10s", "an origin that refuses a connection is held down this long (0s: never)"),
    s("origin_connect_attempts", "PROXY_ORIGIN_CONNECT_ATTEMPTS", "3", "origins tried for one client before it sees an error"),
    s("origin_proxy_protocol", "PROXY_ORIGIN_PROXY_PROTOCOL", "off", "send a PROXY protocol header to origins on these TCP legs: off, or a list of rtmp, http, api (all: every one)"),
    s("trusted_proxies", "PROXY_TRUSTED_PROXIES", "", "addresses or blocks (10.0.0.0/8, 2001:db8::/32) of proxies in front of this one, whose X-Forwarded-For is kept; anyone else's is replaced by its address"),
    s("origin_proxy_protocol_version", "PROXY_ORIGIN_PROXY_PROTOCOL_VERSION", "2", "PROXY protocol version sent to origins: 2 (binary), or 1 (text; nginx-rtmp reads only this one)"),
    s("rtmp_buffer_budget", "PROXY_RTMP_BUFFER_BUDGET", "256", "MiB of partial messages and pending output all RTMP connections together may hold beyond each one's first 256 KiB; a connection needing more is closed (0: no budget)"),
];

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub rtmp_listen: Option<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
    pub http_api_listen: Option<SocketAddr>,
    pub webrtc_listen: Option<SocketAddr>,
    pub srt_listen: Option<SocketAddr>,
    pub system_api_listen: Option<SocketAddr>,
    pub static_files: Option<PathBuf>,
    pub balancer: BalancerKind,
    pub balancer_config: BalancerConfig,
    pub strategy: StrategyKind,
    pub grace_quit: Duration,
    pub force_quit: Duration,
    pub system_api_token: Option<String>,
    /// Origins from the file and the default backend, with whether each starts draining.
    pub static_origins: Vec<(Origin, bool)>,
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub origin_connect_timeout: Duration,
    pub idle_timeout: Duration,
    /// The address WebRTC answers name, if set.
    pub rtc_candidate: Option<String>,
    pub rtc_tcp_candidates: bool,
    /// Most connections and sessions from one client IP at once; `None`: no limit.
    pub max_connections_per_ip: Option<usize>,
    /// Active probes of the origins' TCP endpoints.
    pub health_check: HealthCheck,
    /// How long an origin that refused a connection is held down; zero: never.
    pub suspect_for: Duration,
    /// Origins tried for one client before it sees an error (at least 1).
    pub origin_connect_attempts: usize,
    /// The TCP legs to origins that start with a PROXY protocol v2 header.
    pub origin_proxy_protocol: ProxyProtocolLegs,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: crate::limits::TrustedProxies,
    /// Bytes all RTMP connections may buffer together beyond their free share; `None`: no
    /// budget.
    pub rtmp_buffer_budget: Option<usize>,
}

/// Active health checks, as HAProxy does them: a TCP connect to each of an origin's TCP
/// endpoints every `interval`; `fall` consecutive failures take it down, `rise`
/// consecutive passes bring it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCheck {
    /// Time between probes; `None` disables probing.
    pub interval: Option<Duration>,
    /// Time a probe's connect may take.
    pub timeout: Duration,
    /// Consecutive passes to come back up (at least 1).
    pub rise: u32,
    /// Consecutive failures to go down (at least 1).
    pub fall: u32,
    /// Probe registered origins too, not only static ones.
    pub registered: bool,
    /// End the sessions relayed to an origin when probes take it down (HAProxy's
    /// `on-marked-down shutdown-sessions`).
    pub cut_sessions: bool,
}

/// Which TCP legs towards origins carry a PROXY protocol header, and in which version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyProtocolLegs {
    /// The header's version.
    pub version: ProxyProtocolVersion,
    /// RTMP (the only way an RTMP origin learns the client's address).
    pub rtmp: bool,
    /// HTTP-FLV/TS/HLS.
    pub http: bool,
    /// WHIP/WHEP signalling.
    pub api: bool,
}

/// The PROXY protocol's two header formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProxyProtocolVersion {
    /// The text header (`PROXY TCP4 …\r\n`).
    V1,
    /// The binary header.
    #[default]
    V2,
}

/// Which balancer to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BalancerKind {
    Memory,
    Redis(RedisSettings),
}

/// Where Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    pub url: Option<String>,
    pub host: String,
    pub port: u16,
    pub password: Option<String>,
    pub db: u8,
}

/// The layers a value can come from, most important first.
struct Layers {
    flags: HashMap<String, String>,
    env: HashMap<String, String>,
    dotenv: HashMap<String, String>,
    file: HashMap<String, String>,
}

impl Layers {
    /// The value of a setting and where it came from, for error messages.
    fn get(&self, setting: &Setting) -> (String, String) {
        if let Some(v) = self.flags.get(setting.key) {
            return (v.clone(), format!("--{}", flag_name(setting.key)));
        }
        if let Some(v) = self.env.get(setting.env).filter(|v| !v.is_empty()) {
            return (v.clone(), setting.env.to_owned());
        }
        if let Some(v) = self.dotenv.get(setting.env).filter(|v| !v.is_empty()) {
            return (v.clone(), format!("{} in .env", setting.env));
        }
        if let Some(v) = self.file.get(setting.key) {
            return (v.clone(), format!("`{}` in the config file", setting.key));
        }
        (
            setting.default.to_owned(),
            format!("default of {}", setting.env),
        )
    }
}

fn flag_name(key: &str) -> String {
    key.replace('_', "-")
}

/// The command line: `--config FILE` and one flag per setting.
pub fn command() -> clap::Command {
    let mut cmd = clap::Command::new("proxy-server")
        .version(env!("CARGO_PKG_VERSION"))
        .about(
            "Media-streaming proxy with a built-in load balancer, in front of a fleet of origins",
        )
        .arg(
            clap::Arg::new("config")
                .long("config")
                .value_name("FILE")
                .help("TOML configuration file"),
        );
    for setting in SETTINGS {
        cmd = cmd.arg(
            clap::Arg::new(setting.key)
                .long(flag_name(setting.key))
                .value_name("VALUE")
                .help(format!(
                    "{} [env: {}] [default: {}]",
                    setting.help, setting.env, setting.default
                )),
        );
    }
    cmd
}

/// Reads the configuration from the command line, the process environment, `.env` in
/// the working directory and the TOML file named by `--config`.
pub fn load(args: impl IntoIterator<Item = String>) -> anyhow::Result<Config> {
    let matches = command().try_get_matches_from(args)?;
    let flags = SETTINGS
        .iter()
        .filter_map(|s| {
            matches
                .get_one::<String>(s.key)
                .map(|v| (s.key.to_owned(), v.clone()))
        })
        .collect();
    let dotenv = match std::fs::read_to_string(".env") {
        Ok(text) => parse_dotenv(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
        Err(e) => return Err(e).context("reading .env"),
    };
    let (file, origins) = match matches.get_one::<String>("config") {
        Some(path) => read_file(Path::new(path))?,
        None => (HashMap::new(), Vec::new()),
    };
    let layers = Layers {
        flags,
        env: std::env::vars().collect(),
        dotenv,
        file,
    };
    resolve(&layers, origins)
}

fn setting(key: &str) -> &'static Setting {
    SETTINGS
        .iter()
        .find(|s| s.key == key)
        .unwrap_or_else(|| unreachable!("setting {key} is in the table"))
}

fn resolve(layers: &Layers, file_origins: Vec<StaticOrigin>) -> anyhow::Result<Config> {
    // Each parse error names the setting, its value and where the value came from.
    let value = |key: &str| layers.get(setting(key));
    let parse = |key: &str, f: &dyn Fn(&str) -> Result<(), String>| -> anyhow::Result<String> {
        let (v, source) = value(key);
        f(&v).map_err(|why| anyhow::anyhow!("bad value {v:?} for {source}: {why}"))?;
        Ok(v)
    };
    let listen = |key: &str, wildcard: IpAddr| -> anyhow::Result<Option<SocketAddr>> {
        let v = parse(key, &|v| parse_listen(v, wildcard).map(|_| ()))?;
        Ok(parse_listen(&v, wildcard).ok().flatten())
    };
    let duration = |key: &str| -> anyhow::Result<Duration> {
        let v = parse(key, &|v| parse_duration(v).map(|_| ()))?;
        parse_duration(&v).map_err(anyhow::Error::msg)
    };
    let port = |key: &str| -> anyhow::Result<u16> {
        let v = parse(key, &|v| parse_port(v).map(|_| ()))?;
        parse_port(&v).map_err(anyhow::Error::msg)
    };
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);

    let balancer = match parse("load_balancer_type", &|v| match v {
        "memory" | "redis" => Ok(()),
        _ => Err("expected memory or redis".into()),
    })?
    .as_str()
    {
        "redis" => BalancerKind::Redis(RedisSettings {
            url: Some(value("redis_url").0).filter(|u| !u.is_empty()),
            host: value("redis_host").0,
            port: port("redis_port")?,
            password: Some(value("redis_password").0).filter(|p| !p.is_empty()),
            db: parse("redis_db", &|v| {
                v.parse::<u8>()
                    .map(|_| ())
                    .map_err(|_| "expected a database number 0-255".into())
            })?
            .parse()
            .unwrap_or(0),
        }),
        _ => BalancerKind::Memory,
    };
    let strategy = parse("lb_strategy", &|v| v.parse::<StrategyKind>().map(|_| ()))?
        .parse()
        .unwrap_or_default();
    let balancer_config = BalancerConfig {
        origin_ttl: duration("origin_ttl")?,
        session_ttl: duration("session_ttl")?,
        placement_ttl: duration("placement_ttl")?,
        tentative_ttl: duration("tentative_ttl")?.max(Duration::from_millis(100)),
    };
    let grace_quit = duration("grace_quit_timeout")?;
    let force_quit = duration("force_quit_timeout")?;
    if force_quit < grace_quit {
        bail!("force_quit_timeout ({force_quit:?}) must not be shorter than grace_quit_timeout ({grace_quit:?})");
    }

    let mut static_origins = Vec::new();
    for origin in file_origins {
        let draining = origin.draining;
        static_origins.push((origin.into_origin()?, draining));
    }
    let default_enabled = parse("default_backend_enabled", &|v| parse_bool(v).map(|_| ()))?;
    if parse_bool(&default_enabled).unwrap_or(false) {
        let ip = value("default_backend_ip").0;
        let ports = [
            "default_backend_rtmp",
            "default_backend_http",
            "default_backend_api",
            "default_backend_rtc",
            "default_backend_srt",
        ]
        .map(|k| value(k).0);
        let origin = StaticOrigin {
            name: "default".into(),
            ip: Some(ip),
            rtmp: vec![ports[0].clone()],
            http: vec![ports[1].clone()],
            api: vec![ports[2].clone()],
            rtc: vec![format!("udp://:{}", ports[3].trim_start_matches("udp://:"))],
            srt: vec![format!("udp://:{}", ports[4].trim_start_matches("udp://:"))],
            ..StaticOrigin::default()
        };
        static_origins.push((
            origin.into_origin().context("PROXY_DEFAULT_BACKEND_*")?,
            false,
        ));
    }

    let static_files =
        Some(PathBuf::from(value("static_files").0)).filter(|p| !p.as_os_str().is_empty());
    let max_connections = parse("max_connections", &|v| match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(()),
        _ => Err("expected a positive number".into()),
    })?
    .parse()
    .unwrap_or(1);
    let rtc_tcp_candidates = parse("rtc_tcp_candidates", &|v| parse_bool(v).map(|_| ()))?;
    let count = |key: &str, min: u64| -> anyhow::Result<u64> {
        let v = parse(key, &|v| match v.trim().parse::<u64>() {
            Ok(n) if n >= min => Ok(()),
            _ => Err(format!("expected a whole number of at least {min}")),
        })?;
        Ok(v.trim().parse().unwrap_or(min))
    };
    let max_connections_per_ip =
        Some(count("max_connections_per_ip", 0)? as usize).filter(|n| *n > 0);
    let interval = parse("health_check_interval", &|v| {
        if v.trim().eq_ignore_ascii_case("off") {
            return Ok(());
        }
        match parse_duration(v) {
            Ok(d) if !d.is_zero() => Ok(()),
            Ok(_) => Err("expected a duration above zero, or off".into()),
            Err(e) => Err(e),
        }
    })?;
    let health_registered = parse("health_check_registered", &|v| parse_bool(v).map(|_| ()))?;
    let cut_sessions = parse("health_check_cut_sessions", &|v| parse_bool(v).map(|_| ()))?;
    let health_check = HealthCheck {
        interval: parse_duration(&interval).ok(),
        timeout: duration("health_check_timeout")?,
        rise: count("health_check_rise", 1)?.min(u64::from(u32::MAX)) as u32,
        fall: count("health_check_fall", 1)?.min(u64::from(u32::MAX)) as u32,
        registered: parse_bool(&health_registered).unwrap_or(false),
        cut_sessions: parse_bool(&cut_sessions).unwrap_or(true),
    };
    let trusted_proxies = parse("trusted_proxies", &|v| {
        crate::limits::TrustedProxies::parse(v).map(|_| ())
    })?;
    let legs = parse("origin_proxy_protocol", &|v| {
        parse_proxy_protocol_legs(v).map(|_| ())
    })?;
    Ok(Config {
        rtmp_listen: listen("rtmp_server", any)?,
        http_listen: listen("http_server", any)?,
        http_api_listen: listen("http_api", any)?,
        webrtc_listen: listen("webrtc_server", any)?,
        srt_listen: listen("srt_server", any)?,
        system_api_listen: listen("system_api", loopback)?,
        static_files,
        balancer,
        balancer_config,
        strategy,
        grace_quit,
        force_quit,
        system_api_token: Some(value("system_api_token").0).filter(|t| !t.is_empty()),
        static_origins,
        max_connections,
        handshake_timeout: duration("handshake_timeout")?,
        origin_connect_timeout: duration("origin_connect_timeout")?,
        idle_timeout: duration("idle_timeout")?,
        rtc_candidate: Some(value("rtc_candidate").0).filter(|c| !c.is_empty()),
        rtc_tcp_candidates: parse_bool(&rtc_tcp_candidates).unwrap_or(false),
        max_connections_per_ip,
        health_check,
        suspect_for: duration("suspect_for")?,
        origin_connect_attempts: count("origin_connect_attempts", 1)?.min(16) as usize,
        origin_proxy_protocol: ProxyProtocolLegs {
            version: match parse("origin_proxy_protocol_version", &|v| match v.trim() {
                "1" | "2" => Ok(()),
                _ => Err("expected 1 or 2".into()),
            })?
            .trim()
            {
                "1" => ProxyProtocolVersion::V1,
                _ => ProxyProtocolVersion::V2,
            },
            ..parse_proxy_protocol_legs(&legs).unwrap_or_default()
        },
        trusted_proxies: crate::limits::TrustedProxies::parse(&trusted_proxies).unwrap_or_default(),
        rtmp_buffer_budget: Some(count("rtmp_buffer_budget", 0)?)
            .filter(|mib| *mib > 0)
            .map(|mib| usize::try_from(mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)),
    })
}

/// `off`, `all`, or a comma-separated list of `rtmp`, `http`, `api`.
fn parse_proxy_protocol_legs(value: &str) -> Result<ProxyProtocolLegs, String> {
    let mut legs = ProxyProtocolLegs::default();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.to_ascii_lowercase().as_str() {
            "off" | "none" => {}
            "all" | "on" => {
                legs = ProxyProtocolLegs {
                    rtmp: true,
                    http: true,
                    api: true,
                    ..legs
                }
            }
            "rtmp" => legs.rtmp = true,
            "http" => legs.http = true,
            "api" => legs.api = true,
            other => {
                return Err(format!(
                    "unknown leg {other:?}: expected off, all, or rtmp, http, api"
                ))
            }
        }
    }
    Ok(legs)
}

/// `11935` (on `wildcard`), `127.0.0.1:11935`, `[::]:11935`, or `off`.
fn parse_listen(value: &str, wildcard: IpAddr) -> Result<Option<SocketAddr>, String> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    if let Ok(port) = value.trim_start_matches(':').parse::<u16>() {
        return Ok(Some(SocketAddr::new(wildcard, port)));
    }
    value
        .parse::<SocketAddr>()
        .map(Some)
        .map_err(|_| "expected a port, host:port with an IP host, or off".into())
}

fn parse_port(value: &str) -> Result<u16, String> {
    value
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| "expected a port from 1 to 65535".into())
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" | "" => Ok(false),
        _ => Err("expected on or off".into()),
    }
}

/// Go-style durations as the reference writes them: `20s`, `500ms`, `2m`, `1h`, `1m30s`;
/// a bare number is seconds.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| "expected a non-negative duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = value;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let n: f64 = number
            .parse()
            .map_err(|_| format!("expected a duration like 20s, 500ms or 1m30s, got {value:?}"))?;
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("unknown unit {unit:?} (ms, s, m, h)")),
        };
        total += Duration::try_from_secs_f64(n * scale)
            .map_err(|_| "duration out of range".to_string())?;
        rest = next;
    }
    if value.is_empty() {
        return Err("expected a duration like 20s".into());
    }
    Ok(total)
}

/// `.env` lines: `KEY=value`, `export KEY=value`, `# comments`, optional quotes.
fn parse_dotenv(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let unquoted = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or_else(|| v.split(" #").next().unwrap_or(v).trim());
            (k.trim().to_owned(), unquoted.to_owned())
        })
        .collect()
}

/// An origin listed in the config file (`[[origins]]`), for origins that cannot register
/// themselves (nginx-rtmp, or SRS without heartbeat).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticOrigin {
    name: String,
    /// Host for endpoints given as a bare port; default 127.0.0.1.
    ip: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    rtmp: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    http: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    api: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    srt: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    rtc: Vec<String>,
    weight: Option<u32>,
    max_streams: Option<u32>,
    max_connections: Option<u32>,
    #[serde(default)]
    draining: bool,
}

impl StaticOrigin {
    fn into_origin(self) -> anyhow::Result<Origin> {
        if self.name.is_empty() {
            bail!("an [[origins]] entry has an empty name");
        }
        let ip = self.ip.unwrap_or_else(|| "127.0.0.1".into());
        let name = self.name;
        let endpoints = |list: Vec<String>, transport| -> anyhow::Result<Vec<Endpoint>> {
            list.iter()
                .map(|e| {
                    Endpoint::parse(e, &ip, transport).with_context(|| format!("origin {name:?}"))
                })
                .collect()
        };
        let origin = Origin {
            id: OriginId::new(name.clone()),
            rtmp: endpoints(self.rtmp, Transport::Tcp)?,
            http: endpoints(self.http, Transport::Tcp)?,
            api: endpoints(self.api, Transport::Tcp)?,
            srt: endpoints(self.srt, Transport::Udp)?,
            rtc: endpoints(self.rtc, Transport::Udp)?,
            server: name.clone(),
            service: "static".into(),
            pid: "0".into(),
            device_id: None,
            ip: ip.clone(),
            weight: self.weight.unwrap_or(1),
            max_streams: self.max_streams,
            max_connections: self.max_connections,
            load: None,
            source: OriginSource::Static,
        };
        if [
            &origin.rtmp,
            &origin.http,
            &origin.api,
            &origin.srt,
            &origin.rtc,
        ]
        .iter()
        .all(|v| v.is_empty())
        {
            bail!("origin {name:?} lists no endpoint (rtmp, http, api, srt or rtc)");
        }
        Ok(origin)
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Item {
        Text(String),
        Port(u16),
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Item),
        Many(Vec<Item>),
    }
    let text = |i: Item| match i {
        Item::Text(s) => s,
        Item::Port(p) => p.to_string(),
    };
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(i) => vec![text(i)],
        OneOrMany::Many(v) => v.into_iter().map(text).collect(),
    })
}

/// Reads the TOML file: settings at the top level (by their keys), origins in `[[origins]]`.
fn read_file(path: &Path) -> anyhow::Result<(HashMap<String, String>, Vec<StaticOrigin>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    let mut table: toml::Table = text
        .parse()
        .with_context(|| format!("parsing config file {}", path.display()))?;
    let origins = match table.remove("origins") {
        Some(value) => Vec::<StaticOrigin>::deserialize(value)
            .with_context(|| format!("[[origins]] in {}", path.display()))?,
        None => Vec::new(),
    };
    let mut settings = HashMap::new();
    for (key, value) in table {
        if !SETTINGS.iter().any(|s| s.key == key) {
            bail!("unknown key `{key}` in config file {}", path.display());
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => if b { "on" } else { "off" }.to_owned(),
            toml::Value::Float(f) => f.to_string(),
            other => bail!(
                "key `{key}` in {} must be a string, number or boolean, not {}",
                path.display(),
                other.type_str()
            ),
        };
        settings.insert(key, text);
    }
    Ok((settings, origins))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(flags: &[(&str, &str)], env: &[(&str, &str)], file: &[(&str, &str)]) -> Layers {
        let map = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Layers {
            flags: map(flags),
            env: map(env),
            dotenv: HashMap::new(),
            file: map(file),
        }
    }

    #[test]
    fn defaults_are_the_references() {
        let c = resolve(&layers(&[], &[], &[]), vec![]).unwrap();
        assert_eq!(c.rtmp_listen, Some("0.0.0.0:11935".parse().unwrap()));
        assert_eq!(c.http_listen, Some("0.0.0.0:18080".parse().unwrap()));
        assert_eq!(c.http_api_listen, Some("0.0.0.0:11985".parse().unwrap()));
        assert_eq!(c.webrtc_listen, Some("0.0.0.0:18000".parse().unwrap()));
        assert_eq!(c.srt_listen, Some("0.0.0.0:20080".parse().unwrap()));
        assert_eq!(
            c.system_api_listen,
            Some("127.0.0.1:12025".parse().unwrap())
        );
        assert_eq!(c.balancer, BalancerKind::Memory);
        assert_eq!(
            (c.grace_quit, c.force_quit),
            (Duration::from_secs(20), Duration::from_secs(30))
        );
        assert_eq!(c.balancer_config, BalancerConfig::default());
        assert!(c.static_origins.is_empty());
    }

    #[test]
    fn production_settings() {
        let c = resolve(&layers(&[], &[], &[]), vec![]).unwrap();
        assert_eq!(c.max_connections_per_ip, Some(1000));
        assert_eq!(c.health_check.interval, Some(Duration::from_secs(2)));
        assert_eq!((c.health_check.rise, c.health_check.fall), (2, 3));
        assert!(c.health_check.cut_sessions);
        assert_eq!(c.origin_proxy_protocol, ProxyProtocolLegs::default());
        assert_eq!(c.origin_connect_attempts, 3);
        assert_eq!(c.rtmp_buffer_budget, Some(256 * 1024 * 1024));

        let file = [
            ("max_connections_per_ip", "0"),
            ("rtmp_buffer_budget", "0"),
            ("health_check_interval", "off"),
            ("origin_proxy_protocol", "rtmp, api"),
            ("suspect_for", "0s"),
        ];
        let c = resolve(&layers(&[], &[], &file), vec![]).unwrap();
        assert_eq!(c.max_connections_per_ip, None);
        assert_eq!(c.rtmp_buffer_budget, None);
        assert_eq!(c.health_check.interval, None);
        assert_eq!(c.suspect_for, Duration::ZERO);
        assert_eq!(
            c.origin_proxy_protocol,
            ProxyProtocolLegs {
                version: ProxyProtocolVersion::V2,
                rtmp: true,
                http: false,
                api: true
            }
        );
        let c = resolve(
            &layers(&[("origin_proxy_protocol_version", "1")], &[], &[]),
            vec![],
        )
        .unwrap();
        assert_eq!(c.origin_proxy_protocol.version, ProxyProtocolVersion::V1);
        for (key, bad) in [
            ("health_check_fall", "0"),
            ("health_check_interval", "0s"),
            ("origin_proxy_protocol", "srt"),
            ("origin_connect_attempts", "-1"),
            ("origin_proxy_protocol_version", "3"),
            ("rtmp_buffer_budget", "64MiB"),
        ] {
            let err = resolve(&layers(&[], &[], &[(key, bad)]), vec![])
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn flag_beats_env_beats_file() {
        let file = [
            ("rtmp_server", "1"),
            ("http_server", "2"),
            ("http_api", "3"),
        ];
        let env = [("PROXY_RTMP_SERVER", "10"), ("PROXY_HTTP_SERVER", "20")];
        let flags = [("rtmp_server", "127.0.0.1:100")];
        let c = resolve(&layers(&flags, &env, &file), vec![]).unwrap();
        assert_eq!(c.rtmp_listen, Some("127.0.0.1:100".parse().unwrap()));
        assert_eq!(c.http_listen.unwrap().port(), 20);
        assert_eq!(c.http_api_listen.unwrap().port(), 3);
    }

    #[test]
    fn bad_values_name_the_key_and_value() {
        let err = resolve(&layers(&[], &[("PROXY_RTMP_SERVER", "abc")], &[]), vec![])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PROXY_RTMP_SERVER") && err.contains("\"abc\""),
            "{err}"
        );
        let err = resolve(&layers(&[("origin_ttl", "5 parsecs")], &[], &[]), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--origin-ttl"), "{err}");
        let err = resolve(
            &layers(&[], &[("PROXY_LOAD_BALANCER_TYPE", "etcd")], &[]),
            vec![],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("PROXY_LOAD_BALANCER_TYPE") && err.contains("etcd"),
            "{err}"
        );
    }

    #[test]
    fn default_backend_and_redis() {
        let env = [
            ("PROXY_DEFAULT_BACKEND_ENABLED", "on"),
            ("PROXY_LOAD_BALANCER_TYPE", "redis"),
            ("PROXY_REDIS_PORT", "6380"),
        ];
        let c = resolve(&layers(&[], &env, &[]), vec![]).unwrap();
        let (origin, _) = &c.static_origins[0];
        assert_eq!(origin.rtmp[0].to_string(), "127.0.0.1:1935");
        assert_eq!(origin.rtc[0].to_string(), "127.0.0.1:8000");
        assert_eq!(origin.rtc[0].transport, Transport::Udp);
        assert!(matches!(
            c.balancer,
            BalancerKind::Redis(RedisSettings { port: 6380, .. })
        ));
    }

    #[test]
    fn durations_and_dotenv() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(
            parse_duration("1d").is_err()
                && parse_duration("").is_err()
                && parse_duration("-1").is_err()
        );
        let env = parse_dotenv("# c\nexport PROXY_A=1\nPROXY_B=\"x y\"\nPROXY_C=z # note\n");
        assert_eq!(
            (
                env["PROXY_A"].as_str(),
                env["PROXY_B"].as_str(),
                env["PROXY_C"].as_str()
            ),
            ("1", "x y", "z")
        );
    }

    #[test]
    fn file_with_static_origins() {
        let dir = std::env::temp_dir().join(format!("proxy-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("proxy.toml");
        std::fs::write(&path, "rtmp_server = 1936\n[[origins]]\nname = \"nginx1\"\nrtmp = \"127.0.0.1:1935\"\nhttp = [8080]\nweight = 3\ndraining = true\n").unwrap();
        let (settings, origins) = read_file(&path).unwrap();
        let c = resolve(
            &Layers {
                flags: HashMap::new(),
                env: HashMap::new(),
                dotenv: HashMap::new(),
                file: settings,
            },
            origins,
        )
        .unwrap();
        assert_eq!(c.rtmp_listen.unwrap().port(), 1936);
        let (origin, draining) = &c.static_origins[0];
        assert_eq!(
            (
                origin.id.as_str(),
                origin.http[0].to_string().as_str(),
                origin.weight,
                *draining
            ),
            ("nginx1", "127.0.0.1:8080", 3, true)
        );
        std::fs::write(&path, "rtmp_servr = 1\n").unwrap();
        assert!(read_file(&path)
            .unwrap_err()
            .to_string()
            .contains("rtmp_servr"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
