//! Origins: what SRS's heartbeat says of a server, and the endpoints the proxy dials.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::load::lenient_summaries;
use crate::{Error, OriginLoad};

/// Largest registration body accepted, in bytes.
pub const MAX_REGISTRATION_LEN: usize = 64 * 1024;
/// Most endpoints accepted per protocol in one registration.
const MAX_ENDPOINTS: usize = 16;
/// Longest identity field (`server`, `service`, `pid`, `device_id`, `ip`).
const MAX_FIELD_LEN: usize = 256;

/// The identity of one origin process: `server-service-pid` for a registered SRS (a
/// restart changes `service` and `pid`), the configured name for a static origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OriginId(String);

impl OriginId {
    /// Wraps an id.
    pub fn new(id: impl Into<String>) -> Self {
        OriginId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OriginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The transport an endpoint is reached over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TCP (RTMP, HTTP, API; WebRTC over TCP).
    Tcp,
    /// UDP (SRT, WebRTC).
    Udp,
}

/// A host and port the proxy connects to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    /// IP address or DNS name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TCP or UDP.
    pub transport: Transport,
}

impl Endpoint {
    /// Parses an endpoint in any form SRS writes: `1935`, `:1935`, `0.0.0.0:1935`,
    /// `127.0.0.1:1935`, `[::1]:1935`, `tcp://:1935`, `udp://0.0.0.0:8001`. A missing or
    /// wildcard host means `default_host` (the registration's `ip`); a missing scheme means
    /// `default_transport`.
    ///
    /// ```
    /// use lb_core::{Endpoint, Transport};
    /// let e = Endpoint::parse("udp://0.0.0.0:8001", "10.0.0.5", Transport::Tcp).unwrap();
    /// assert_eq!((e.to_string().as_str(), e.transport), ("10.0.0.5:8001", Transport::Udp));
    /// ```
    pub fn parse(
        value: &str,
        default_host: &str,
        default_transport: Transport,
    ) -> Result<Self, Error> {
        let bad = |reason| Error::InvalidEndpoint {
            value: value.to_owned(),
            reason,
        };
        let trimmed = value.trim();
        let (transport, rest) = match trimmed.split_once("://") {
            Some(("tcp", rest)) => (Transport::Tcp, rest),
            Some(("udp", rest)) => (Transport::Udp, rest),
            Some(_) => return Err(bad("scheme must be tcp:// or udp://")),
            None => (default_transport, trimmed),
        };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (ip, port) = v6
                .split_once("]:")
                .ok_or_else(|| bad("bracketed IPv6 needs ]:port"))?;
            (ip, port)
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') => (host, port),
                Some(_) => return Err(bad("IPv6 hosts must be bracketed")),
                None => ("", rest),
            }
        };
        let port: u16 = port
            .parse()
            .map_err(|_| bad("port must be a number from 1 to 65535"))?;
        if port == 0 {
            return Err(bad("port must be a number from 1 to 65535"));
        }
        let wildcard =
            host.is_empty() || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
        let host = if wildcard { default_host } else { host };
        if host.is_empty()
            || host.len() > MAX_FIELD_LEN
            || host
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '/')
        {
            return Err(bad("host is empty or not a host name"));
        }
        Ok(Endpoint {
            host: host.to_owned(),
            port,
            transport,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Where the balancer learned of an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OriginSource {
    /// Posted to `/api/v1/srs/register`; alive while its heartbeats are fresh.
    Registered,
    /// Listed in the configuration; alive unless probes say otherwise.
    Static,
}

/// An origin media server and the endpoints the proxy dials for each protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Identity of this origin process.
    pub id: OriginId,
    /// SRS's `server` id (stable across restarts), or the static name.
    pub server: String,
    /// SRS's `service` id (changes on restart).
    pub service: String,
    /// The origin's process id.
    pub pid: String,
    /// SRS's `device_id`, when set.
    #[serde(default)]
    pub device_id: Option<String>,
    /// The address the origin registered with.
    pub ip: String,
    /// RTMP endpoints.
    pub rtmp: Vec<Endpoint>,
    /// HTTP (FLV, TS, HLS) endpoints.
    pub http: Vec<Endpoint>,
    /// HTTP API endpoints (WHIP/WHEP signalling).
    pub api: Vec<Endpoint>,
    /// SRT endpoints.
    pub srt: Vec<Endpoint>,
    /// WebRTC media endpoints (UDP and TCP).
    pub rtc: Vec<Endpoint>,
    /// Relative share of new streams for the weighted strategy (default 1).
    pub weight: u32,
    /// Most streams placed on this origin at once, if limited.
    pub max_streams: Option<u32>,
    /// Most client sessions relayed to this origin at once by the whole fleet, if limited
    /// (HAProxy's `maxconn`).
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// The load the origin reported in its last heartbeat (SRS's `summaries`), if any.
    #[serde(default)]
    pub load: Option<OriginLoad>,
    /// Registered by heartbeat or listed statically.
    pub source: OriginSource,
}

impl Origin {
    /// The first WebRTC UDP endpoint, where media for this origin's sessions goes.
    pub fn rtc_udp(&self) -> Option<&Endpoint> {
        self.rtc.iter().find(|e| e.transport == Transport::Udp)
    }
}

/// SRS's heartbeat body, field for field. Unknown fields are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Registration {
    /// Optional operator-chosen device id.
    #[serde(default, deserialize_with = "opt_string_or_number")]
    pub device_id: Option<String>,
    /// The origin's address; wildcard endpoint hosts resolve to it.
    #[serde(deserialize_with = "string_or_number")]
    pub ip: String,
    /// Stable server id.
    #[serde(deserialize_with = "string_or_number")]
    pub server: String,
    /// Per-process service id.
    #[serde(deserialize_with = "string_or_number")]
    pub service: String,
    /// Process id (SRS sends a string).
    #[serde(deserialize_with = "string_or_number")]
    pub pid: String,
    /// RTMP listen endpoints.
    #[serde(deserialize_with = "endpoint_list")]
    pub rtmp: Vec<String>,
    /// HTTP server endpoints.
    #[serde(default, deserialize_with = "endpoint_list")]
    pub http: Vec<String>,
    /// HTTP API endpoints.
    #[serde(default, deserialize_with = "endpoint_list")]
    pub api: Vec<String>,
    /// SRT endpoints.
    #[serde(default, deserialize_with = "endpoint_list")]
    pub srt: Vec<String>,
    /// WebRTC endpoints.
    #[serde(default, deserialize_with = "endpoint_list")]
    pub rtc: Vec<String>,
    /// The load SRS reports in `summaries` (when `heartbeat.summaries` is on). A
    /// `summaries` this proxy cannot read is ignored, never an error.
    #[serde(default, rename = "summaries", deserialize_with = "lenient_summaries")]
    pub load: Option<OriginLoad>,
}

impl Registration {
    /// Parses a heartbeat body. A missing mandatory field is named in the error.
    pub fn from_json(body: &[u8]) -> Result<Self, Error> {
        if body.len() > MAX_REGISTRATION_LEN {
            return Err(Error::InvalidRegistration(format!(
                "body is {} bytes, more than {MAX_REGISTRATION_LEN}",
                body.len()
            )));
        }
        serde_json::from_slice(body).map_err(|e| Error::InvalidRegistration(e.to_string()))
    }

    /// Checks every field and resolves the endpoints.
    pub fn into_origin(self) -> Result<Origin, Error> {
        for (name, value) in [
            ("ip", &self.ip),
            ("server", &self.server),
            ("service", &self.service),
            ("pid", &self.pid),
        ] {
            if value.is_empty()
                || value.len() > MAX_FIELD_LEN
                || value.chars().any(char::is_control)
            {
                return Err(Error::InvalidRegistration(format!(
                    "field `{name}` must be 1 to {MAX_FIELD_LEN} printable characters"
                )));
            }
        }
        if self.rtmp.is_empty() {
            return Err(Error::InvalidRegistration(
                "field `rtmp` lists no endpoint".into(),
            ));
        }
        let ip = self.ip.trim().to_owned();
        let parse_all = |list: &[String], transport| -> Result<Vec<Endpoint>, Error> {
            list.iter()
                .map(|e| Endpoint::parse(e, &ip, transport))
                .collect()
        };
        Ok(Origin {
            id: OriginId(format!("{}-{}-{}", self.server, self.service, self.pid)),
            rtmp: parse_all(&self.rtmp, Transport::Tcp)?,
            http: parse_all(&self.http, Transport::Tcp)?,
            api: parse_all(&self.api, Transport::Tcp)?,
            srt: parse_all(&self.srt, Transport::Udp)?,
            rtc: parse_all(&self.rtc, Transport::Udp)?,
            server: self.server,
            service: self.service,
            pid: self.pid,
            device_id: self
                .device_id
                .filter(|d| !d.is_empty() && d.len() <= MAX_FIELD_LEN),
            ip,
            weight: 1,
            max_streams: None,
            max_connections: None,
            load: self.load,
            source: OriginSource::Registered,
        })
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    String(String),
    Number(serde_json::Number),
}

impl From<StringOrNumber> for String {
    fn from(v: StringOrNumber) -> String {
        match v {
            StringOrNumber::String(s) => s,
            StringOrNumber::Number(n) => n.to_string(),
        }
    }
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    StringOrNumber::deserialize(d).map(String::from)
}

fn opt_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<StringOrNumber>::deserialize(d).map(|v| v.map(String::from))
}

fn endpoint_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list = Option::<Vec<StringOrNumber>>::deserialize(d)?.unwrap_or_default();
    if list.len() > MAX_ENDPOINTS {
        return Err(serde::de::Error::custom(format!(
            "more than {MAX_ENDPOINTS} endpoints"
        )));
    }
    Ok(list.into_iter().map(String::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRS_SAMPLE: &str = r#"{"device_id":"origin1","ip":"10.0.0.5","server":"vid-46p14mm","service":"z2s3w865","pid":"42583",
 "rtmp":["19351"],"http":["8081"],"api":["19851"],
 "srt":["udp://0.0.0.0:10081"],"rtc":["udp://0.0.0.0:8001","tcp://0.0.0.0:8001"]}"#;

    #[test]
    fn srs_heartbeat_as_srs_sends_it() {
        let origin = Registration::from_json(SRS_SAMPLE.as_bytes())
            .unwrap()
            .into_origin()
            .unwrap();
        assert_eq!(origin.id.as_str(), "vid-46p14mm-z2s3w865-42583");
        assert_eq!(origin.device_id.as_deref(), Some("origin1"));
        let shown = |v: &[Endpoint]| {
            v.iter()
                .map(|e| format!("{e}/{:?}", e.transport))
                .collect::<Vec<_>>()
        };
        assert_eq!(shown(&origin.rtmp), ["10.0.0.5:19351/Tcp"]);
        assert_eq!(shown(&origin.http), ["10.0.0.5:8081/Tcp"]);
        assert_eq!(shown(&origin.api), ["10.0.0.5:19851/Tcp"]);
        assert_eq!(shown(&origin.srt), ["10.0.0.5:10081/Udp"]);
        assert_eq!(
            shown(&origin.rtc),
            ["10.0.0.5:8001/Udp", "10.0.0.5:8001/Tcp"]
        );
        assert_eq!(origin.rtc_udp().map(|e| e.port), Some(8001));
    }

    #[test]
    fn unknown_fields_are_ignored_and_numbers_accepted() {
        let body = br#"{"ip":"10.0.0.6","server":"s","service":"v","pid":7,"rtmp":[1935],"summaries":{"cpu":3},"extra":[1,2]}"#;
        let origin = Registration::from_json(body)
            .unwrap()
            .into_origin()
            .unwrap();
        assert_eq!((origin.pid.as_str(), origin.rtmp[0].port), ("7", 1935));
        assert_eq!(
            origin.load, None,
            "a summaries without `system` reports nothing"
        );
    }

    #[test]
    fn summaries_become_the_origin_load_and_never_fail_a_registration() {
        let with = |summaries: &str| {
            let body = format!(
                r#"{{"ip":"10.0.0.6","server":"s","service":"v","pid":"1","rtmp":["1935"],"summaries":{summaries}}}"#
            );
            Registration::from_json(body.as_bytes())
                .unwrap()
                .into_origin()
                .unwrap()
                .load
        };
        let load = with(
            r#"{"ok":true,"now_ms":1,"self":{"cpu_percent":1.5},"system":{"cpu_percent":42.4,"mem_ram_percent":10,"load_1m":0.1,"cpus":2,"conn_srs":9}}"#,
        )
        .unwrap();
        assert_eq!(
            (load.cpu_percent, load.mem_percent, load.connections),
            (Some(42), Some(10), Some(9))
        );
        for junk in [
            "null",
            "[]",
            "\"x\"",
            "{\"system\":[1]}",
            "{\"system\":{\"cpu_percent\":{}}}",
        ] {
            assert_eq!(with(junk), None, "{junk}");
        }
    }

    #[test]
    fn missing_mandatory_fields_are_named() {
        for field in ["ip", "server", "service", "pid", "rtmp"] {
            let mut v: serde_json::Value = serde_json::from_str(SRS_SAMPLE).unwrap();
            v.as_object_mut().unwrap().remove(field);
            let err = Registration::from_json(v.to_string().as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("`{field}`")), "{err}");
        }
        let err = Registration::from_json(
            br#"{"ip":"","server":"s","service":"v","pid":"1","rtmp":["1"]}"#,
        )
        .unwrap()
        .into_origin()
        .unwrap_err();
        assert!(err.to_string().contains("`ip`"), "{err}");
    }

    #[test]
    fn endpoint_forms() {
        let p = |s| Endpoint::parse(s, "10.0.0.5", Transport::Tcp).map(|e| e.to_string());
        assert_eq!(p("1935").unwrap(), "10.0.0.5:1935");
        assert_eq!(p(":1935").unwrap(), "10.0.0.5:1935");
        assert_eq!(p("0.0.0.0:1935").unwrap(), "10.0.0.5:1935");
        assert_eq!(p("127.0.0.1:1935").unwrap(), "127.0.0.1:1935");
        assert_eq!(p("tcp://:1935").unwrap(), "10.0.0.5:1935");
        assert_eq!(p("tcp://0.0.0.0:1935").unwrap(), "10.0.0.5:1935");
        assert_eq!(p("[::1]:1935").unwrap(), "[::1]:1935");
        assert_eq!(p("[::]:1935").unwrap(), "10.0.0.5:1935");
        assert_eq!(p("origin.internal:8080").unwrap(), "origin.internal:8080");
        for bad in ["", "abc", "0", "70000", "http://:1", "::1:1935", "a b:1"] {
            assert!(p(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn oversized_and_malformed_bodies() {
        assert!(Registration::from_json(&vec![b' '; MAX_REGISTRATION_LEN + 1]).is_err());
        assert!(Registration::from_json(b"{not json").is_err());
        let many = format!(
            r#"{{"ip":"1.2.3.4","server":"s","service":"v","pid":"1","rtmp":[{}]}}"#,
            vec!["\"1\""; 17].join(",")
        );
        assert!(Registration::from_json(many.as_bytes()).is_err());
    }
}
