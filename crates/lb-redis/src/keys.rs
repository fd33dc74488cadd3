//! Key names. The Lua scripts build the same names from the prefix (`prefix .. 'server:' ..
//! id`, ...): a change here must be made in `lua/` too.

use lb_core::{OriginId, StreamKey};

/// Longest HLS token or ICE ufrag looked up; longer ones come from no proxy or origin and
/// are answered "unknown" without asking Redis.
pub(crate) const MAX_TOKEN_LEN: usize = 512;

/// The key names of one fleet.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: String) -> Self {
        Keys { prefix }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// SET of every origin id (the reference keeps a JSON list here, rewritten by
    /// read-modify-write; a SET needs no read).
    pub(crate) fn index(&self) -> String {
        format!("{}all-servers", self.prefix)
    }

    /// An origin's record: `{"heartbeat_ms":..,"origin":{..}}`.
    pub(crate) fn server(&self, id: &OriginId) -> String {
        format!("{}server:{}", self.prefix, id)
    }

    /// A health mark ([`lb_core::Balancer::mark_down`]): the reason, expiring with the mark.
    /// Only the scripts use it; named here so the layout's test covers it.
    #[cfg(test)]
    pub(crate) fn down(&self, id: &OriginId) -> String {
        format!("{}down:{}", self.prefix, id)
    }

    /// SET of the proxies that reported connections (members whose report expired are
    /// dropped by whoever reads them).
    pub(crate) fn proxies(&self) -> String {
        format!("{}proxies", self.prefix)
    }

    /// One proxy's connection report: `{"origin id": count, ..}`, expiring with its TTL.
    /// Only the scripts use it; named here so the layout's test covers it.
    #[cfg(test)]
    pub(crate) fn conns(&self, proxy: &str) -> String {
        format!("{}conns:{}", self.prefix, proxy)
    }

    /// A stream's placement: the origin id.
    pub(crate) fn url(&self, stream: &str) -> String {
        format!("{}url:{}", self.prefix, stream)
    }

    /// An HLS session (the reference's SPBHID key).
    pub(crate) fn hls(&self, token: &str) -> String {
        format!("{}spbhid:{}", self.prefix, token)
    }

    /// A WebRTC session, by the origin's ufrag.
    pub(crate) fn rtc(&self, ufrag: &str) -> String {
        format!("{}ufrag:{}", self.prefix, ufrag)
    }
}

/// A stream's name in keys and in the per-origin stream sets: `vhost/app/stream`.
pub(crate) fn stream_name(key: &StreamKey) -> String {
    key.to_string()
}

/// The inverse of [`stream_name`]: vhost and stream never contain `/`, so the first and
/// last `/` delimit the app, which may.
pub(crate) fn parse_stream_name(name: &str) -> Option<StreamKey> {
    let (vhost, rest) = name.split_once('/')?;
    let (app, stream) = rest.rsplit_once('/')?;
    let key = StreamKey::new(Some(vhost), app, stream).ok()?;
    (stream_name(&key) == name).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_reference() {
        let keys = Keys::new("srs-proxy-".into());
        assert_eq!(keys.index(), "srs-proxy-all-servers");
        assert_eq!(
            keys.server(&OriginId::new("vid-1-s-42")),
            "srs-proxy-server:vid-1-s-42"
        );
        assert_eq!(
            keys.url("__defaultVhost__/live/cam"),
            "srs-proxy-url:__defaultVhost__/live/cam"
        );
        assert_eq!(keys.hls("tok"), "srs-proxy-spbhid:tok");
        assert_eq!(keys.rtc("ufr"), "srs-proxy-ufrag:ufr");
        assert_eq!(keys.down(&OriginId::new("o")), "srs-proxy-down:o");
        assert_eq!(keys.proxies(), "srs-proxy-proxies");
        assert_eq!(keys.conns("p1"), "srs-proxy-conns:p1");
    }

    #[test]
    fn stream_names_round_trip() {
        for key in [
            StreamKey::new(None, "live", "cam").unwrap(),
            StreamKey::new(Some("a.example.com"), "live/sub/deep", "cam 1").unwrap(),
            StreamKey::new(Some("b.example.com:8080"), "app", "s.flv").unwrap(),
        ] {
            assert_eq!(parse_stream_name(&stream_name(&key)), Some(key));
        }
        for bad in ["", "nostream", "vhost/", "a.b.c/live/", "x/../y"] {
            assert_eq!(parse_stream_name(bad), None, "{bad:?}");
        }
    }
}
