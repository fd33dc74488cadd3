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

/// Feeds `data` to a [`crate::FanOut`] as RTMP messages (type, 3-byte timestamp, 1-byte
/// length, payload; repeated) with a few viewers reading at different paces, and checks
/// its invariants: memory within its bounds, timestamps handed to each viewer never going
/// back by more than [`crate::fanout::RESTART_STEP_MS`] (audio/video interleave), and a
/// viewer's first video frame after joining or skipping a keyframe. Returns the tags read.
pub fn fanout(data: &[u8]) -> Result<usize, String> {
    use crate::fanout::{Cursor, FanOutConfig, ReadOutcome};
    let config = FanOutConfig {
        max_lag_bytes: 2048,
        max_gop_bytes: 4096,
        max_skips: 2,
    };
    let mut f = crate::FanOut::new(config);
    // Per viewer: cursor, pace, last audio and video frame timestamps, waiting for a key.
    let mut viewers: Vec<(Cursor, usize, [Option<u32>; 2], bool)> = Vec::new();
    let mut rest = data;
    let mut read = 0;
    let mut round = 0usize;
    while let [t, a, b, c, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (payload, after) = tail.split_at(len);
        rest = after;
        let ts = u32::from_be_bytes([0, *a, *b, *c]);
        match t % 8 {
            0 => f.new_part(),
            1 => viewers.push((f.join(), usize::from(*c % 4) + 1, [None; 2], true)),
            2 => {
                let _ = f.push_message(18, ts, payload);
            }
            3 | 4 => {
                let _ = f.push_message(8, ts, payload);
            }
            _ => {
                let _ = f.push_message(9, ts, payload);
            }
        }
        round += 1;
        let stats = f.stats();
        let bound = (config.max_lag_bytes.max(config.max_gop_bytes) + 300) as u64;
        if stats.bytes > bound {
            return Err(format!("{} bytes held, over {bound}", stats.bytes));
        }
        for (cursor, pace, last, need_key) in &mut viewers {
            if round % *pace != 0 {
                continue;
            }
            let mut out = Vec::new();
            let outcome = f.read(cursor, 512, &mut out);
            if outcome == ReadOutcome::Skipped {
                *need_key = f.has_video();
            }
            for tag in &out {
                let track = match tag.kind {
                    crate::TagKind::Audio => Some(0),
                    crate::TagKind::Video => Some(1),
                    _ => None,
                };
                // Frames of a track never go back (sequence headers re-sent to a viewer
                // that skipped are configuration, not frames).
                if let (Some(track), false) = (track, tag.is_sequence_header()) {
                    if let Some(l) = last[track] {
                        if tag.timestamp < l {
                            return Err(format!("frame timestamp {} after {l}", tag.timestamp));
                        }
                    }
                    last[track] = Some(tag.timestamp);
                }
                let video_frame = tag.kind == crate::TagKind::Video && !tag.is_sequence_header();
                if *need_key && video_frame {
                    if tag
                        .video
                        .is_some_and(|v| v.packet == crate::VideoPacket::CodedFrames)
                        && !tag.is_keyframe()
                    {
                        return Err(format!("first video frame is not a keyframe: {tag:?}"));
                    }
                    *need_key = false;
                }
            }
            read += out.len();
        }
    }
    Ok(read)
}

/// Feeds `data` to a [`crate::TsFanOut`] in chunks whose sizes derive from the bytes, with
/// a viewer joining midway: everything handed out is whole, synced 188-byte packets.
pub fn ts_fanout(data: &[u8]) -> Result<usize, String> {
    let mut f = crate::TsFanOut::new(crate::FanOutConfig {
        max_lag_bytes: 4096,
        max_gop_bytes: 8192,
        max_skips: 2,
    });
    let mut early = f.join();
    let mut late = None;
    let mut packets = 0;
    let mut rest = data;
    while !rest.is_empty() {
        let n = (usize::from(rest[0]) * 3 + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        f.push(chunk);
        if late.is_none() && rest.len() < data.len() / 2 {
            late = Some(f.join());
        }
        for cursor in std::iter::once(&mut early).chain(late.as_mut()) {
            let mut out = Vec::new();
            f.read(cursor, 1000, &mut out);
            for c in &out {
                if c.bytes.len() % crate::fanout::TS_PACKET_LEN != 0 {
                    return Err(format!("{} bytes: not whole packets", c.bytes.len()));
                }
                if c.bytes
                    .chunks(crate::fanout::TS_PACKET_LEN)
                    .any(|p| p[0] != 0x47)
                {
                    return Err("a packet without its sync byte".into());
                }
                packets += c.bytes.len() / crate::fanout::TS_PACKET_LEN;
            }
        }
        if f.buffered_bytes() > 8192 + 4096 + data.len() as u64 {
            return Err(format!("{} bytes held", f.buffered_bytes()));
        }
    }
    Ok(packets)
}

/// Parses `data` after its first byte as a request head and as a response head, with a
/// limit taken from that first byte: a complete head lies within the limit and the bytes
/// given, and a request head written back from what was parsed parses to the same
/// fields. The number of complete heads.
pub fn heads(data: &[u8]) -> Result<usize, String> {
    use crate::head;
    let Some((limit, data)) = data.split_first() else {
        return Ok(0);
    };
    let max = usize::from(*limit) * 64;
    let mut complete = 0;
    if let Ok(Some(req)) = head::parse_request(data, max) {
        if req.len > data.len().min(max) {
            return Err(format!(
                "request head of {} past its bytes or limit",
                req.len
            ));
        }
        let mut again = Vec::new();
        let fields = req.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
        head::write_request(&mut again, &req.method, &req.target, fields);
        let reparsed = head::parse_request(&again, again.len())
            .map_err(|e| format!("a written head does not parse: {e}"))?
            .ok_or("a written head is incomplete")?;
        if (reparsed.method, reparsed.target, reparsed.headers)
            != (req.method, req.target, req.headers)
        {
            return Err("a written request head parses to other fields".into());
        }
        complete += 1;
    }
    if let Ok(Some(res)) = head::parse_response(data, max) {
        if res.len > data.len().min(max) {
            return Err(format!(
                "response head of {} past its bytes or limit",
                res.len
            ));
        }
        complete += 1;
    }
    Ok(complete)
}
