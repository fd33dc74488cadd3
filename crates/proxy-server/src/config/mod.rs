//! Configuration: the reference's `PROXY_*` environment variables (also read from a `.env`
//! file), a TOML file and command-line flags, in the precedence flag > env > .env > file >
//! default.
//!
//! Loading goes in two steps. Every setting (one row of the table in `settings.rs`, listed
//! by [`SETTINGS`]) is parsed and normalised once, by its row's parser, into a typed field;
//! then [`Config`] is assembled from those fields, with the checks that span several.
//! Every problem found on the way (a bad value, naming the setting, the value and where it
//! came from; an unknown key in the file; a bad origin) is reported at once.

mod check;
mod layers;
mod origins;
mod parse;
mod settings;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lb_core::{BalancerConfig, Origin, StrategyKind};

pub use self::check::{mask_url_password, Invocation};
use self::layers::{Layers, Problems};
use self::origins::StaticOrigin;
pub use self::parse::parse_duration;
use self::parse::BalancerType;
use self::settings::Settings;
pub use self::settings::{Setting, SETTINGS};

/// The longest duration any setting takes: longer ones are refused, since timers an
/// operator meant as "forever" would overflow the clock.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The shortest idle timeout: a shorter setting is raised to this (zero would end every
/// relay at once).
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// The resolved configuration. Every value is already checked and normalised: code using
/// it needs no clamps of its own.
#[derive(Debug, Clone)]
pub struct Config {
    /// RTMP listener; `None`: off.
    pub rtmp_listen: Option<SocketAddr>,
    /// HTTP-FLV/TS/HLS listener; `None`: off.
    pub http_listen: Option<SocketAddr>,
    /// WHIP/WHEP signalling listener; `None`: off.
    pub http_api_listen: Option<SocketAddr>,
    /// WebRTC UDP media socket; `None`: off.
    pub webrtc_listen: Option<SocketAddr>,
    /// SRT UDP socket; `None`: off.
    pub srt_listen: Option<SocketAddr>,
    /// System API listener; `None`: off.
    pub system_api_listen: Option<SocketAddr>,
    /// Directory served for paths no stream claims; `None`: none.
    pub static_files: Option<PathBuf>,
    /// Which balancer to run.
    pub balancer: BalancerKind,
    /// The balancer's TTLs (`tentative_ttl` at least 100 ms).
    pub balancer_config: BalancerConfig,
    /// How new streams are placed.
    pub strategy: StrategyKind,
    /// On SIGTERM, how long live sessions may run on.
    pub grace_quit: Duration,
    /// On SIGTERM, when the process exits regardless (never before `grace_quit`).
    pub force_quit: Duration,
    /// Token the System API's write endpoints require; `None`: none.
    pub system_api_token: Option<String>,
    /// The fleet's secrets, which sign HLS tokens and WHIP/WHEP resource URLs; `None`:
    /// tokens are stored in the balancer.
    pub fleet_keys: Option<lb_core::token::FleetKeys>,
    /// Lifetime of a signed HLS token.
    pub fleet_token_ttl: Duration,
    /// Origins from the file and the default backend, with whether each starts draining.
    pub static_origins: Vec<(Origin, bool)>,
    /// Most client connections at once, all TCP listeners together (at least 1).
    pub max_connections: usize,
    /// Time a client has to name its stream (above zero).
    pub handshake_timeout: Duration,
    /// Time an origin has to accept and answer (above zero).
    pub origin_connect_timeout: Duration,
    /// A relay with no traffic for this long is closed. Already clamped to
    /// [`MIN_IDLE_TIMEOUT`]..=[`MAX_DURATION`]: use it as it is.
    pub idle_timeout: Duration,
    /// The address WebRTC answers name, if set.
    pub rtc_candidate: Option<String>,
    /// Keep the origin's TCP candidates in WebRTC answers.
    pub rtc_tcp_candidates: bool,
    /// Most connections and sessions from one client IP at once; `None`: no limit.
    pub max_connections_per_ip: Option<usize>,
    /// Active probes of the origins' TCP endpoints.
    pub health_check: HealthCheck,
    /// How long an origin that refused a connection is held down; zero: never.
    pub suspect_for: Duration,
    /// Origins tried for one client before it sees an error (1 to 16).
    pub origin_connect_attempts: usize,
    /// The TCP legs to origins that start with a PROXY protocol header.
    pub origin_proxy_protocol: ProxyProtocolLegs,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: crate::limits::TrustedProxies,
    /// Bytes all RTMP connections may buffer together beyond their free share; `None`: no
    /// budget.
    pub rtmp_buffer_budget: Option<usize>,
    /// The log filter (`RUST_LOG` syntax); `None`: `RUST_LOG`, else `info`.
    pub log_filter: Option<String>,
    /// RTMPS listener; `None`: off.
    pub rtmps_listen: Option<SocketAddr>,
    /// HTTPS media listener; `None`: off.
    pub https_listen: Option<SocketAddr>,
    /// WHIP/WHEP over HTTPS listener; `None`: off.
    pub https_api_listen: Option<SocketAddr>,
    /// The TLS listeners' certificates; `None` when no certificate is configured (then no
    /// TLS listener is on either).
    pub tls: Option<TlsFiles>,
    /// Edge mode: one upstream pull per stream, HLS cached.
    pub edge: bool,
    /// Bytes of HLS responses an edge keeps (at least 1 MiB).
    pub edge_cache_size: usize,
    /// How long an edge's upstream stays open after its last viewer left.
    pub edge_linger: Duration,
    /// How often an edge's viewers are woken for new media (merged writes).
    pub edge_merge_writes: Duration,
}

/// The certificate files of the TLS listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The default chain (PEM).
    pub cert: PathBuf,
    /// Its key (PEM).
    pub key: PathBuf,
    /// More pairs, chosen by the name the client asks for (SNI): `[[tls_certs]]`.
    pub sni: Vec<crate::tls::CertPair>,
}

/// Active health checks, as HAProxy does them: a TCP connect to each of an origin's TCP
/// endpoints every `interval`; `fall` consecutive failures take it down, `rise`
/// consecutive passes bring it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCheck {
    /// Time between probes; `None` disables probing.
    pub interval: Option<Duration>,
    /// Time a probe's connect may take (above zero).
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
    /// In this process: one proxy.
    Memory,
    /// In Redis: a fleet of proxies sharing it.
    Redis(RedisSettings),
}

/// Where Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// A `redis://` (or `rediss://`, `redis-sentinel://`...) URL; overrides the rest.
    pub url: Option<String>,
    /// Host, without a URL.
    pub host: String,
    /// Port, without a URL.
    pub port: u16,
    /// Password, without a URL; `None`: none.
    pub password: Option<String>,
    /// Database number, without a URL.
    pub db: u8,
}

/// The command line: `--config FILE` and one flag per setting.
pub fn command() -> clap::Command {
    let mut cmd = clap::Command::new("proxy-server")
        .version(VERSION)
        .about(
            "Media-streaming proxy with a built-in load balancer, in front of a fleet of origins",
        )
        .after_help(
            "Each setting is read from its flag, else its environment variable, else .env, \
             else the config file (by its flag's name with _ for -), else its default. \
             Durations: 500ms, 20s, 2m, 1h, 1m30s, or a number of seconds; at most 365 days.",
        )
        .arg(
            clap::Arg::new("config")
                .long("config")
                .value_name("FILE")
                .help("TOML configuration file"),
        )
        .arg(
            clap::Arg::new("check-config")
                .long("check-config")
                .value_name("FILE")
                .num_args(0..=1)
                .default_missing_value("")
                .help(
                    "validate the environment, .env and the TOML file FILE (or --config's) as a \
                     start would, print the effective configuration with secrets masked, and \
                     exit: 0 if valid, 2 with every problem; binds nothing",
                ),
        );
    for setting in SETTINGS {
        let mut arg = clap::Arg::new(setting.key)
            .long(setting.flag())
            .value_name("VALUE")
            .help(format!(
                "{} [env: {}] [default: {}]",
                setting.help, setting.env, setting.default
            ));
        // An on/off setting may be given bare: `--edge` is `--edge on`.
        if matches!(setting.default, "on" | "off") {
            arg = arg.num_args(0..=1).default_missing_value("on");
        }
        cmd = cmd.arg(arg);
    }
    cmd
}

/// The version `--version` prints: the crate's, and the commit it was built from
/// ("unknown" outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("PROXY_BUILD_COMMIT"),
    ")"
);

/// Reads the configuration from the command line, the process environment, `.env` in
/// the working directory and the TOML file named by `--config`.
///
/// Asked for `--check-config`, a valid configuration's report goes to stdout and the
/// process exits 0, as `--help` does; [`load_invocation`] leaves that to the caller.
pub fn load(args: impl IntoIterator<Item = String>) -> anyhow::Result<Config> {
    match load_invocation(args)? {
        Invocation::Run(config) => Ok(*config),
        Invocation::Check(report) => {
            print!("{report}");
            std::process::exit(0)
        }
    }
}

/// Reads the command line and the configuration as [`load`] does, and says whether to run
/// or only to report on the configuration (`--check-config`). An invalid configuration
/// is an error naming every problem, in either case.
pub fn load_invocation(args: impl IntoIterator<Item = String>) -> anyhow::Result<Invocation> {
    let matches = command().try_get_matches_from(args)?;
    let check = matches.get_one::<String>("check-config");
    let file = match (check, matches.get_one::<String>("config")) {
        (Some(checked), Some(config)) if !checked.is_empty() && checked != config => {
            anyhow::bail!("--check-config {checked} and --config {config} name two files: give one")
        }
        (Some(checked), _) if !checked.is_empty() => Some(checked.clone()),
        (_, config) => config.cloned(),
    };
    let mut problems = Problems::default();
    let mut layers = Layers {
        flags: SETTINGS
            .iter()
            .filter_map(|s| {
                let value = matches.get_one::<String>(s.key)?;
                Some((s.key.to_owned(), value.clone()))
            })
            .collect(),
        env: layers::environment(&mut problems),
        ..Layers::default()
    };
    // Every problem is gathered, even one that stops a layer from being read at all, so
    // that one run (or one --check-config) names all of them.
    match layers::dotenv_file() {
        Ok(dotenv) => layers.dotenv = dotenv,
        Err(e) => problems.push(format!("{e:#}")),
    }
    let mut file_origins = Vec::new();
    let mut sni_certs = Vec::new();
    if let Some(path) = &file {
        let path = Path::new(path);
        layers.file_path = Some(path.to_owned());
        match layers::read_file(path, &mut problems) {
            Ok(file) => {
                (layers.file, file_origins) = (file.settings, file.origins);
                sni_certs = file.tls_certs;
            }
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    let mut config = resolve(&layers, file_origins, problems)?;
    if let Some(tls) = &mut config.tls {
        tls.sni = sni_certs;
    } else if !sni_certs.is_empty() {
        anyhow::bail!("[[tls_certs]] in the config file needs PROXY_TLS_CERT and PROXY_TLS_KEY (the default pair) too");
    }
    Ok(if check.is_some() {
        Invocation::Check(check::report(&layers, &config))
    } else {
        Invocation::Run(Box::new(config))
    })
}

/// The configuration the layers give, with the origins from the file; or every problem
/// found (those in `problems` already, and any more).
fn resolve(
    layers: &Layers,
    file_origins: Vec<(Origin, bool)>,
    mut problems: Problems,
) -> anyhow::Result<Config> {
    let config =
        Settings::read(layers, &mut problems).map(|s| assemble(s, file_origins, &mut problems));
    problems.finish(config)
}

/// The fleet's keys from its secrets; a previous secret without a current one is a
/// problem (it would verify tokens nobody can sign any more).
fn fleet_keys(
    current: Option<String>,
    previous: Option<String>,
    problems: &mut Problems,
) -> Option<lb_core::token::FleetKeys> {
    match (current, previous) {
        (Some(current), previous) => lb_core::token::FleetKeys::new(
            current.as_bytes(),
            previous.as_deref().map(str::as_bytes),
        )
        .map_err(|e| problems.push(format!("PROXY_FLEET_SECRET: {e}")))
        .ok(),
        (None, Some(_)) => {
            problems
                .push("PROXY_FLEET_SECRET_PREVIOUS is set without PROXY_FLEET_SECRET".to_owned());
            None
        }
        (None, None) => None,
    }
}

/// The configuration from its settings, every one valid on its own; what is wrong across
/// settings goes to `problems`.
fn assemble(s: Settings, file_origins: Vec<(Origin, bool)>, problems: &mut Problems) -> Config {
    if s.force_quit_timeout < s.grace_quit_timeout {
        problems.push(format!(
            "force_quit_timeout ({:?}) must not be shorter than grace_quit_timeout ({:?})",
            s.force_quit_timeout, s.grace_quit_timeout
        ));
    }
    let mut static_origins = file_origins;
    if s.default_backend_enabled {
        let origin = StaticOrigin {
            name: "default".into(),
            ip: Some(s.default_backend_ip),
            rtmp: vec![s.default_backend_rtmp],
            http: vec![s.default_backend_http],
            api: vec![s.default_backend_api],
            rtc: vec![s.default_backend_rtc],
            srt: vec![s.default_backend_srt],
            ..StaticOrigin::default()
        };
        match origin.into_origin() {
            Ok(origin) => static_origins.push((origin, false)),
            Err(e) => problems.push(format!("PROXY_DEFAULT_BACKEND_*: {e:#}")),
        }
    }
    let tls = match (s.tls_cert, s.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert,
            key,
            sni: Vec::new(),
        }),
        (None, None) => None,
        (Some(_), None) => {
            problems.push("PROXY_TLS_CERT is set but PROXY_TLS_KEY is not".into());
            None
        }
        (None, Some(_)) => {
            problems.push("PROXY_TLS_KEY is set but PROXY_TLS_CERT is not".into());
            None
        }
    };
    let tls_listeners = [
        ("PROXY_RTMPS_SERVER", s.rtmps_server),
        ("PROXY_HTTPS_SERVER", s.https_server),
        ("PROXY_HTTPS_API", s.https_api),
    ];
    for (name, listen) in tls_listeners {
        if listen.is_some() && tls.is_none() {
            problems.push(format!(
                "{name} is on but no certificate is set: set PROXY_TLS_CERT and PROXY_TLS_KEY"
            ));
        }
    }
    let balancer = match s.load_balancer_type {
        BalancerType::Memory => BalancerKind::Memory,
        BalancerType::Redis => BalancerKind::Redis(RedisSettings {
            url: s.redis_url,
            host: s.redis_host,
            port: s.redis_port,
            password: s.redis_password,
            db: s.redis_db,
        }),
    };
    Config {
        rtmp_listen: s.rtmp_server,
        http_listen: s.http_server,
        http_api_listen: s.http_api,
        webrtc_listen: s.webrtc_server,
        srt_listen: s.srt_server,
        system_api_listen: s.system_api,
        static_files: s.static_files,
        balancer,
        balancer_config: BalancerConfig {
            origin_ttl: s.origin_ttl,
            session_ttl: s.session_ttl,
            placement_ttl: s.placement_ttl,
            tentative_ttl: s.tentative_ttl,
        },
        strategy: s.lb_strategy,
        grace_quit: s.grace_quit_timeout,
        force_quit: s.force_quit_timeout,
        system_api_token: s.system_api_token,
        fleet_keys: fleet_keys(s.fleet_secret, s.fleet_secret_previous, problems),
        fleet_token_ttl: s.fleet_token_ttl,
        static_origins,
        max_connections: s.max_connections,
        handshake_timeout: s.handshake_timeout,
        origin_connect_timeout: s.origin_connect_timeout,
        idle_timeout: s.idle_timeout,
        rtc_candidate: s.rtc_candidate,
        rtc_tcp_candidates: s.rtc_tcp_candidates,
        max_connections_per_ip: s.max_connections_per_ip,
        health_check: HealthCheck {
            interval: s.health_check_interval,
            timeout: s.health_check_timeout,
            rise: s.health_check_rise,
            fall: s.health_check_fall,
            registered: s.health_check_registered,
            cut_sessions: s.health_check_cut_sessions,
        },
        suspect_for: s.suspect_for,
        origin_connect_attempts: s.origin_connect_attempts,
        origin_proxy_protocol: ProxyProtocolLegs {
            version: s.origin_proxy_protocol_version,
            ..s.origin_proxy_protocol
        },
        trusted_proxies: s.trusted_proxies,
        rtmp_buffer_budget: s.rtmp_buffer_budget,
        log_filter: s.log_filter,
        rtmps_listen: s.rtmps_server,
        https_listen: s.https_server,
        https_api_listen: s.https_api,
        tls,
        edge: s.edge,
        edge_cache_size: s.edge_cache_size,
        edge_linger: s.edge_linger,
        edge_merge_writes: s.edge_merge_writes,
    }
}
