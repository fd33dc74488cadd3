//! Where Redis is and how patiently to talk to it.

use std::time::Duration;

use fred::prelude::{Builder, Config, ReconnectPolicy, ServerConfig, TcpConfig};
use fred::types::config::UnresponsiveConfig;
use lb_core::Error;

/// The key prefix of SRS's Go proxy, so operators find the keys they know.
pub const DEFAULT_PREFIX: &str = "srs-proxy-";

/// How to reach Redis, and how long to wait for it.
///
/// Either `url` or the reference's `PROXY_REDIS_HOST` / `PROXY_REDIS_PORT` /
/// `PROXY_REDIS_PASSWORD` / `PROXY_REDIS_DB` quadruple (`host`, `port`, `password`, `db`).
///
/// ```
/// use lb_redis::RedisBalancerConfig;
///
/// let plain = RedisBalancerConfig { host: "10.0.0.9".into(), password: Some("secret".into()), ..Default::default() };
/// assert_eq!(plain.port, 6379);
/// // Sentinel and Cluster are a matter of the URL's scheme.
/// let sentinel = RedisBalancerConfig::from_url("redis-sentinel://10.0.0.7:26379/0?sentinelServiceName=mymaster");
/// let cluster = RedisBalancerConfig::from_url("redis-cluster://10.0.0.8:30001?node=10.0.0.9:30002");
/// # let _ = (sentinel, cluster);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisBalancerConfig {
    /// A URL as `fred` reads it; when set, `host`, `port`, `password` and `db` are ignored:
    /// `redis://[[user]:password@]host[:port][/db]`,
    /// `redis-sentinel://[[user]:password@]host[:port][/db]?sentinelServiceName=NAME[&node=host:port...]`
    /// (the host and nodes are the sentinels),
    /// `redis-cluster://[[user]:password@]host[:port][?node=host:port...]`.
    /// TLS (`rediss://`) is not compiled in.
    pub url: Option<String>,
    /// Redis host (reference: `PROXY_REDIS_HOST`, default `127.0.0.1`).
    pub host: String,
    /// Redis port (reference: `PROXY_REDIS_PORT`, default 6379).
    pub port: u16,
    /// Password for `AUTH`; `None` or empty for none (reference: `PROXY_REDIS_PASSWORD`).
    pub password: Option<String>,
    /// Database number to `SELECT` (reference: `PROXY_REDIS_DB`, default 0).
    pub db: u8,
    /// Prefix of every key. Proxies of one fleet must share it; a test or a second fleet on
    /// the same Redis takes another. On a Redis Cluster a prefix without a `{hash tag}` is
    /// wrapped in one (`{srs-proxy-}server:...`), because the scripts touch several keys
    /// at once and those must live in one slot.
    pub prefix: String,
    /// Connections kept open; commands are multiplexed over them, so a few suffice.
    pub pool_size: usize,
    /// Longest wait for any Redis call before it fails with `Error::Unavailable`.
    pub command_timeout: Duration,
    /// Longest wait for a TCP connection (and, at start, for the first one).
    pub connect_timeout: Duration,
    /// Longest pause between reconnection attempts (the backoff starts at 100 ms and doubles).
    pub reconnect_max_delay: Duration,
    /// How long a snapshot of the origins (liveness, draining, stream counts) is reused to
    /// choose the origin of a *new* stream. The choice is checked again inside Redis when
    /// it is written, so a stale snapshot costs balance, not correctness; `ZERO` disables it.
    pub status_cache: Duration,
}

impl Default for RedisBalancerConfig {
    fn default() -> Self {
        RedisBalancerConfig {
            url: None,
            host: "127.0.0.1".into(),
            port: 6379,
            password: None,
            db: 0,
            prefix: DEFAULT_PREFIX.into(),
            pool_size: 2,
            command_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            reconnect_max_delay: Duration::from_secs(2),
            status_cache: Duration::from_secs(1),
        }
    }
}

impl RedisBalancerConfig {
    /// The defaults, with Redis found at `url`.
    pub fn from_url(url: impl Into<String>) -> Self {
        RedisBalancerConfig {
            url: Some(url.into()),
            ..Default::default()
        }
    }

    /// The `fred` configuration for this Redis. A malformed URL is reported as
    /// `Error::Unavailable`, since a balancer that cannot reach its state is unavailable.
    pub fn fred_config(&self) -> Result<Config, Error> {
        match &self.url {
            Some(url) => {
                check_scheme(url)?;
                // fred's messages never echo the URL, so a password in it stays out of logs.
                Config::from_url(url)
                    .map_err(|e| Error::Unavailable(format!("invalid Redis URL: {e}")))
            }
            None => {
                if self.host.trim().is_empty() {
                    return Err(Error::Unavailable(
                        "invalid Redis configuration: empty host".into(),
                    ));
                }
                Ok(Config {
                    server: ServerConfig::new_centralized(self.host.trim(), self.port),
                    password: self.password.clone().filter(|p| !p.is_empty()),
                    database: (self.db != 0).then_some(self.db),
                    ..Config::default()
                })
            }
        }
    }

    /// The key prefix actually used, given whether Redis is a cluster.
    pub(crate) fn effective_prefix(&self, clustered: bool) -> String {
        if clustered && !has_hash_tag(&self.prefix) {
            format!("{{{}}}", self.prefix)
        } else {
            self.prefix.clone()
        }
    }

    /// A `fred` builder with this configuration's timeouts and reconnection policy.
    pub(crate) fn builder(&self, config: Config) -> Builder {
        let mut builder = Builder::from_config(config);
        let (command_timeout, connect_timeout) = (self.command_timeout, self.connect_timeout);
        builder
            .with_connection_config(|c| {
                c.connection_timeout = connect_timeout;
                c.internal_command_timeout = command_timeout;
                // A Redis that stops answering without closing the socket (paused, partitioned)
                // would otherwise hold the connection forever; recycle it instead.
                c.unresponsive = UnresponsiveConfig {
                    max_timeout: Some(command_timeout * 2),
                    interval: Duration::from_millis(500),
                };
                c.tcp = TcpConfig {
                    nodelay: Some(true),
                    ..TcpConfig::default()
                };
            })
            .with_performance_config(|p| p.default_command_timeout = command_timeout)
            // max_attempts 0: never give up; a proxy outlives any Redis outage.
            .set_policy(ReconnectPolicy::new_exponential(
                0,
                100,
                clamp_ms(self.reconnect_max_delay).max(100),
                2,
            ));
        builder
    }
}

/// fred reads any scheme as plain Redis and a TLS scheme without TLS support as plain TCP;
/// both would connect somewhere other than the operator meant, so they are refused.
fn check_scheme(url: &str) -> Result<(), Error> {
    let scheme = url
        .split_once("://")
        .map_or("", |(scheme, _)| scheme)
        .to_ascii_lowercase();
    match scheme.as_str() {
        "redis" | "valkey" | "redis-cluster" | "valkey-cluster" | "redis-sentinel" | "valkey-sentinel" => Ok(()),
        "rediss" | "valkeys" | "rediss-cluster" | "valkeys-cluster" | "rediss-sentinel" | "valkeys-sentinel" => {
            Err(Error::Unavailable(format!("invalid Redis URL: {scheme}:// needs TLS, which this build does not include")))
        }
        _ => Err(Error::Unavailable(format!(
            "invalid Redis URL: scheme {scheme:?} is not redis://, redis-sentinel:// or redis-cluster://"
        ))),
    }
}

fn has_hash_tag(prefix: &str) -> bool {
    prefix
        .split_once('{')
        .is_some_and(|(_, rest)| rest.find('}').is_some_and(|end| end > 0))
}

fn clamp_ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_password_db() {
        let cfg = RedisBalancerConfig {
            host: "10.1.2.3".into(),
            port: 6380,
            password: Some("pw".into()),
            db: 3,
            ..Default::default()
        };
        let fred = cfg.fred_config().unwrap();
        assert_eq!(fred.server, ServerConfig::new_centralized("10.1.2.3", 6380));
        assert_eq!(
            (fred.password.as_deref(), fred.database),
            (Some("pw"), Some(3))
        );
        let empty = RedisBalancerConfig {
            password: Some(String::new()),
            ..Default::default()
        }
        .fred_config()
        .unwrap();
        assert_eq!((empty.password, empty.database), (None, None));
        assert!(RedisBalancerConfig {
            host: " ".into(),
            ..Default::default()
        }
        .fred_config()
        .is_err());
    }

    #[test]
    fn url_forms() {
        let fred = RedisBalancerConfig::from_url("redis://:pw@10.0.0.1:6390/2")
            .fred_config()
            .unwrap();
        assert_eq!(fred.server, ServerConfig::new_centralized("10.0.0.1", 6390));
        assert_eq!(
            (fred.password.as_deref(), fred.database),
            (Some("pw"), Some(2))
        );
        let sentinel = RedisBalancerConfig::from_url(
            "redis-sentinel://10.0.0.7:26379/0?sentinelServiceName=mymaster&node=10.0.0.8:26379",
        );
        assert!(sentinel.fred_config().unwrap().server.is_sentinel());
        let cluster =
            RedisBalancerConfig::from_url("redis-cluster://10.0.0.8:30001?node=10.0.0.9:30002");
        assert!(cluster.fred_config().unwrap().server.is_clustered());
        for bad in ["http://nope", "rediss://h:1", "nope", "redis://"] {
            let err = RedisBalancerConfig::from_url(bad)
                .fred_config()
                .unwrap_err();
            assert!(matches!(err, Error::Unavailable(_)), "{err}");
        }
    }

    #[test]
    fn cluster_prefix_gets_a_hash_tag() {
        let cfg = RedisBalancerConfig::default();
        assert_eq!(cfg.effective_prefix(false), "srs-proxy-");
        assert_eq!(cfg.effective_prefix(true), "{srs-proxy-}");
        let tagged = RedisBalancerConfig {
            prefix: "{fleet1}:".into(),
            ..Default::default()
        };
        assert_eq!(tagged.effective_prefix(true), "{fleet1}:");
        let empty_tag = RedisBalancerConfig {
            prefix: "{}x-".into(),
            ..Default::default()
        };
        assert_eq!(empty_tag.effective_prefix(true), "{{}x-}");
    }
}
