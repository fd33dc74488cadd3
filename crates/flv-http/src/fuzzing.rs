//! The code paths of the fuzz targets, shared with the test that replays their corpus.
//! Each returns `Err` with a description when an invariant breaks; the fuzz target turns
//! that into a crash.

use crate::{classify, FlvReader, FlvTag, Kind};

/// Reads `data[2..]` whole and again split into chunks whose sizes derive from `data[..2]`;
/// both reads must give the same tags and the same error. Returns the tag count.
pub fn flv_reader(data: &[u8]) -> Result<usize, String> {
    let (seed, stream) = data.split_at(data.len().min(2));
    let mut state = seed
        .iter()
        .fold(0x9E37u32, |acc, &b| acc.rotate_left(8) ^ u32::from(b))
        | 1;
    let mut sizes = std::iter::from_fn(move || {
        // xorshift32: cheap, deterministic chunk sizes from 1 to 64 bytes.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        Some(usize::try_from(state % 64).unwrap_or(0) + 1)
    });

    let whole = read(std::iter::once(stream));
    let mut rest = stream;
    let chunks = std::iter::from_fn(|| {
        if rest.is_empty() {
            return None;
        }
        let (chunk, tail) = rest.split_at(sizes.next().unwrap_or(1).min(rest.len()));
        rest = tail;
        Some(chunk)
    });
    let split = read(chunks);
    if whole != split {
        return Err(format!(
            "whole read {whole:?} differs from split read {split:?}"
        ));
    }
    Ok(whole.0.len())
}

type ReadResult = (Vec<FlvTag>, Option<crate::Error>);

fn read<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> ReadResult {
    let mut reader = FlvReader::new();
    let mut tags = Vec::new();
    for chunk in chunks {
        reader.push_slice(chunk);
        loop {
            match reader.next_tag() {
                Ok(Some(tag)) => tags.push(tag),
                Ok(None) => break,
                Err(e) => return (tags, Some(e)),
            }
        }
    }
    (tags, None)
}

/// Classifies method, path, query and host taken from `data` split on newlines (a missing
/// part is `None`), and checks the invariants of a successful classification.
pub fn classify_request(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\n');
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let query = parts.next();
    let host = parts.next();
    let Ok(r) = classify(method, path, query, host) else {
        return Ok(());
    };
    if r.stream.contains('/') {
        return Err(format!("stream with '/': {r:?}"));
    }
    if r.app.chars().chain(r.stream.chars()).any(char::is_control) {
        return Err(format!("control character in identity: {r:?}"));
    }
    if r.stream.is_empty() && matches!(r.kind, Kind::Flv | Kind::Ts | Kind::HlsPlaylist) {
        return Err(format!("empty stream for a media kind: {r:?}"));
    }
    if r.extension.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!("extension not lowercased: {r:?}"));
    }
    if r.vhost
        .as_deref()
        .is_some_and(|v| v.is_empty() || v.contains([' ', '/']))
    {
        return Err(format!("bad vhost: {r:?}"));
    }
    Ok(())
}

/// Percent-decoding and query lookup on `data` as `name\nquery`: decoding never grows the
/// text, `+` changes nothing but spaces, whatever decodes survives an encode/decode round
/// trip, and `query_param` finds a value exactly when `has_param` says there is one.
pub fn query_text(data: &[u8]) -> Result<(), String> {
    use crate::text::{decode, has_param, query_param};

    let text = String::from_utf8_lossy(data);
    let (name, query) = text.split_once('\n').unwrap_or(("", &text));
    let strict = decode(query, false);
    let forms = decode(query, true);
    match (&strict, &forms) {
        (Ok(s), Ok(f)) => {
            if s.len() > query.len() || f.len() > query.len() {
                return Err(format!("decoding grew {query:?}"));
            }
            if s.replace('+', " ") != *f && !query.contains('%') {
                return Err(format!("'+' handling differs beyond spaces: {s:?} {f:?}"));
            }
            if !query.contains('%') && *s != query {
                return Err(format!("text without escapes changed: {query:?} -> {s:?}"));
            }
            let encoded: String = s.bytes().map(|b| format!("%{b:02X}")).collect();
            if decode(&encoded, true).as_ref() != Ok(s) {
                return Err(format!("round trip of {s:?} failed"));
            }
        }
        (Err(_), Err(_)) => {}
        _ => return Err(format!("'+' changed validity of {query:?}")),
    }
    let found = query_param(query, name);
    if has_param(query, name) != matches!(found, Ok(Some(_)) | Err(_)) {
        return Err(format!(
            "has_param and query_param disagree on {name:?} in {query:?}"
        ));
    }
    if let Ok(Some(value)) = found {
        if value.len() > query.len() {
            return Err(format!("value {value:?} longer than {query:?}"));
        }
    }
    Ok(())
}
