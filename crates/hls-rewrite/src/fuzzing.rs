//! The code path of the fuzz target, shared with the test that replays its corpus. Returns
//! `Err` with a description when an invariant breaks; the fuzz target turns that into a
//! crash.

use crate::{extract_token, parse, rewrite, rewrite_bytes, Error, Line};

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
    if input.trim_start_matches('\u{feff}').starts_with("#EXTM3U")
        != output.trim_start_matches('\u{feff}').starts_with("#EXTM3U")
    {
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
