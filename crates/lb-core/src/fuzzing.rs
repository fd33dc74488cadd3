//! The code paths of the fuzz targets (`fuzz/`), shared with the test that replays their
//! corpus. Each returns `Err` with a description when an invariant breaks; the fuzz target
//! turns that into a crash.

use crate::{Origin, Registration, StreamKey, MAX_NAME_LEN};

/// Parses `data` as a registration body and, when it is one, checks the origin it gives:
/// it survives the JSON round trip the Redis balancer puts it through, and its load report
/// is within bounds.
pub fn registration(data: &[u8]) -> Result<(), String> {
    let Ok(registration) = Registration::from_json(data) else {
        return Ok(());
    };
    let Ok(origin) = registration.into_origin() else {
        return Ok(());
    };
    let json = serde_json::to_string(&origin).map_err(|e| format!("encode {origin:?}: {e}"))?;
    let back: Origin = serde_json::from_str(&json).map_err(|e| format!("decode {json}: {e}"))?;
    if back != origin {
        return Err(format!("round trip changed {origin:?} into {back:?}"));
    }
    if origin.rtmp.is_empty() || origin.id.as_str().is_empty() {
        return Err(format!("origin without rtmp endpoint or id: {origin:?}"));
    }
    if let Some(load) = origin.load {
        if load.cpu_percent.is_some_and(|v| v > 100) || load.mem_percent.is_some_and(|v| v > 100) {
            return Err(format!("percent above 100: {load:?}"));
        }
    }
    Ok(())
}

/// Builds stream keys from `data`: the first byte selects the constructor, the rest, split
/// on newlines, gives its arguments (an absent one is `None` or empty). A key that is built
/// must be valid and a fixed point: rebuilding it from its own parts gives it back, as the
/// Redis balancer does when it lists placements.
pub fn stream_key(data: &[u8]) -> Result<(), String> {
    let Some((&selector, rest)) = data.split_first() else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.split('\n');
    let mut next = || parts.next();
    let key = match selector % 5 {
        0 => StreamKey::from_rtmp(next().unwrap_or_default(), next().unwrap_or_default()),
        1 => {
            let host = next();
            StreamKey::from_http(host, next().unwrap_or_default(), next())
        }
        2 => {
            let host = next();
            StreamKey::from_rtc_query(host, next().unwrap_or_default())
        }
        3 => StreamKey::from_srt_streamid(next().unwrap_or_default()).map(|(key, _)| key),
        _ => {
            let host = next();
            StreamKey::new(host, next().unwrap_or_default(), next().unwrap_or_default())
        }
    };
    let Ok(key) = key else {
        return Ok(());
    };
    for (what, part) in [
        ("vhost", key.vhost()),
        ("app", key.app()),
        ("stream", key.stream()),
    ] {
        if part.is_empty() || part.len() > MAX_NAME_LEN || part.chars().any(char::is_control) {
            return Err(format!("bad {what} in {key:?}"));
        }
    }
    if key.stream().contains('/') || key.vhost().contains('/') {
        return Err(format!("'/' in stream or vhost: {key:?}"));
    }
    let again = StreamKey::new(Some(key.vhost()), key.app(), key.stream())
        .map_err(|e| format!("{key:?} cannot be rebuilt: {e}"))?;
    if again != key {
        return Err(format!("{key:?} rebuilt as {again:?}"));
    }
    Ok(())
}

/// Parses `data` as a fleet token: the parser must not panic, a token it reads must be
/// within the format's bounds, and verifying it with a fixed secret must agree with
/// re-signing its claims (a token the secret signed verifies, anything else does not
/// verify with that secret's claims unless it is byte-for-byte that token).
pub fn fleet_token(data: &[u8]) -> Result<(), String> {
    use crate::token::{self, FleetKeys};
    let Ok(text) = std::str::from_utf8(data) else {
        return Ok(());
    };
    if let Some(bytes) = token::decode(text) {
        if token::encode(&bytes) != text {
            return Err(format!("base64 is not canonical for {text:?}"));
        }
    }
    let Ok((claims, _, _)) = token::parse(text) else {
        return Ok(());
    };
    if claims.subject.len() > token::MAX_SUBJECT_LEN || claims.origin.as_str().len() > 255 {
        return Err(format!("out-of-bounds claims from {text:?}"));
    }
    let keys = FleetKeys::new(b"fuzz", None).map_err(|e| e.to_string())?;
    let resigned = keys
        .sign(&claims, b"")
        .ok_or_else(|| format!("cannot re-sign parsed claims {claims:?}"))?;
    let verified = keys.verify(text, claims.kind, b"", 0);
    if verified.is_ok() && resigned != text {
        return Err(format!(
            "{text:?} verifies but is not the token of its claims"
        ));
    }
    if keys.verify(&resigned, claims.kind, b"", 0).is_err() && claims.expires > 0 {
        return Err(format!("re-signed claims do not verify: {claims:?}"));
    }
    Ok(())
}
