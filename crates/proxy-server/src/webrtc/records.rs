//! WebRTC session records: what the signalling stores in the balancer (so any proxy of the
//! fleet can relay the media) and what the UDP router needs to open a session, from the
//! record of this proxy's own exchange or from a lookup.

use std::net::SocketAddr;
use std::time::Duration;

use lb_core::{Origin, OriginId, PickIntent, RtcSession, StreamKey};
use stun_ufrag::router;
use stun_ufrag::sdp::{Exchange, IceCredentials};

use super::location;
use crate::Context;

/// What the UDP shell keeps of a session beyond its credentials.
#[derive(Debug, Clone)]
pub struct Route {
    pub key: StreamKey,
    pub origin: OriginId,
    /// Where the origin receives the session's media.
    pub media: SocketAddr,
    /// Publish or play, when known (records of older proxies do not say).
    pub intent: Option<PickIntent>,
}

/// A session the router may open.
pub type Known = router::Known<Route>;

/// The record of a session this proxy signalled: the offer's and the answer's credentials.
pub fn signalled(
    key: &StreamKey,
    origin: &OriginId,
    intent: PickIntent,
    client: IceCredentials<'_>,
    server: IceCredentials<'_>,
) -> RtcSession {
    RtcSession {
        key: key.clone(),
        origin: origin.clone(),
        server_ufrag: server.ufrag.to_owned(),
        client_ufrag: client.ufrag.to_owned(),
        server_pwd: server.pwd.to_owned(),
        media: None,
        publishing: Some(intent == PickIntent::Publish),
        client_pwd: Some(client.pwd.to_owned()),
        resource: None,
        resource_secret: None,
    }
}

/// The record of a session after an ICE restart: new credentials on both sides make a new
/// session; it keeps the old one's stream, origin and resource (the Location still names
/// the old ufrag, whose record keeps the resource).
pub fn restarted(session: &RtcSession, restart: Exchange<'_>) -> RtcSession {
    RtcSession {
        server_ufrag: restart.server.ufrag.to_owned(),
        client_ufrag: restart.client.ufrag.to_owned(),
        server_pwd: restart.server.pwd.to_owned(),
        client_pwd: Some(restart.client.pwd.to_owned()),
        ..session.clone()
    }
}

/// Stores a signalled session in the balancer, with where the origin takes its media
/// (`candidate`: the answer's, see [`media_address`]); what the router needs of it, if
/// the media can be relayed.
pub async fn store(
    ctx: &Context,
    origin: &Origin,
    session: &RtcSession,
    candidate: Option<SocketAddr>,
    intent: Option<PickIntent>,
) -> Option<Known> {
    let media = media_address(origin, candidate).await;
    let session = RtcSession {
        media: media
            .map(|m| m.to_string())
            .or_else(|| session.media.clone()),
        ..session.clone()
    };
    if let Err(e) = ctx.balancer.put_rtc(&session.server_ufrag, &session).await {
        tracing::warn!(ufrag = %session.server_ufrag, "cannot store the WebRTC session in the balancer ({e}); only this proxy can relay its media");
    }
    let Some(media) = media else {
        tracing::warn!(origin = %origin.id, "origin has no WebRTC UDP endpoint and its answer names no usable UDP candidate: media cannot be relayed");
        return None;
    };
    known(session, media, intent)
}

/// A session as a DELETE or PATCH on its resource URL needs it.
#[derive(Debug)]
pub struct Addressed {
    pub ufrag: String,
    pub origin: OriginId,
    /// The origin's resource (path and query) the request is forwarded to.
    pub resource: String,
    /// The stored record, when there is one: an ICE restart needs it.
    pub record: Option<RtcSession>,
}

/// The session a resource URL's query names: by a token signed with the fleet's secret
/// (no store asked but for the record an ICE restart needs), or by a record whose secret
/// digest matches the URL's secret; `None` for anything else (unknown ufrag, wrong or no
/// secret or token, a record of an older proxy, which kept none: its Locations cannot be
/// told from forged ones).
pub async fn by_resource(
    ctx: &Context,
    query: Option<&str>,
    peer: SocketAddr,
    method: &http::Method,
) -> Result<Option<Addressed>, lb_core::Error> {
    let target = location::parse(query);
    let live = ctx.live();
    if let (Some(keys), Some(token)) = (&live.fleet_keys, &target.token) {
        let now = crate::origin_link::unix_now();
        let Some(signed) = location::verify_signed(keys, token, now) else {
            tracing::info!(%peer, %method, "WebRTC resource request with a bad or expired token: refused");
            return Ok(None);
        };
        let record = match ctx.balancer.rtc(&signed.ufrag).await {
            Ok(record) => record.filter(|r| r.origin == signed.origin),
            Err(e) => {
                tracing::debug!(
                    ufrag = signed.ufrag,
                    "no WebRTC record to read ({e}): the token routes the request alone"
                );
                None
            }
        };
        return Ok(Some(Addressed {
            ufrag: signed.ufrag,
            origin: signed.origin,
            resource: signed.resource,
            record,
        }));
    }
    let (Some(ufrag), Some(secret)) = (target.ufrag, target.secret) else {
        return Ok(None);
    };
    let Some(session) = ctx.balancer.rtc(&ufrag).await? else {
        return Ok(None);
    };
    let (Some(resource), Some(digest)) = (&session.resource, &session.resource_secret) else {
        tracing::info!(ufrag, "WebRTC session record without a resource secret (signalled by an older proxy): DELETE/PATCH refused");
        return Ok(None);
    };
    if !location::verify(&secret, digest) {
        tracing::info!(ufrag, %peer, %method, "WebRTC resource request with a wrong secret: refused");
        return Ok(None);
    }
    Ok(Some(Addressed {
        ufrag: session.server_ufrag.clone(),
        origin: session.origin.clone(),
        resource: resource.clone(),
        record: Some(session),
    }))
}

/// Forgets a session's record (its resource was deleted).
pub async fn remove(ctx: &Context, ufrag: &str) {
    if let Err(e) = ctx.balancer.remove_rtc(ufrag).await {
        tracing::warn!(
            ufrag,
            "cannot remove the WebRTC session from the balancer: {e}"
        );
    }
}

/// What the router needs of a record; `None` for records of older proxies, which keep no
/// client ice-pwd: no address could be asked for consent, so they are not relayed (their
/// clients signal again).
fn known(session: RtcSession, media: SocketAddr, intent: Option<PickIntent>) -> Option<Known> {
    Some(Known {
        client_pwd: session.client_pwd?,
        server_ufrag: session.server_ufrag,
        server_pwd: session.server_pwd,
        client_ufrag: session.client_ufrag,
        data: Route {
            key: session.key,
            origin: session.origin,
            media,
            intent,
        },
    })
}

/// A session another proxy signalled: its record and its origin's media address.
pub async fn lookup(ctx: &Context, ufrag: &str) -> Option<Known> {
    let session = match ctx.balancer.rtc(ufrag).await {
        Ok(Some(session)) => session,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(ufrag, "cannot look up a WebRTC session: {e}");
            return None;
        }
    };
    if session.client_pwd.is_none() {
        tracing::info!(ufrag, "WebRTC session signalled by an older proxy (no client ice-pwd in its record): not relayed");
        return None;
    }
    let origin = match ctx.balancer.origin(&session.origin).await {
        Ok(Some(status)) => status.origin,
        _ => {
            tracing::info!(ufrag, origin = %session.origin, "the origin of a WebRTC session is gone");
            return None;
        }
    };
    // The address the signalling proxy stored (per-session ports), else the origin's
    // registered one (records of older proxies).
    let stored = session.media.as_deref().and_then(|m| m.parse().ok());
    let media = match stored {
        Some(media) => media,
        None => match media_address(&origin, None).await {
            Some(media) => media,
            None => {
                tracing::warn!(ufrag, origin = %origin.id, "the origin of a WebRTC session signalled elsewhere registered no WebRTC UDP endpoint");
                return None;
            }
        },
    };
    let intent = session.publishing.map(|publishing| {
        if publishing {
            PickIntent::Publish
        } else {
            PickIntent::Play
        }
    });
    known(session, media, intent)
}

/// Where an origin receives a session's media: its registered WebRTC UDP endpoint (one
/// port for every session, as SRS has it), or else the candidate its answer named (origins
/// that open a port per session, [`stun_ufrag::sdp::media_candidate`]); an unspecified
/// candidate IP means the host the origin's API is on.
pub async fn media_address(origin: &Origin, candidate: Option<SocketAddr>) -> Option<SocketAddr> {
    if let Some(endpoint) = origin.rtc_udp() {
        return resolve(&endpoint.host, endpoint.port).await;
    }
    let addr = candidate?;
    if addr.ip().is_unspecified() {
        let host = origin
            .api
            .first()
            .map_or(origin.ip.as_str(), |e| e.host.as_str());
        return resolve(host, addr.port()).await;
    }
    Some(addr)
}

async fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    if let Ok(ip) = host.parse() {
        return Some(SocketAddr::new(ip, port));
    }
    let lookup = tokio::net::lookup_host((host, port));
    match tokio::time::timeout(Duration::from_secs(5), lookup).await {
        Ok(Ok(mut addrs)) => addrs.next(),
        _ => {
            tracing::warn!(host, "cannot resolve the origin's WebRTC address");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(registration: &[u8]) -> Origin {
        lb_core::Registration::from_json(registration)
            .unwrap()
            .into_origin()
            .unwrap()
    }

    #[tokio::test]
    async fn media_address_prefers_the_registered_port_then_the_answer() {
        let srs = origin(br#"{"ip":"10.0.0.5","server":"a","service":"s","pid":"1","rtmp":["1935"],"api":["1985"],"rtc":["udp://0.0.0.0:8000"]}"#);
        let candidate = Some("10.0.0.9:40000".parse().unwrap());
        assert_eq!(
            media_address(&srs, candidate).await,
            Some("10.0.0.5:8000".parse().unwrap())
        );
        let per_session = origin(br#"{"ip":"10.0.0.5","server":"a","service":"s","pid":"1","rtmp":["1935"],"api":["1985"]}"#);
        assert_eq!(media_address(&per_session, candidate).await, candidate);
        let wildcard = Some("0.0.0.0:40001".parse().unwrap());
        assert_eq!(
            media_address(&per_session, wildcard).await,
            Some("10.0.0.5:40001".parse().unwrap())
        );
        assert_eq!(media_address(&per_session, None).await, None);
    }

    #[test]
    fn records_carry_both_sides_credentials_and_restarts_keep_the_resource() {
        let key = StreamKey::from_rtc_query(None, "app=live&stream=cam").unwrap();
        let origin = OriginId::new("o1");
        let cli = IceCredentials {
            ufrag: "cli",
            pwd: "clipwd",
        };
        let srv = IceCredentials {
            ufrag: "srv",
            pwd: "srvpwd",
        };
        let mut record = signalled(&key, &origin, PickIntent::Play, cli, srv);
        assert_eq!(
            (record.publishing, record.client_pwd.as_deref()),
            (Some(false), Some("clipwd"))
        );
        record.resource = Some("/r".into());
        let new = IceCredentials {
            ufrag: "srv2",
            pwd: "srvpwd2",
        };
        let restart = restarted(
            &record,
            Exchange {
                client: cli,
                server: new,
            },
        );
        assert_eq!(
            (restart.server_ufrag.as_str(), restart.resource.as_deref()),
            ("srv2", Some("/r"))
        );
        let media = "10.0.0.5:8000".parse().unwrap();
        let k = known(restart.clone(), media, None).unwrap();
        assert_eq!((k.server_pwd.as_str(), k.data.media), ("srvpwd2", media));
        let older = RtcSession {
            client_pwd: None,
            ..restart
        };
        assert!(known(older, media, None).is_none(), "no consent possible");
    }
}
