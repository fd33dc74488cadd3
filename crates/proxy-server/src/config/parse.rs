//! The parsers the settings table names: each turns one setting's text (already trimmed)
//! into its typed value, normalised, or says what it expected. The caller adds which
//! setting, which value and where it came from.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use lb_core::{Endpoint, StrategyKind, Transport};

use super::{ProxyProtocolLegs, ProxyProtocolVersion, MAX_DURATION, MIN_IDLE_TIMEOUT};
use crate::limits::TrustedProxies;

/// Which balancer `load_balancer_type` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BalancerType {
    Memory,
    Redis,
}

/// `memory` or `redis`.
pub fn balancer_type(value: &str) -> Result<BalancerType, String> {
    match value {
        "memory" => Ok(BalancerType::Memory),
        "redis" => Ok(BalancerType::Redis),
        _ => Err("expected memory or redis".into()),
    }
}

/// A listener on all interfaces when given a bare port.
pub fn listen_any(value: &str) -> Result<Option<SocketAddr>, String> {
    listen(value, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// A listener on loopback when given a bare port (the System API).
pub fn listen_loopback(value: &str) -> Result<Option<SocketAddr>, String> {
    listen(value, IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// `11935` (on `wildcard`), `127.0.0.1:11935`, `[::]:11935`, or `off`.
fn listen(value: &str, wildcard: IpAddr) -> Result<Option<SocketAddr>, String> {
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

/// Any text.
pub fn text(value: &str) -> Result<String, String> {
    Ok(value.to_owned())
}

/// Any text; empty is none.
pub fn optional_text(value: &str) -> Result<Option<String>, String> {
    Ok(Some(value.to_owned()).filter(|v| !v.is_empty()))
}

/// A log filter in `RUST_LOG`'s syntax; empty is none.
pub fn log_filter(value: &str) -> Result<Option<String>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(value)
        .map(|_| Some(value.to_owned()))
        .map_err(|e| format!("expected a filter as RUST_LOG takes it (info, my_crate=debug): {e}"))
}

/// A path; empty is none.
pub fn optional_path(value: &str) -> Result<Option<PathBuf>, String> {
    Ok(Some(PathBuf::from(value)).filter(|p| !p.as_os_str().is_empty()))
}

/// A TCP or UDP port, 1 to 65535.
pub fn port(value: &str) -> Result<u16, String> {
    value
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| "expected a port from 1 to 65535".into())
}

/// A Redis database number.
pub fn database(value: &str) -> Result<u8, String> {
    value
        .parse()
        .map_err(|_| "expected a database number 0-255".into())
}

/// `on`/`off` and their usual spellings.
pub fn switch(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" | "" => Ok(false),
        _ => Err("expected on or off".into()),
    }
}

/// A placement strategy's name.
pub fn strategy(value: &str) -> Result<StrategyKind, String> {
    value.parse()
}

/// A duration, at most [`MAX_DURATION`].
pub fn duration(value: &str) -> Result<Duration, String> {
    let d = parse_duration(value)?;
    if d > MAX_DURATION {
        return Err("expected at most 365 days (8760h)".into());
    }
    Ok(d)
}

/// A duration above zero: a timeout of zero would fail everything it bounds.
pub fn nonzero_duration(value: &str) -> Result<Duration, String> {
    match duration(value)? {
        d if d.is_zero() => Err("expected a duration above zero".into()),
        d => Ok(d),
    }
}

/// The idle timeout, raised to [`MIN_IDLE_TIMEOUT`]: zero would end every relay at once.
pub fn idle_timeout(value: &str) -> Result<Duration, String> {
    Ok(duration(value)?.max(MIN_IDLE_TIMEOUT))
}

/// The tentative-placement TTL, raised to 100 ms so that a player's retry can still find
/// the placement its first attempt made.
pub fn tentative_ttl(value: &str) -> Result<Duration, String> {
    Ok(duration(value)?.max(Duration::from_millis(100)))
}

/// The probe interval: a duration above zero, or `off` (no probes).
pub fn probe_interval(value: &str) -> Result<Option<Duration>, String> {
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match duration(value)? {
        d if d.is_zero() => Err("expected a duration above zero, or off".into()),
        d => Ok(Some(d)),
    }
}

fn whole_number(value: &str, min: u64) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!("expected a whole number of at least {min}")),
    }
}

/// A count of at least 1.
pub fn positive(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a positive number".into()),
    }
}

/// A limit; 0 is none.
pub fn limit(value: &str) -> Result<Option<usize>, String> {
    let n = whole_number(value, 0)?;
    Ok(Some(usize::try_from(n).unwrap_or(usize::MAX)).filter(|n| *n > 0))
}

/// A health-check threshold: at least 1 (a probe must count), saturating at `u32::MAX`.
pub fn threshold(value: &str) -> Result<u32, String> {
    Ok(u32::try_from(whole_number(value, 1)?).unwrap_or(u32::MAX))
}

/// Origins tried per client: at least 1, and at most 16 so that one client cannot make
/// the proxy walk a whole fleet.
pub fn connect_attempts(value: &str) -> Result<usize, String> {
    Ok(whole_number(value, 1)?.min(16) as usize)
}

/// A budget in MiB, as bytes; 0 is none.
pub fn mebibytes(value: &str) -> Result<Option<usize>, String> {
    let mib = whole_number(value, 0)?;
    Ok(Some(mib)
        .filter(|mib| *mib > 0)
        .map(|mib| usize::try_from(mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)))
}

/// A size in bytes: a whole number, optionally followed by `K`, `M` or `G` (with or
/// without `iB`/`B`; all binary multiples, as memory is counted), at least 1 MiB.
pub fn byte_size(value: &str) -> Result<usize, String> {
    const EXPECTED: &str = "expected a size such as 268435456, 256MiB or 1G, at least 1MiB";
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let multiple: u64 = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return Err(EXPECTED.into()),
    };
    let n: u64 = digits.parse().map_err(|_| EXPECTED.to_owned())?;
    let bytes = n.checked_mul(multiple).ok_or_else(|| EXPECTED.to_owned())?;
    if bytes < 1 << 20 {
        return Err(EXPECTED.into());
    }
    usize::try_from(bytes).map_err(|_| EXPECTED.into())
}

/// `off`, `all`, or a comma-separated list of `rtmp`, `http`, `api`; the version is its
/// own setting.
pub fn proxy_protocol_legs(value: &str) -> Result<ProxyProtocolLegs, String> {
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

/// `1` or `2`.
pub fn proxy_protocol_version(value: &str) -> Result<ProxyProtocolVersion, String> {
    match value {
        "1" => Ok(ProxyProtocolVersion::V1),
        "2" => Ok(ProxyProtocolVersion::V2),
        _ => Err("expected 1 or 2".into()),
    }
}

/// Addresses and blocks, comma- or space-separated.
pub fn trusted_proxies(value: &str) -> Result<TrustedProxies, String> {
    TrustedProxies::parse(value)
}

/// A host an endpoint given as a bare port is completed with.
pub fn host(value: &str) -> Result<String, String> {
    Endpoint::parse("1", value, Transport::Tcp)
        .map(|_| value.to_owned())
        .map_err(|_| "expected an IP address or host name".into())
}

/// An origin endpoint: a port, `host:port` or `udp://:port`. Kept as text, since a bare
/// port is completed with another setting's host.
pub fn endpoint(value: &str) -> Result<String, String> {
    Endpoint::parse(value, "127.0.0.1", Transport::Tcp)
        .map(|_| value.to_owned())
        .map_err(|e| e.to_string())
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
        total = Duration::try_from_secs_f64(n * scale)
            .ok()
            .and_then(|d| total.checked_add(d))
            .ok_or_else(|| "duration out of range".to_string())?;
        rest = next;
    }
    if value.is_empty() {
        return Err("expected a duration like 20s".into());
    }
    Ok(total)
}

/// `.env` lines: `KEY=value`, `export KEY=value`, `# comments`, optional quotes.
pub fn dotenv(text: &str) -> std::collections::HashMap<String, String> {
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
