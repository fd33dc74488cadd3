//! Origins the configuration names: `[[origins]]` in the TOML file, and the reference's
//! default backend.

use anyhow::{bail, Context as _};
use lb_core::{Endpoint, Origin, OriginId, OriginSource, Transport};
use serde::Deserialize;

/// An origin listed in the config file (`[[origins]]`), for origins that cannot register
/// themselves (nginx-rtmp, or SRS without heartbeat).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticOrigin {
    pub name: String,
    /// Host for endpoints given as a bare port; default 127.0.0.1.
    pub ip: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub rtmp: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub http: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub api: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub srt: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub rtc: Vec<String>,
    pub weight: Option<u32>,
    pub max_streams: Option<u32>,
    pub max_connections: Option<u32>,
    #[serde(default)]
    pub draining: bool,
}

impl StaticOrigin {
    /// The origin the balancer keeps, its bare-port endpoints on `ip`.
    pub fn into_origin(self) -> anyhow::Result<Origin> {
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
