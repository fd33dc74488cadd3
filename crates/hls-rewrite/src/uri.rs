//! Rewriting one URI: make it come back through the proxy and carry the affinity token.

use crate::query::is_param;
use crate::{AbsoluteUrls, Options, RelativeUris};

/// What every URI of one playlist is rewritten with.
pub(crate) struct Target<'a> {
    pub(crate) param: &'a str,
    pub(crate) token: &'a str,
    /// The playlist's request path without its query.
    pub(crate) base_path: &'a str,
    pub(crate) options: &'a Options,
}

/// Appends the rewritten `uri` to `out`. Returns false, having appended nothing, for a URI
/// that must stay as it is: empty, a non-HTTP scheme (`data:`, `skd:`), or an absolute URL
/// that the options keep.
pub(crate) fn push_rewritten(out: &mut String, uri: &str, target: &Target<'_>) -> bool {
    if uri.is_empty() {
        return false;
    }
    let (body, fragment) = uri.find('#').map_or((uri, ""), |i| uri.split_at(i));
    let (body, from_url) = match scheme_len(body) {
        Some(len) => {
            let scheme = body.get(..len).unwrap_or_default();
            let after = body.get(len + 1..).unwrap_or_default();
            let http = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
            match after.strip_prefix("//") {
                Some(rest) if http => match to_path(rest, &target.options.absolute_urls) {
                    Some(path) => (path, true),
                    None => return false,
                },
                _ => return false,
            }
        }
        None => match body.strip_prefix("//") {
            Some(rest) => match to_path(rest, &target.options.absolute_urls) {
                Some(path) => (path, true),
                None => return false,
            },
            None => (body, false),
        },
    };
    let (path, query) = body.split_once('?').unwrap_or((body, ""));
    if from_url && path.is_empty() {
        // `http://origin` or `http://origin?x`: the root.
        out.push('/');
    } else if target.options.relative_uris == RelativeUris::Resolve && !path.starts_with('/') {
        push_resolved(out, target.base_path, path);
    } else {
        out.push_str(path);
    }
    out.push('?');
    // Empty components mean nothing to any server; dropping them with the old token makes
    // a second rewrite give the same bytes. `extract_token` and `strip_token` read a query
    // without its leading '?' (`x.ts??spbhid=a`), so the first component written loses
    // its leading '?'s: otherwise an old token there would win over ours, and a second
    // rewrite would change the URI again.
    let mut first = true;
    for component in query.split('&') {
        let component = if first {
            component.trim_start_matches('?')
        } else {
            component
        };
        if component.is_empty() || is_param(component, target.param) {
            continue;
        }
        first = false;
        out.push_str(component);
        out.push('&');
    }
    out.push_str(target.param);
    out.push('=');
    out.push_str(target.token);
    out.push_str(fragment);
    true
}

/// Length of the URI's scheme (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"),
/// if it has one.
fn scheme_len(uri: &str) -> Option<usize> {
    let colon = uri.find(':')?;
    let scheme = uri.get(..colon)?;
    let mut chars = scheme.bytes();
    let first_alpha = chars.next().is_some_and(|b| b.is_ascii_alphabetic());
    let rest_ok = chars.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    (first_alpha && rest_ok).then_some(colon)
}

/// `rest` is what follows `//`: authority, then path and query. Returns path and query, or
/// `None` if the options keep this URL.
fn to_path<'a>(rest: &'a str, policy: &AbsoluteUrls) -> Option<&'a str> {
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    // `http://h//x.ts` must not become `//x.ts`: that is a URL of host `x.ts`.
    let path = match path.trim_start_matches('/') {
        trimmed if trimmed.len() + 1 < path.len() => path.get(path.len() - trimmed.len() - 1..)?,
        _ => path,
    };
    match policy {
        AbsoluteUrls::ToPath => Some(path),
        AbsoluteUrls::Keep => None,
        AbsoluteUrls::ToPathForHosts(hosts) => {
            let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let host = strip_port(host_port);
            let listed = hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host_port) || h.eq_ignore_ascii_case(host));
            listed.then_some(path)
        }
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| h.get(1..).unwrap_or(h));
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Appends `relative` resolved against the directory of `base_path`, dot segments removed
/// (RFC 3986 section 5.2); `..` never climbs above the root.
fn push_resolved(out: &mut String, base_path: &str, relative: &str) {
    if relative.is_empty() {
        out.push_str(base_path);
        return;
    }
    let dir = base_path.rsplit_once('/').map_or("", |(dir, _)| dir);
    let mut segments: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    let mut parts = relative.split('/').peekable();
    let mut trailing_slash = false;
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        match part {
            "." => trailing_slash = last,
            ".." => {
                segments.pop();
                trailing_slash = last;
            }
            "" if !last => {}
            "" => trailing_slash = true,
            _ => {
                segments.push(part);
                trailing_slash = false;
            }
        }
    }
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || segments.is_empty() {
        out.push('/');
    }
}

#[cfg(test)]
mod tests;
