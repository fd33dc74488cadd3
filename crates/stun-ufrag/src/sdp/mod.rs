//! SDP helpers for WHIP/WHEP signalling: reading `a=ice-ufrag` / `a=ice-pwd` and rewriting
//! `a=candidate` lines, in full session descriptions (`application/sdp`) and in trickle
//! ICE fragments (`application/trickle-ice-sdpfrag`, RFC 8840, sent in WHIP `PATCH`).
//!
//! Both are treated as lines; every byte outside the lines that are rewritten or dropped
//! is copied through, line endings included, so signatures or diffs of the rest of the
//! body stay valid and an origin's quirks reach the client untouched.

mod candidate;
mod exchange;

pub use candidate::{
    candidates, rewrite_candidates, rewrite_sdpfrag_candidates, Candidate, CandidateAddr,
    CandidateHost, CandidateType, TcpCandidates, Transport,
};
pub use exchange::{
    ice_restart, media_candidate, relay_answer, relay_answer_fragment, Exchange, RelayedAnswer,
};

use crate::Error;

/// Largest SDP body accepted. Real offers with simulcast are under 16 KiB.
pub const MAX_SDP_LEN: usize = 64 * 1024;
/// Most lines accepted in one SDP body.
pub const MAX_SDP_LINES: usize = 4096;
/// Longest `ice-ufrag` / `ice-pwd` value, per RFC 8839 §5.4.
pub const MAX_ICE_VALUE_LEN: usize = 256;

/// Which part of the description a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// Before the first `m=` line.
    Session,
    /// The media section with this 0-based index.
    Media(usize),
}

/// An ICE username fragment and password pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IceCredentials<'a> {
    /// `a=ice-ufrag` value.
    pub ufrag: &'a str,
    /// `a=ice-pwd` value.
    pub pwd: &'a str,
}

/// The ICE attributes written in one section, without inheritance from the session level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SectionCredentials<'a> {
    /// Where they were found.
    pub section: Section,
    /// The section's `a=mid`, if any.
    pub mid: Option<&'a str>,
    /// First `a=ice-ufrag` of the section.
    pub ufrag: Option<&'a str>,
    /// First `a=ice-pwd` of the section.
    pub pwd: Option<&'a str>,
}

/// One line of a body: `full` with its terminator, `content` without `\n` / `\r\n`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    pub(crate) full: &'a str,
    pub(crate) content: &'a str,
    /// 1-based.
    pub(crate) number: usize,
}

pub(crate) fn check_limits(body: &str) -> Result<(), Error> {
    if body.len() > MAX_SDP_LEN {
        return Err(Error::SdpTooLarge {
            len: body.len(),
            max: MAX_SDP_LEN,
        });
    }
    let newlines = body.bytes().filter(|&b| b == b'\n').count();
    if newlines >= MAX_SDP_LINES {
        return Err(Error::SdpTooManyLines { max: MAX_SDP_LINES });
    }
    Ok(())
}

fn check_full_sdp(sdp: &str) -> Result<(), Error> {
    check_limits(sdp)?;
    if sdp.starts_with("v=") {
        Ok(())
    } else {
        Err(Error::NotSdp)
    }
}

pub(crate) fn lines(body: &str) -> impl Iterator<Item = Line<'_>> {
    body.split_inclusive('\n').enumerate().map(|(i, full)| {
        let content = full.strip_suffix('\n').unwrap_or(full);
        let content = content.strip_suffix('\r').unwrap_or(content);
        Line {
            full,
            content,
            number: i + 1,
        }
    })
}

fn attribute_value<'a>(content: &'a str, name: &str) -> Option<&'a str> {
    content
        .strip_prefix("a=")?
        .strip_prefix(name)?
        .strip_prefix(':')
        .map(|v| v.trim_matches([' ', '\t']))
}

fn ice_value(value: &str, line: usize) -> Result<&str, Error> {
    // RFC 8839 ice-chars are ALPHA / DIGIT / "+" / "/"; accepting any visible ASCII but ':'
    // tolerates odd implementations while keeping the value safe to join into a STUN
    // USERNAME and to split again.
    let ok = !value.is_empty()
        && value.len() <= MAX_ICE_VALUE_LEN
        && value.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    if ok {
        Ok(value)
    } else {
        Err(Error::BadIceCredential { line })
    }
}

fn scan_sections(body: &str) -> Result<Vec<SectionCredentials<'_>>, Error> {
    let mut out = vec![SectionCredentials {
        section: Section::Session,
        mid: None,
        ufrag: None,
        pwd: None,
    }];
    let mut media = 0usize;
    for line in lines(body) {
        let c = line.content;
        if c.starts_with("m=") {
            out.push(SectionCredentials {
                section: Section::Media(media),
                mid: None,
                ufrag: None,
                pwd: None,
            });
            media += 1;
            continue;
        }
        if !c.starts_with("a=") {
            continue;
        }
        let Some(current) = out.last_mut() else {
            continue;
        };
        if let Some(v) = attribute_value(c, "ice-ufrag") {
            let v = ice_value(v, line.number)?;
            current.ufrag.get_or_insert(v);
        } else if let Some(v) = attribute_value(c, "ice-pwd") {
            let v = ice_value(v, line.number)?;
            current.pwd.get_or_insert(v);
        } else if let Some(v) = attribute_value(c, "mid") {
            current.mid.get_or_insert(v);
        }
    }
    Ok(out)
}

/// The credentials of the transport the first media section uses: its own
/// `a=ice-ufrag`/`a=ice-pwd` if it has them (RFC 8839: media level wins), else the
/// session-level ones. With BUNDLE, the usual case in WebRTC, that is the one transport.
fn effective<'a>(sections: &[SectionCredentials<'a>]) -> (Option<&'a str>, Option<&'a str>) {
    let session = sections.first();
    let first_media = sections.get(1);
    let ufrag = first_media
        .and_then(|m| m.ufrag)
        .or_else(|| session.and_then(|s| s.ufrag));
    let pwd = first_media
        .and_then(|m| m.pwd)
        .or_else(|| session.and_then(|s| s.pwd));
    (ufrag, pwd)
}

/// ICE ufrag and password of a full SDP offer or answer.
///
/// The client's ufrag comes from the WHIP/WHEP offer; the server's ufrag and password from
/// the origin's answer.
pub fn ice_credentials(sdp: &str) -> Result<IceCredentials<'_>, Error> {
    check_full_sdp(sdp)?;
    let sections = scan_sections(sdp)?;
    match effective(&sections) {
        (Some(ufrag), Some(pwd)) => Ok(IceCredentials { ufrag, pwd }),
        (None, _) => Err(Error::MissingIceUfrag),
        (_, None) => Err(Error::MissingIcePwd),
    }
}

/// ICE ufrag and password of a trickle-ICE fragment, `None` if it carries neither (plain
/// candidate trickling may omit them; new ones signal an ICE restart).
pub fn sdpfrag_ice_credentials(frag: &str) -> Result<Option<IceCredentials<'_>>, Error> {
    check_limits(frag)?;
    let sections = scan_sections(frag)?;
    match effective(&sections) {
        (Some(ufrag), Some(pwd)) => Ok(Some(IceCredentials { ufrag, pwd })),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(Error::MissingIceUfrag),
        (Some(_), None) => Err(Error::MissingIcePwd),
    }
}

/// ICE attributes of every section (session first, then each `m=` in order), for callers
/// that handle un-bundled descriptions. Works on full SDP and on sdpfrag bodies.
pub fn section_credentials(body: &str) -> Result<Vec<SectionCredentials<'_>>, Error> {
    check_limits(body)?;
    scan_sections(body)
}

#[cfg(test)]
mod tests;
