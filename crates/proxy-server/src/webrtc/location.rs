//! The WHIP/WHEP resource URL (`Location`) as the client sees it through the proxy.
//!
//! The origin's `Location` is recorded in the session's record (made relative: a path and
//! query on the origin's API) and is the ONLY target a DELETE or PATCH is forwarded to.
//! The client gets the same path and query (so SRS's relative
//! `/rtc/v1/whip/?action=delete&token=..&app=..&stream=..&session=..` stays an SRS-looking
//! URL that resolves against the WHIP endpoint) plus two parameters: `proxy_ufrag`, the
//! server ufrag the balancer stores the session under, and `proxy_secret`, 128 random bits
//! made for this session. The record keeps only the secret's SHA-256. A DELETE or PATCH,
//! received by any proxy of the fleet, is forwarded only if the record exists and the
//! secret matches; the path and the rest of the query the client sent are ignored. The
//! ufrag alone proves nothing: it travels in clear in every STUN check.
//!
//! With a fleet secret (`PROXY_FLEET_SECRET`), the secret parameter gives way to
//! `proxy_token`, a token signed with it ([`lb_core::token`], kind `RtcResource`) that
//! carries the session's origin, ufrag and recorded resource: any proxy of the fleet
//! forwards a DELETE or PATCH on it without a store lookup (memory-balanced proxies, a
//! Redis outage), and nobody without the secret can make one.

use lb_core::token::{Claims, FleetKeys, TokenKind};
use lb_core::OriginId;
use sha2::{Digest, Sha256};

/// Query parameter carrying the server ufrag.
pub const UFRAG_PARAM: &str = "proxy_ufrag";
/// Query parameter carrying the session's secret.
pub const SECRET_PARAM: &str = "proxy_secret";
/// Query parameter carrying a signed resource token (with a fleet secret).
pub const TOKEN_PARAM: &str = "proxy_token";
/// How long a signed resource URL is honoured: a session's DELETE may come hours after
/// its offer, and the token cannot be renewed.
pub const SIGNED_FOR_SECS: u64 = 7 * 24 * 3600;
/// Random bytes in a secret (128 bits).
const SECRET_BYTES: usize = 16;

/// The origin's `location` as a path and query on its API, given the path the offer was
/// posted to (for a Location relative to it). An absolute URL's host is dropped: the
/// request goes to the origin's registered API endpoint, never to a host a reply named.
pub fn origin_resource(location: &str, request_path: &str) -> String {
    let location = location.trim();
    let relative = match location.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) =>
        {
            match rest.find(['/', '?']) {
                Some(at) if rest[at..].starts_with('/') => rest[at..].to_owned(),
                Some(at) => format!("/{}", &rest[at..]),
                None => "/".to_owned(),
            }
        }
        _ if location.starts_with("//") => match location[2..].find('/') {
            Some(at) => location[2 + at..].to_owned(),
            None => "/".to_owned(),
        },
        _ if location.starts_with('/') => location.to_owned(),
        // Relative to the offer's URL: resolved against its directory.
        _ => {
            let dir = request_path.rsplit_once('/').map_or("", |(dir, _)| dir);
            format!("{dir}/{location}")
        }
    };
    // A fragment never reaches the server.
    relative.split('#').next().unwrap_or_default().to_owned()
}

/// The Location the proxy returns: the origin's resource with the session's ufrag and
/// secret appended.
pub fn to_proxy(resource: &str, ufrag: &str, secret: &str) -> String {
    let sep = if resource.contains('?') {
        if resource.ends_with('?') || resource.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    format!(
        "{resource}{sep}{UFRAG_PARAM}={}&{SECRET_PARAM}={}",
        encode(ufrag),
        encode(secret)
    )
}

/// A Location issued to a client for an origin's resource.
#[derive(Debug, PartialEq, Eq)]
pub struct Issued {
    /// What the client gets ([`to_proxy`]).
    pub location: String,
    /// What the session's record keeps: the origin's resource ([`origin_resource`]).
    pub resource: String,
    /// And the digest of the new secret the client's Location carries.
    pub digest: String,
}

/// The Location a client gets for the origin's `location` (given the path the offer was
/// posted to) and session `ufrag`, with a new secret; `None` if the system's random source
/// fails.
pub fn issue(location: &str, request_path: &str, ufrag: &str) -> Option<Issued> {
    let resource = origin_resource(location, request_path);
    let (secret, digest) = new_secret()?;
    Some(Issued {
        location: to_proxy(&resource, ufrag, &secret),
        resource,
        digest,
    })
}

/// The Location a client gets with a fleet secret: the origin's resource with the ufrag
/// and a token signed for `origin`; `None` when the token cannot carry them (a resource
/// longer than a token's subject), and the caller issues an unsigned one.
pub fn issue_signed(
    location: &str,
    request_path: &str,
    ufrag: &str,
    origin: &OriginId,
    keys: &FleetKeys,
    now: u64,
) -> Option<Issued> {
    let resource = origin_resource(location, request_path);
    let claims = Claims {
        kind: TokenKind::RtcResource,
        origin: origin.clone(),
        subject: format!("{ufrag} {resource}"),
        expires: u32::try_from(now.saturating_add(SIGNED_FOR_SECS)).unwrap_or(u32::MAX),
    };
    let token = keys.sign(&claims, b"")?;
    let sep = match resource.contains('?') {
        true if resource.ends_with('?') || resource.ends_with('&') => "",
        true => "&",
        false => "?",
    };
    Some(Issued {
        location: format!(
            "{resource}{sep}{UFRAG_PARAM}={}&{TOKEN_PARAM}={token}",
            encode(ufrag)
        ),
        digest: digest(&token),
        resource,
    })
}

/// What a valid signed resource token says: the session's origin, ufrag and resource.
#[derive(Debug, PartialEq, Eq)]
pub struct Signed {
    pub origin: OriginId,
    pub ufrag: String,
    pub resource: String,
}

/// The claims of a signed resource token, if the fleet's keys verify it at `now`.
pub fn verify_signed(keys: &FleetKeys, token: &str, now: u64) -> Option<Signed> {
    let claims = keys.verify(token, TokenKind::RtcResource, b"", now).ok()?;
    let (ufrag, resource) = claims.subject.split_once(' ')?;
    Some(Signed {
        origin: claims.origin,
        ufrag: ufrag.to_owned(),
        resource: resource.to_owned(),
    })
}

/// What the proxy reads of a resource URL's query.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub ufrag: Option<String>,
    pub secret: Option<String>,
    pub token: Option<String>,
}

/// The proxy's parameters of a resource URL's query; everything else is ignored.
pub fn parse(query: Option<&str>) -> Resource {
    let mut out = Resource::default();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            UFRAG_PARAM => out.ufrag = Some(decode(value)),
            SECRET_PARAM => out.secret = Some(decode(value)),
            TOKEN_PARAM => out.token = Some(decode(value)),
            _ => {}
        }
    }
    out
}

/// A new secret (hex) and what the record keeps of it (hex SHA-256); `None` if the
/// system's random source fails, in which case the session gets no Location.
pub fn new_secret() -> Option<(String, String)> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).ok()?;
    let secret = hex(&bytes);
    let digest = digest(&secret);
    Some((secret, digest))
}

/// Hex SHA-256 of a secret.
pub fn digest(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` is the one whose digest the record keeps. The comparison takes the
/// same time wherever the digests differ.
pub fn verify(secret: &str, recorded_digest: &str) -> bool {
    let ours = digest(secret);
    let (a, b) = (ours.as_bytes(), recorded_digest.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes leniently: a bad escape stays as it is. `+` stays `+` (ICE
/// ufrags may contain it).
pub fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srs_location_is_recorded_and_gains_the_proxy_params() {
        let srs = "/rtc/v1/whip/?action=delete&token=abc&app=live&stream=cam&session=k2m9:Xy/+";
        let resource = origin_resource(srs, "/rtc/v1/whip/");
        assert_eq!(resource, srs);
        let proxied = to_proxy(&resource, "k2m9", "00ff");
        assert_eq!(proxied, "/rtc/v1/whip/?action=delete&token=abc&app=live&stream=cam&session=k2m9:Xy/+&proxy_ufrag=k2m9&proxy_secret=00ff");
        let (_, query) = proxied.split_once('?').unwrap();
        assert_eq!(
            parse(Some(query)),
            Resource {
                ufrag: Some("k2m9".into()),
                secret: Some("00ff".into()),
                token: None,
            }
        );
    }

    #[test]
    fn an_issued_location_names_the_session_and_a_secret_only_its_record_can_verify() {
        let issued = issue("/rtc/v1/whep/?action=delete&token=t", "/rtc/v1/whep/", "u1").unwrap();
        assert_eq!(issued.resource, "/rtc/v1/whep/?action=delete&token=t");
        let (_, query) = issued.location.split_once('?').unwrap();
        let parsed = parse(Some(query));
        assert_eq!(parsed.ufrag.as_deref(), Some("u1"));
        assert!(verify(&parsed.secret.unwrap(), &issued.digest));
    }

    #[test]
    fn absolute_and_relative_locations() {
        assert_eq!(
            origin_resource("http://10.0.0.5:1985/whip/res/1", "/rtc/v1/whip/"),
            "/whip/res/1"
        );
        assert_eq!(
            origin_resource("https://origin.example", "/rtc/v1/whip/"),
            "/"
        );
        assert_eq!(
            origin_resource("https://origin.example?x=1", "/rtc/v1/whip/"),
            "/?x=1"
        );
        assert_eq!(
            origin_resource("//origin.example/r/2?x=1#frag", "/rtc/v1/whip/"),
            "/r/2?x=1"
        );
        assert_eq!(
            origin_resource("res/3", "/rtc/v1/whip/"),
            "/rtc/v1/whip/res/3"
        );
        assert_eq!(
            to_proxy("/r?", "u+/", "s"),
            "/r?proxy_ufrag=u%2B%2F&proxy_secret=s"
        );
        assert_eq!(to_proxy("/r", "u", "s"), "/r?proxy_ufrag=u&proxy_secret=s");
        let r = parse(Some(
            "proxy_ufrag=u%2B%2F&proxy_secret=s&proxy_origin=o&session=a:b",
        ));
        assert_eq!(
            (r.ufrag.as_deref(), r.secret.as_deref()),
            (Some("u+/"), Some("s"))
        );
    }

    #[test]
    fn only_the_proxy_params_name_a_session() {
        // SRS's own `session=<server>:<client>` names a ufrag, which anyone can read off a
        // STUN check: it is not accepted in place of the proxy's parameters.
        let r = parse(Some(
            "action=delete&app=live&stream=cam&session=srv1%3Acli1&proxy_origin=srs-1",
        ));
        assert_eq!(r, Resource::default());
        assert_eq!(parse(None), Resource::default());
        assert_eq!(decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn secrets_are_random_and_verified_by_their_digest_only() {
        let (secret, recorded) = new_secret().unwrap();
        let (other, _) = new_secret().unwrap();
        assert_eq!(secret.len(), 32);
        assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(secret, other);
        assert_ne!(
            recorded, secret,
            "the record does not keep the secret itself"
        );
        assert!(verify(&secret, &recorded));
        assert!(!verify(&other, &recorded));
        assert!(!verify("", &recorded));
        assert!(!verify(&secret, ""));
        assert!(!verify(&secret, &recorded[..63]));
        // SHA-256 of "abc" (FIPS 180-2 example).
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_signed_location_names_its_origin_ufrag_and_resource_for_any_proxy() {
        let keys = FleetKeys::new(b"fleet", None).unwrap();
        let origin = OriginId::new("srs-1");
        let srs = "/rtc/v1/whip/?action=delete&token=abc&app=live&stream=s&session=xyz";
        let issued = issue_signed(srs, "/rtc/v1/whip/", "u1:x", &origin, &keys, 1000).unwrap();
        assert!(issued.location.starts_with(&format!("{srs}&proxy_ufrag=")));
        let query = issued.location.split_once('?').unwrap().1;
        let parsed = parse(Some(query));
        let token = parsed.token.unwrap();
        let signed = verify_signed(&keys, &token, 1001).unwrap();
        assert_eq!(
            signed,
            Signed {
                origin,
                ufrag: "u1:x".into(),
                resource: srs.into()
            }
        );
        // Another fleet's secret, an expired token, a changed one: refused.
        let other = FleetKeys::new(b"other", None).unwrap();
        assert_eq!(verify_signed(&other, &token, 1001), None);
        assert_eq!(verify_signed(&keys, &token, 1000 + SIGNED_FOR_SECS), None);
        let mut forged = token.clone().into_bytes();
        forged[5] ^= 1;
        let forged = String::from_utf8(forged).unwrap_or_default();
        assert_eq!(verify_signed(&keys, &forged, 1001), None);
        // An HLS token of the same fleet is no resource token.
        let hls = keys
            .sign(
                &Claims {
                    kind: TokenKind::Hls,
                    origin: OriginId::new("srs-1"),
                    subject: "u1 /x".into(),
                    expires: u32::MAX,
                },
                b"",
            )
            .unwrap();
        assert_eq!(verify_signed(&keys, &hls, 0), None);
    }
}
