//! HTTP/1 message heads, sans-IO: the request head a client sends first, the response
//! head an origin answers with, and both written back out. This is what a relay needs to
//! place a live stream and then pass its body on as bytes, unparsed.
//!
//! Parsing is [`httparse`]'s (the parser hyper uses); this module adds the limits and owns
//! the results so the caller's buffer can be reused.

use crate::Error;

/// Most header fields a head may carry (hyper's default limit too).
pub const MAX_HEADERS: usize = 100;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method, as sent.
    pub method: String,
    /// The request target (origin form: path and query), as sent.
    pub target: String,
    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub minor_version: u8,
    /// The header fields in order, names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Bytes the head took, blank line included: the body (or the next request) follows.
    pub len: usize,
}

impl RequestHead {
    /// The value of the first field named `name` (ASCII case-insensitive).
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Whether the head is the whole request and asks only for a response: an HTTP/1.1
    /// `GET` in origin form with no body (no Transfer-Encoding, no Content-Length other
    /// than 0), no Upgrade and no Expect. Such a request can be answered by relaying the
    /// response as bytes; anything else needs a full HTTP implementation. (HTTP/1.0 is
    /// excluded because its client cannot take the chunked body an origin may send.)
    pub fn is_bare_get(&self) -> bool {
        self.method == "GET"
            && self.minor_version == 1
            && self.target.starts_with('/')
            && self.field("content-length").is_none_or(|v| v == b"0")
            && ["transfer-encoding", "upgrade", "expect"]
                .iter()
                .all(|name| self.field(name).is_none())
    }
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// The reason phrase, as sent (may be empty).
    pub reason: String,
    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub minor_version: u8,
    /// The header fields in order, names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Bytes the head took, blank line included: the body follows.
    pub len: usize,
}

fn owned(headers: &[httparse::Header<'_>]) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|h| (h.name.to_owned(), h.value.to_vec()))
        .collect()
}

fn too_long(len: usize, max: usize) -> Error {
    Error::TooLong {
        what: "message head",
        len,
        max,
    }
}

/// Parses a request head from the start of `buf`: `Ok(None)` while it is incomplete.
/// A head not complete within `max` bytes, or with more than [`MAX_HEADERS`] fields,
/// is an error: the caller reads at most `max` bytes before giving up.
pub fn parse_request(buf: &[u8], max: usize) -> Result<Option<RequestHead>, Error> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let window = &buf[..buf.len().min(max)];
    let Some(len) = head_len(req.parse(window), buf.len(), max)? else {
        return Ok(None);
    };
    Ok(Some(RequestHead {
        method: req.method.unwrap_or_default().to_owned(),
        target: req.path.unwrap_or_default().to_owned(),
        minor_version: req.version.unwrap_or(1),
        headers: owned(req.headers),
        len,
    }))
}

/// Parses a response head from the start of `buf`: `Ok(None)` while it is incomplete.
/// Limits as [`parse_request`].
pub fn parse_response(buf: &[u8], max: usize) -> Result<Option<ResponseHead>, Error> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut fields);
    let window = &buf[..buf.len().min(max)];
    let Some(len) = head_len(res.parse(window), buf.len(), max)? else {
        return Ok(None);
    };
    Ok(Some(ResponseHead {
        status: res.code.unwrap_or_default(),
        reason: res.reason.unwrap_or_default().to_owned(),
        minor_version: res.version.unwrap_or(1),
        headers: owned(res.headers),
        len,
    }))
}

/// The length of a complete head, `None` while it is incomplete and `seen` is within
/// `max`, or what is wrong with it.
fn head_len(
    parsed: httparse::Result<usize>,
    seen: usize,
    max: usize,
) -> Result<Option<usize>, Error> {
    match parsed {
        Ok(httparse::Status::Complete(len)) => Ok(Some(len)),
        Ok(httparse::Status::Partial) if seen >= max => Err(too_long(seen, max)),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(Error::TooLong {
            what: "header list",
            len: MAX_HEADERS + 1,
            max: MAX_HEADERS,
        }),
        Err(e) => Err(Error::MalformedHead(e.to_string())),
    }
}

/// Appends an HTTP/1.1 request head to `out`. Names and values are the caller's to
/// validate (an `http::HeaderMap` already is): a CR or LF in one would split the head.
pub fn write_request<'a>(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    write_fields(out, headers);
}

/// Appends an HTTP/1.1 response head to `out`; validation as [`write_request`].
pub fn write_response<'a>(
    out: &mut Vec<u8>,
    status: u16,
    reason: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    write_fields(out, headers);
}

fn write_fields<'a>(out: &mut Vec<u8>, headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_get_is_told_from_requests_with_more_to_them() {
        let head = |raw: &str| parse_request(raw.as_bytes(), 4096).unwrap().unwrap();
        let get = head("GET /live/a.flv HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
        assert!(get.is_bare_get());
        assert_eq!(get.field("HOST"), Some(&b"x"[..]));
        for other in [
            "GET /live/a.flv HTTP/1.0\r\n\r\n",
            "HEAD /live/a.flv HTTP/1.1\r\n\r\n",
            "GET http://x/live/a.flv HTTP/1.1\r\n\r\n",
            "GET /a.flv HTTP/1.1\r\ncontent-length: 3\r\n\r\n",
            "GET /a.flv HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /a.flv HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GET /a.flv HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        ] {
            assert!(!head(other).is_bare_get(), "{other:?}");
        }
    }

    #[test]
    fn a_request_head_parses_once_complete() {
        let head = b"GET /live/a.flv?x=1 HTTP/1.1\r\nHost: h\r\nX-A: b\r\n\r\nrest";
        assert_eq!(parse_request(&head[..20], 1024), Ok(None));
        let parsed = parse_request(head, 1024).unwrap().unwrap();
        assert_eq!(parsed.method, "GET");
        assert_eq!(parsed.target, "/live/a.flv?x=1");
        assert_eq!(parsed.minor_version, 1);
        assert_eq!(
            parsed.headers,
            vec![
                ("Host".to_owned(), b"h".to_vec()),
                ("X-A".to_owned(), b"b".to_vec())
            ]
        );
        assert_eq!(&head[parsed.len..], b"rest");
    }

    #[test]
    fn heads_over_their_limits_are_errors() {
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(300, b'a');
        assert!(matches!(
            parse_request(&long, 256),
            Err(Error::TooLong { max: 256, .. })
        ));
        // Under the limit it is only incomplete.
        assert_eq!(parse_request(&long, 1024), Ok(None));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for n in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{n}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(
            parse_request(&many, 1 << 20),
            Err(Error::TooLong {
                what: "header list",
                ..
            })
        ));
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nBad Name: 1\r\n\r\n", 1024),
            Err(Error::MalformedHead(_))
        ));
        assert!(matches!(
            parse_response(b"HTTP/1.1 2x0 OK\r\n\r\n", 1024),
            Err(Error::MalformedHead(_))
        ));
    }

    #[test]
    fn a_response_head_round_trips() {
        let mut out = Vec::new();
        write_response(
            &mut out,
            200,
            "OK",
            [
                ("Content-Type", &b"video/x-flv"[..]),
                ("Connection", b"close"),
            ],
        );
        out.extend_from_slice(b"FLV");
        let parsed = parse_response(&out, 1024).unwrap().unwrap();
        assert_eq!((parsed.status, parsed.reason.as_str()), (200, "OK"));
        assert_eq!(parsed.headers.len(), 2);
        assert_eq!(&out[parsed.len..], b"FLV");
        let mut req = Vec::new();
        write_request(&mut req, "GET", "/a.flv", [("Host", &b"o"[..])]);
        assert_eq!(req, b"GET /a.flv HTTP/1.1\r\nHost: o\r\n\r\n");
    }
}
