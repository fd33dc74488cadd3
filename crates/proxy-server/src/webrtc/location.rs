//! The WHIP/WHEP resource URL (`Location`) as the client sees it through the proxy.
//!
//! The origin's `Location` is kept (made relative: the proxy serves it) and two query
//! parameters are appended: `proxy_ufrag` (the server ufrag the balancer stores the session
//! under) and `proxy_origin` (the origin id, for when that session has expired). A DELETE or
//! PATCH on it, received by any proxy of the fleet, finds the origin through them, and
//! reaches the origin with them removed, so the origin sees its own URL again. SRS's
//! relative Location (`/rtc/v1/whip/?action=delete&token=..&app=..&stream=..&session=..`)
//! thus stays an SRS URL.

/// Query parameter carrying the server ufrag.
pub const UFRAG_PARAM: &str = "proxy_ufrag";
/// Query parameter carrying the origin id.
pub const ORIGIN_PARAM: &str = "proxy_origin";

/// The Location the proxy returns for the origin's `location`, given the path the offer
/// was posted to (for a Location relative to it).
pub fn to_proxy(location: &str, request_path: &str, ufrag: &str, origin: &str) -> String {
    let location = location.trim();
    // An absolute URL names the origin's host: keep its path and query only.
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
    // A fragment never reaches the server; drop it.
    let relative = relative.split('#').next().unwrap_or_default();
    let sep = if relative.contains('?') {
        if relative.ends_with('?') || relative.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    format!(
        "{relative}{sep}{UFRAG_PARAM}={}&{ORIGIN_PARAM}={}",
        encode(ufrag),
        encode(origin)
    )
}

/// What the proxy reads of a resource URL's query, and the query to forward.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub ufrag: Option<String>,
    pub origin: Option<String>,
    /// The query without the proxy's parameters (`None` if nothing is left).
    pub forward_query: Option<String>,
}

/// Splits the proxy's parameters off a resource URL's query. Without them, SRS's own
/// `session=<server ufrag>:<client ufrag>` still names the session.
pub fn parse(query: Option<&str>) -> Resource {
    let mut out = Resource::default();
    let mut kept: Vec<&str> = Vec::new();
    let mut srs_session = None;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            UFRAG_PARAM => out.ufrag = Some(decode(value)),
            ORIGIN_PARAM => out.origin = Some(decode(value)),
            _ => {
                if name == "session" {
                    srs_session = decode(value).split(':').next().map(str::to_owned);
                }
                kept.push(pair);
            }
        }
    }
    if out.ufrag.is_none() {
        out.ufrag = srs_session.filter(|s| !s.is_empty());
    }
    out.forward_query = Some(kept.join("&")).filter(|q| !q.is_empty());
    out
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
    fn srs_location_keeps_its_query_and_gains_the_proxy_params() {
        let srs = "/rtc/v1/whip/?action=delete&token=abc&app=live&stream=cam&session=k2m9:Xy/+";
        let proxied = to_proxy(srs, "/rtc/v1/whip/", "k2m9", "srs-1-s-42");
        assert_eq!(proxied, "/rtc/v1/whip/?action=delete&token=abc&app=live&stream=cam&session=k2m9:Xy/+&proxy_ufrag=k2m9&proxy_origin=srs-1-s-42");
        let (_, query) = proxied.split_once('?').unwrap();
        let r = parse(Some(query));
        assert_eq!(r.ufrag.as_deref(), Some("k2m9"));
        assert_eq!(r.origin.as_deref(), Some("srs-1-s-42"));
        assert_eq!(
            r.forward_query.as_deref(),
            Some("action=delete&token=abc&app=live&stream=cam&session=k2m9:Xy/+")
        );
    }

    #[test]
    fn absolute_and_relative_locations() {
        assert_eq!(
            to_proxy(
                "http://10.0.0.5:1985/whip/res/1",
                "/rtc/v1/whip/",
                "u+/",
                "o"
            ),
            "/whip/res/1?proxy_ufrag=u%2B%2F&proxy_origin=o"
        );
        assert_eq!(
            to_proxy("https://origin.example", "/rtc/v1/whip/", "u", "o"),
            "/?proxy_ufrag=u&proxy_origin=o"
        );
        assert_eq!(
            to_proxy("//origin.example/r/2?x=1", "/rtc/v1/whip/", "u", "o"),
            "/r/2?x=1&proxy_ufrag=u&proxy_origin=o"
        );
        assert_eq!(
            to_proxy("res/3", "/rtc/v1/whip/", "u", "o"),
            "/rtc/v1/whip/res/3?proxy_ufrag=u&proxy_origin=o"
        );
        assert_eq!(
            to_proxy("/r?", "/x", "u", "o"),
            "/r?proxy_ufrag=u&proxy_origin=o"
        );
        let r = parse(Some("proxy_ufrag=u%2B%2F&proxy_origin=o"));
        assert_eq!((r.ufrag.as_deref(), r.forward_query), (Some("u+/"), None));
    }

    #[test]
    fn srs_session_param_names_the_ufrag_without_the_proxy_params() {
        let r = parse(Some(
            "action=delete&app=live&stream=cam&session=srv1%3Acli1",
        ));
        assert_eq!(r.ufrag.as_deref(), Some("srv1"));
        assert_eq!(r.origin, None);
        assert_eq!(parse(None), Resource::default());
        assert_eq!(decode("%zz%4"), "%zz%4");
    }
}
