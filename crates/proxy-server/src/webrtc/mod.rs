//! WebRTC through the proxy: WHIP/WHEP signalling on the HTTP API port (PROXY_HTTP_API,
//! listener `http-api`) and the media on one UDP port (PROXY_WEBRTC_SERVER, listener
//! `webrtc`).
//!
//! - [`signalling`] (HTTP): the offer goes to the stream's origin (its `api` endpoint)
//!   unchanged; the answer comes back with its candidates rewritten to the proxy's public
//!   address and UDP port (`stun_ufrag::sdp::relay_answer`), and its `Location` replaced by
//!   one naming the session and a secret made for it (see [`location`]): DELETE and PATCH
//!   reach only the origin resource recorded for a session, and only with its secret.
//! - [`records`]: the session's record (the ICE credentials of both sides, the origin and
//!   its media address), stored in the balancer under the server ufrag, so any proxy of the
//!   fleet can route the media, and handed to this proxy's UDP router directly.
//! - [`udp`]: one socket for every client, a thin shell around the sans-IO
//!   `stun_ufrag::router::Router`, which decides where each datagram goes; [`origin`]: the
//!   task per session reading the origin's socket.
//!
//! Dependencies run one way: `signalling` uses `records` and (through [`Rtc`]) `udp`'s
//! handle; `udp` uses `records` and `origin`.

mod location;
mod origin;
mod records;
mod signalling;
mod udp;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use stun_ufrag::sdp::{self, CandidateAddr, TcpCandidates};

use crate::Context;

/// What the signalling needs of the media side.
pub(crate) struct Rtc {
    /// The address answers name, if the proxy relays the media (a `webrtc` listener).
    pub public: Option<CandidateAddr>,
    /// What becomes of the origin's TCP candidates.
    pub tcp: TcpCandidates,
    /// This proxy's UDP router, if it has one.
    pub router: Option<udp::Handle>,
}

/// Binds the listeners that are configured and serves them until shutdown.
pub async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let (public, router) = match ctx.config.webrtc_listen {
        Some(addr) => {
            let socket = crate::bind_udp("webrtc", addr).await?;
            let local = socket.local_addr()?;
            let public = public_candidate(ctx.config.rtc_candidate.as_deref(), local)?;
            tracing::info!(candidate = %describe(&public), "WebRTC answers will name this candidate");
            (Some(public), Some(udp::start(ctx.clone(), socket)?))
        }
        None => (None, None),
    };
    let apis = (ctx.config.http_api_listen, ctx.config.https_api_listen);
    if apis == (None, None) {
        if router.is_some() {
            tracing::warn!("the WebRTC UDP port is on but the HTTP API (WHIP/WHEP) is off: only sessions signalled by other proxies of the fleet can use it");
        }
        return Ok(());
    }
    if public.is_none() {
        tracing::warn!("the HTTP API is on but the WebRTC UDP port is off: answers keep the origin's own candidates, so clients must reach the origins directly");
    }
    let tcp = if ctx.config.rtc_tcp_candidates {
        TcpCandidates::Keep
    } else {
        TcpCandidates::Drop
    };
    let rtc = Arc::new(Rtc {
        public,
        tcp,
        router,
    });
    if let Some(api) = ctx.config.http_api_listen {
        let listener = crate::bind_tcp("http-api", api).await?;
        let rtc = rtc.clone();
        crate::accept::serve_tcp(
            ctx.clone(),
            listener,
            "http-api",
            move |ctx, stream, peer| {
                let client = crate::origin_link::ClientAddrs::of(&stream, peer);
                crate::http_front::bound_send_buffer(&stream);
                signalling::serve_connection(ctx, rtc.clone(), stream, client, false, "http-api")
            },
        );
    }
    // Answers name the Location as a path: the client resolves it against the HTTPS URL
    // it posted to, so DELETE and PATCH stay on HTTPS.
    if let (Some(api), Some(store)) = (ctx.config.https_api_listen, ctx.tls.clone()) {
        let listener = crate::bind_tcp("https-api", api).await?;
        crate::tls::serve(
            ctx,
            listener,
            "https-api",
            &store,
            crate::tls::ALPN_HTTP,
            crate::http_front::bound_send_buffer,
            move |ctx, stream, client, _| {
                let h2 = crate::tls::is_h2(&stream);
                signalling::serve_connection(ctx, rtc.clone(), stream, client, h2, "https-api")
            },
        );
    }
    Ok(())
}

/// The candidate answers name: PROXY_RTC_CANDIDATE (an IP, `IP:port`, or a host name) or
/// else the UDP listener's IP (127.0.0.1 if it is a wildcard), with the listener's port
/// unless the setting gives one (a NAT that maps another public port).
fn public_candidate(setting: Option<&str>, local: SocketAddr) -> anyhow::Result<CandidateAddr> {
    let port = local.port();
    let candidate = match setting.map(str::trim).filter(|s| !s.is_empty()) {
        None if local.ip().is_unspecified() => {
            CandidateAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
        }
        None => CandidateAddr::new(local.ip(), port),
        Some(text) => {
            if let Ok(ip) = text.parse::<IpAddr>() {
                CandidateAddr::new(ip, port)
            } else if let Ok(addr) = text.parse::<SocketAddr>() {
                CandidateAddr::new(addr.ip(), addr.port())
            } else {
                match text.rsplit_once(':') {
                    Some((name, p)) if p.parse::<u16>().is_ok() => {
                        CandidateAddr::named(name, p.parse().unwrap_or(port))
                    }
                    _ => CandidateAddr::named(text, port),
                }
            }
        }
    };
    // A name that could not go into an SDP line is a configuration error, said at start.
    sdp::rewrite_candidates(
        "v=0\r\na=candidate:1 1 udp 1 192.0.2.1 9 typ host\r\n",
        &candidate,
        TcpCandidates::Drop,
    )
    .with_context(|| format!("PROXY_RTC_CANDIDATE {setting:?} cannot be written in a candidate"))?;
    Ok(candidate)
}

fn describe(c: &CandidateAddr) -> String {
    match &c.host {
        sdp::CandidateHost::Ip(ip) => SocketAddr::new(*ip, c.port).to_string(),
        sdp::CandidateHost::Name(name) => format!("{name}:{}", c.port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_candidate_defaults_and_overrides() {
        let wildcard: SocketAddr = "0.0.0.0:8000".parse().unwrap();
        let bound: SocketAddr = "10.0.0.2:8000".parse().unwrap();
        assert_eq!(
            public_candidate(None, wildcard).unwrap(),
            CandidateAddr::new("127.0.0.1".parse().unwrap(), 8000)
        );
        assert_eq!(
            public_candidate(None, bound).unwrap(),
            CandidateAddr::new("10.0.0.2".parse().unwrap(), 8000)
        );
        assert_eq!(
            public_candidate(Some("203.0.113.7"), wildcard).unwrap(),
            CandidateAddr::new("203.0.113.7".parse().unwrap(), 8000)
        );
        assert_eq!(
            public_candidate(Some("203.0.113.7:18000"), wildcard).unwrap(),
            CandidateAddr::new("203.0.113.7".parse().unwrap(), 18000)
        );
        assert_eq!(
            public_candidate(Some("media.example.com"), wildcard).unwrap(),
            CandidateAddr::named("media.example.com", 8000)
        );
        assert_eq!(
            public_candidate(Some("media.example.com:443"), wildcard).unwrap(),
            CandidateAddr::named("media.example.com", 443)
        );
        assert!(public_candidate(Some("bad name\r\n"), wildcard).is_err());
    }
}
