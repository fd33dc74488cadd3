//! The code path of the fuzz target, shared with the test that replays its corpus. Returns
//! `Err` with a description when an invariant breaks; the fuzz target turns that into a
//! crash.

use crate::{
    extract_token, parse, parse_with, rewrite, rewrite_bytes, rewrite_with, strip_token,
    AbsoluteUrls, Error, Line, Options, RelativeUris,
};

const PARAM: &str = "spbhid";
const TOKEN: &str = "fz9~T.k-_";

/// Rewrites arbitrary bytes and checks: non-UTF-8 is refused; the output has the same
/// lines, every line without a URI unchanged byte for byte, every URI carrying the token
/// unless it had to stay as it was; `#EXTM3U` stays first; rewriting again changes nothing.
pub fn rewrite_playlist(data: &[u8]) -> Result<(), String> {
    let Ok(input) = std::str::from_utf8(data) else {
        return match rewrite_bytes(data, PARAM, TOKEN, "/live/s.m3u8") {
            Err(Error::NotUtf8) => Ok(()),
            other => Err(format!("non-UTF-8 input gave {other:?}")),
        };
    };
    let output =
        rewrite(input, PARAM, TOKEN, "/live/s.m3u8").map_err(|e| format!("rewrite: {e}"))?;
    check_rewritten(input, &output, PARAM, TOKEN)?;
    let again =
        rewrite(&output, PARAM, TOKEN, "/live/s.m3u8").map_err(|e| format!("rewrite 2: {e}"))?;
    if again != output {
        return Err(format!("not idempotent:\n{output:?}\n{again:?}"));
    }
    Ok(())
}

/// The invariants between a playlist and its rewrite with `param` and `token`.
pub fn check_rewritten(input: &str, output: &str, param: &str, token: &str) -> Result<(), String> {
    let before = parse(input).map_err(|e| format!("parse input: {e}"))?;
    let after = parse(output).map_err(|e| format!("parse output: {e}"))?;
    if before.bom != after.bom || before.lines.len() != after.lines.len() {
        return Err(format!("line structure changed:\n{input:?}\n{output:?}"));
    }
    // One BOM is the playlist's; a second one is text of the first line, as the parser
    // reads it.
    let header = |s: &str| {
        s.strip_prefix('\u{feff}')
            .unwrap_or(s)
            .starts_with("#EXTM3U")
    };
    if header(input) != header(output) {
        return Err("#EXTM3U header changed".into());
    }
    for (a, b) in before.lines.iter().zip(&after.lines) {
        check_line(a, b, param, token)?;
    }
    Ok(())
}

fn check_line(a: &Line<'_>, b: &Line<'_>, param: &str, token: &str) -> Result<(), String> {
    if a.ending != b.ending || (a.kind != b.kind && a.uri.is_none()) {
        return Err(format!("line changed: {a:?} -> {b:?}"));
    }
    match (&a.uri, &b.uri) {
        (None, None) if a.text == b.text => Ok(()),
        (Some(ua), Some(ub)) if ua.context == ub.context => {
            let same_frame = a.text.get(..ua.range.start) == b.text.get(..ub.range.start)
                && a.text.get(ua.range.end..) == b.text.get(ub.range.end..);
            let body = ub.value.split('#').next().unwrap_or_default();
            let query = body.split_once('?').map_or("", |(_, q)| q);
            let tagged = extract_token(query, param) == Some(token);
            if same_frame && (tagged || ua.value == ub.value) {
                Ok(())
            } else {
                Err(format!("URI not rewritten as expected: {a:?} -> {b:?}"))
            }
        }
        _ => Err(format!("line changed: {a:?} -> {b:?}")),
    }
}

/// Rewriting with the policy and limits picked by `data[0]` (absolute URLs to paths, for
/// listed hosts or kept; relative URIs resolved or kept; small size and line limits) on the
/// playlist `data[1..]`: the same invariants as [`rewrite_playlist`], limits that hold, and
/// the token query helpers on every URI written and on the first line as a query.
pub fn rewrite_options(data: &[u8]) -> Result<(), String> {
    let (&pick, rest) = data.split_first().unwrap_or((&0, &[]));
    let Ok(input) = std::str::from_utf8(rest) else {
        return Ok(());
    };
    let options = Options {
        max_size: if pick & 1 == 1 { 512 } else { 64 * 1024 },
        max_lines: if pick & 2 == 2 { 8 } else { 1000 },
        absolute_urls: match (pick >> 2) % 3 {
            0 => AbsoluteUrls::ToPath,
            1 => AbsoluteUrls::ToPathForHosts(vec!["origin:8080".into(), "Edge.Example".into()]),
            _ => AbsoluteUrls::Keep,
        },
        relative_uris: if pick & 16 == 16 {
            RelativeUris::Resolve
        } else {
            RelativeUris::Keep
        },
    };
    let base = "/live/sub/s.m3u8?hls_ctx=1";
    check_query(input.lines().next().unwrap_or_default())?;
    let output = match rewrite_with(input, PARAM, TOKEN, base, &options) {
        Ok(output) => output,
        // Refused whole, or its output (resolved URIs lengthen) over four times the limit.
        Err(Error::TooLarge { max, .. })
            if input.len() > options.max_size || max == options.max_size * 4 =>
        {
            return Ok(())
        }
        Err(Error::TooManyLines { .. }) => return Ok(()),
        Err(e) => return Err(format!("rewrite with {options:?}: {e}")),
    };
    if output.len() > options.max_size * 4 {
        return Err(format!("output of {} bytes over its bound", output.len()));
    }
    check_rewritten(input, &output, PARAM, TOKEN)?;
    let playlist = parse_with(&output, &Options::default()).map_err(|e| format!("{e}"))?;
    for uri in playlist.uris() {
        let body = uri.value.split('#').next().unwrap_or_default();
        if let Some((_, query)) = body.split_once('?') {
            check_query(query)?;
        }
    }
    let loose = Options {
        max_size: options.max_size * 8,
        ..options.clone()
    };
    let again = rewrite_with(&output, PARAM, TOKEN, base, &loose)
        .map_err(|e| format!("rewrite 2 with {options:?}: {e}"))?;
    if again != output {
        return Err(format!(
            "not idempotent with {options:?}:\n{output:?}\n{again:?}"
        ));
    }
    Ok(())
}

/// `strip_token` leaves no token component and keeps every other one; a token appended
/// after stripping is the one `extract_token` finds.
fn check_query(query: &str) -> Result<(), String> {
    let stripped = strip_token(query, PARAM);
    if extract_token(&stripped, PARAM).is_some() {
        return Err(format!("token left in {stripped:?} from {query:?}"));
    }
    let kept = query.strip_prefix('?').unwrap_or(query).split('&');
    let others = kept.filter(|c| c.split_once('=').map_or(*c, |(k, _)| k) != PARAM);
    if !stripped.is_empty() && !stripped.split('&').eq(others) {
        return Err(format!(
            "other components changed: {query:?} -> {stripped:?}"
        ));
    }
    let tagged = format!("{stripped}&{PARAM}={TOKEN}");
    if extract_token(&tagged, PARAM) != Some(TOKEN) {
        return Err(format!("token not found in {tagged:?}"));
    }
    Ok(())
}

/// Reads arbitrary bytes as an origin's `Cache-Control`, as a playlist's timing and as a
/// request's query, then drives an LRU with them, and checks: freshness is never granted
/// to what may not be stored, never exceeds the longest the policy gives, the cache key
/// is idempotent and drops the token, and the LRU stays within its budget with its
/// bookkeeping consistent.
pub fn cache_policy(data: &[u8]) -> Result<(), String> {
    use crate::cache::{cache_query, CacheControl, Lru, PlaylistTiming, Policy, Resource};
    use std::time::Duration;

    let text = String::from_utf8_lossy(data);
    let cc = CacheControl::parse(&text);
    let timing = PlaylistTiming::of(data);
    let day = Duration::from_secs(86_400);
    for d in [timing.target_duration, timing.part_target]
        .into_iter()
        .flatten()
    {
        if d.is_zero() || d > day {
            return Err(format!("timing out of range: {timing:?}"));
        }
    }
    let policy = Policy::default();
    let longest = policy.master_ttl.max(policy.media_ttl).max(day);
    for resource in [
        Resource::Playlist(timing),
        Resource::BlockingPlaylist(timing),
        Resource::Media,
    ] {
        match policy.freshness(resource, &cc) {
            Some(_) if !cc.storable() => return Err(format!("{cc:?} kept")),
            Some(ttl) if ttl > longest || ttl < policy.min_ttl => {
                return Err(format!("{resource:?} {cc:?}: {ttl:?}"))
            }
            Some(ttl) if cc.limit().is_some_and(|l| ttl > l) => {
                return Err(format!("{cc:?} exceeded: {ttl:?}"))
            }
            _ => {}
        }
    }
    let key = cache_query(&text, PARAM);
    // As a query string (its leading `?` is the separator, not part of it).
    if cache_query(&format!("?{key}"), PARAM) != key {
        return Err(format!("cache key not idempotent: {text:?} -> {key:?}"));
    }
    if key.split('&').any(|c| c.split('=').next() == Some(PARAM)) {
        return Err(format!("the token stayed in the key: {key:?}"));
    }
    let pinned = crate::cache::set_param(&text, crate::cache::HLS_CTX, "edge1");
    if cache_query(&format!("?{pinned}"), PARAM) != key {
        return Err(format!(
            "the hls_ctx value changed the key: {text:?} -> {pinned:?}"
        ));
    }

    let mut lru: Lru<u8, usize> = Lru::new(1000, 300);
    for (step, op) in data.chunks(3).enumerate() {
        let now = Duration::from_millis(step as u64 * 10);
        let (key, arg) = (op[0] % 16, usize::from(*op.get(1).unwrap_or(&0)) * 2);
        if op.get(2).is_some_and(|b| b % 4 == 0) {
            let _ = lru.get(&key, now);
        } else if op.get(2).is_some_and(|b| b % 4 == 1) {
            let _ = lru.remove(&key);
        } else {
            let expires = now + Duration::from_millis(u64::from(*op.get(2).unwrap_or(&0)));
            let kept = lru.insert(key, arg, arg, expires).is_ok();
            if kept != (arg <= lru.entry_cap()) {
                return Err(format!("insert of {arg} bytes: kept {kept}"));
            }
        }
        lru.consistent()?;
    }
    Ok(())
}
