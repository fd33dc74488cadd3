//! The affinity token in a request's query string: find it, and remove it before the
//! request goes to the origin.

use std::borrow::Cow;

/// The value of the first non-empty `param` in `query` (a leading `?` is ignored).
///
/// ```
/// use hls_rewrite::extract_token;
/// assert_eq!(extract_token("hls_ctx=0u6c1xr3&spbhid=k2x9", "spbhid"), Some("k2x9"));
/// assert_eq!(extract_token("_HLS_msn=3", "spbhid"), None);
/// ```
pub fn extract_token<'a>(query: &'a str, param: &str) -> Option<&'a str> {
    let query = query.strip_prefix('?').unwrap_or(query);
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, value)| *key == param && !value.is_empty())
        .map(|(_, value)| value)
}

/// `query` without any `param` component; every other byte kept (`_HLS_msn`, `hls_ctx`,
/// auth tokens). An empty result means the forwarded request has no query at all.
///
/// ```
/// use hls_rewrite::strip_token;
/// assert_eq!(strip_token("hls_ctx=x&spbhid=k2x9&_HLS_msn=3", "spbhid"), "hls_ctx=x&_HLS_msn=3");
/// assert_eq!(strip_token("spbhid=k2x9", "spbhid"), "");
/// ```
pub fn strip_token<'a>(query: &'a str, param: &str) -> Cow<'a, str> {
    let query = query.strip_prefix('?').unwrap_or(query);
    if !query.split('&').any(|c| is_param(c, param)) {
        return Cow::Borrowed(query);
    }
    let kept: Vec<&str> = query.split('&').filter(|c| !is_param(c, param)).collect();
    Cow::Owned(kept.join("&"))
}

/// Whether a playlist request is an LL-HLS blocking reload (`_HLS_msn`, RFC 8216bis
/// §6.2.5.2): the server holds its answer until that media sequence number exists, so a
/// proxy must wait longer for it than for an ordinary request.
///
/// ```
/// use hls_rewrite::is_blocking_reload;
/// assert!(is_blocking_reload("spbhid=k&_HLS_msn=12&_HLS_part=3"));
/// assert!(!is_blocking_reload("_HLS_skip=YES"));
/// ```
pub fn is_blocking_reload(query: &str) -> bool {
    let query = query.strip_prefix('?').unwrap_or(query);
    query.split('&').any(|c| is_param(c, "_HLS_msn"))
}

/// Whether a query component's key is `param`.
pub(crate) fn is_param(component: &str, param: &str) -> bool {
    component.split_once('=').map_or(component, |(key, _)| key) == param
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_reloads() {
        assert!(is_blocking_reload("?_HLS_msn=1"));
        assert!(is_blocking_reload("a=1&_HLS_msn=1"));
        assert!(!is_blocking_reload("x_HLS_msn=1&_HLS_msnx=2"));
        assert!(!is_blocking_reload(""));
    }

    #[test]
    fn extract() {
        assert_eq!(extract_token("?spbhid=a", "spbhid"), Some("a"));
        assert_eq!(extract_token("spbhid=&spbhid=b", "spbhid"), Some("b"));
        assert_eq!(extract_token("xspbhid=a&spbhidx=b", "spbhid"), None);
        assert_eq!(extract_token("", "spbhid"), None);
        assert_eq!(extract_token("spbhid", "spbhid"), None);
    }

    #[test]
    fn strip() {
        assert!(matches!(
            strip_token("a=1&b=2", "spbhid"),
            Cow::Borrowed("a=1&b=2")
        ));
        assert_eq!(strip_token("?a=1&spbhid=x", "spbhid"), "a=1");
        assert_eq!(strip_token("spbhid=x&a=1&&b", "spbhid"), "a=1&&b");
        assert_eq!(strip_token("spbhid&spbhid=1&spbhid=2", "spbhid"), "");
        assert_eq!(
            strip_token("_HLS_msn=12&_HLS_part=3&spbhid=t&_HLS_skip=YES", "spbhid"),
            "_HLS_msn=12&_HLS_part=3&_HLS_skip=YES"
        );
    }
}
