//! Percent-decoding and query-string lookup, as request classification (and the rest of
//! the workspace's stream identity) reads them.

use crate::Error;

/// The first non-empty value of `name` in `query`, percent-decoded, with `+` read as a
/// space (what HTML forms and `URLSearchParams` send, and what `lb-core` reads too).
pub fn query_param(query: &str, name: &str) -> Result<Option<String>, Error> {
    match query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
    {
        Some((_, value)) => decode(value, true).map(Some),
        None => Ok(None),
    }
}

/// Whether `query` has a parameter `name` with a non-empty value.
pub fn has_param(query: &str, name: &str) -> bool {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .any(|(key, value)| key == name && !value.is_empty())
}

/// Decodes `%XX` escapes (and `+` when `plus_is_space`); the result must be UTF-8.
pub fn decode(input: &str, plus_is_space: bool) -> Result<String, Error> {
    if !input.contains(['%', '+']) {
        return Ok(input.to_owned());
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|&c| hex(c));
                let lo = bytes.get(i + 2).and_then(|&c| hex(c));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(Error::InvalidPercentEncoding),
                }
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Error::InvalidPercentEncoding)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_plus() {
        assert_eq!(decode("a%20b%2Fc", false).as_deref(), Ok("a b/c"));
        assert_eq!(decode("a+b", true).as_deref(), Ok("a b"));
        assert_eq!(decode("a+b", false).as_deref(), Ok("a+b"));
        assert_eq!(decode("%e4%b8%ad", false).as_deref(), Ok("中"));
    }

    #[test]
    fn rejects_bad_escapes() {
        for bad in ["%", "%2", "%zz", "%ff"] {
            assert_eq!(
                decode(bad, false),
                Err(Error::InvalidPercentEncoding),
                "{bad}"
            );
        }
    }

    #[test]
    fn finds_first_non_empty_param() {
        let q = "app=&app=live&stream=a%2Bb&x";
        assert_eq!(query_param(q, "app"), Ok(Some("live".into())));
        assert_eq!(query_param(q, "stream"), Ok(Some("a+b".into())));
        assert_eq!(query_param(q, "x"), Ok(None));
        assert!(has_param(q, "app"));
        assert!(!has_param(q, "x"));
    }
}
