//! Fleet routing tokens: what a proxy hands a client for later routing (an HLS affinity
//! token, a WHIP/WHEP resource URL), signed with the fleet's shared secret so that any
//! proxy of the fleet routes it without a store lookup.
//!
//! Sans-IO: text in, claims out; the caller supplies the time. It lives here, not in
//! `hls-rewrite`, because it names an [`OriginId`] and serves every protocol that routes
//! by origin (HLS and WebRTC), which is this crate's vocabulary.
//!
//! # Format (version 1)
//!
//! base64url without padding of:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version, `1` |
//! | 1 | [`TokenKind`] |
//! | 4 | expiry, Unix seconds, big-endian |
//! | 1 + n | origin id, length-prefixed (1 to 255 bytes) |
//! | 2 + n | subject (the stream, the session), length-prefixed (at most [`MAX_SUBJECT_LEN`]) |
//! | 12 | HMAC-SHA256 of a domain label, all the above and a *context* the token does not carry, truncated to 96 bits |
//!
//! The context binds a token to what travels beside it (the resource URL of a WHIP/WHEP
//! session): the verifier supplies it, so the token stays short. A token for `vhost/app/s`
//! on a 20-byte origin id is 62 characters.
//!
//! Rotation: [`FleetKeys`] holds the current secret, which signs, and optionally the
//! previous one, which still verifies until the operator removes it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Error, OriginId};

/// The version byte of the format above.
const VERSION: u8 = 1;
/// Bytes of the truncated MAC (96 bits).
const MAC_LEN: usize = 12;
/// Longest subject carried.
pub const MAX_SUBJECT_LEN: usize = 1024;
/// Longest token text read; longer text is refused before it is decoded.
pub const MAX_TOKEN_LEN: usize =
    (1 + 1 + 4 + 1 + 255 + 2 + MAX_SUBJECT_LEN + MAC_LEN).div_ceil(3) * 4;
/// What the MAC covers first, so a token can never verify as another protocol's MAC.
const DOMAIN: &[u8] = b"media-proxy fleet token v1\0";

/// What a token is for: a token of one kind never verifies as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// An HLS affinity token: the subject is the stream (`vhost/app/stream`).
    Hls,
    /// A WHIP/WHEP resource URL: the subject is the session's server ufrag, the context
    /// the origin's resource (path and query).
    RtcResource,
}

impl TokenKind {
    fn byte(self) -> u8 {
        match self {
            TokenKind::Hls => 1,
            TokenKind::RtcResource => 2,
        }
    }
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// What it is for.
    pub kind: TokenKind,
    /// The origin the client's requests go to.
    pub origin: OriginId,
    /// The stream or session it names.
    pub subject: String,
    /// When it stops being accepted, in Unix seconds.
    pub expires: u32,
}

/// The fleet's secrets: the current one signs and verifies; the previous one, during a
/// rotation, only verifies. Debug output never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct FleetKeys {
    current: Vec<u8>,
    previous: Option<Vec<u8>>,
}

impl std::fmt::Debug for FleetKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetKeys")
            .field("current", &"<secret>")
            .field("previous", &self.previous.as_ref().map(|_| "<secret>"))
            .finish()
    }
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not a token of this format (bad length, alphabet, version, fields): maybe a token
    /// of another kind of proxy, or of an older one.
    Malformed,
    /// Well formed, but signed by neither secret, or for another kind or context.
    Forged,
    /// Authentic, but past its expiry.
    Expired,
}

impl From<Refused> for Error {
    fn from(r: Refused) -> Self {
        Error::InvalidToken(match r {
            Refused::Malformed => "malformed",
            Refused::Forged => "bad signature",
            Refused::Expired => "expired",
        })
    }
}

impl FleetKeys {
    /// Keys from the current secret and, during a rotation, the previous one. Secrets are
    /// bytes of any length (HMAC hashes long ones); an empty current secret is refused.
    pub fn new(current: &[u8], previous: Option<&[u8]>) -> Result<Self, Error> {
        if current.is_empty() {
            return Err(Error::InvalidInput("the fleet secret is empty".into()));
        }
        Ok(FleetKeys {
            current: current.to_vec(),
            previous: previous.filter(|p| !p.is_empty()).map(<[u8]>::to_vec),
        })
    }

    /// A token for `claims`, bound to `context`. `None` when a field does not fit the
    /// format (an origin id longer than 255 bytes, a subject longer than
    /// [`MAX_SUBJECT_LEN`]): the caller then falls back to what it does without a secret.
    pub fn sign(&self, claims: &Claims, context: &[u8]) -> Option<String> {
        let origin = claims.origin.as_str().as_bytes();
        let subject = claims.subject.as_bytes();
        if origin.is_empty() || origin.len() > 255 || subject.len() > MAX_SUBJECT_LEN {
            return None;
        }
        let mut bytes = Vec::with_capacity(9 + origin.len() + subject.len() + MAC_LEN);
        bytes.push(VERSION);
        bytes.push(claims.kind.byte());
        bytes.extend_from_slice(&claims.expires.to_be_bytes());
        bytes.push(origin.len() as u8);
        bytes.extend_from_slice(origin);
        bytes.extend_from_slice(&(subject.len() as u16).to_be_bytes());
        bytes.extend_from_slice(subject);
        let tag = mac(&self.current, &bytes, context).finalize().into_bytes();
        bytes.extend_from_slice(&tag[..MAC_LEN]);
        Some(encode(&bytes))
    }

    /// The claims of `token` if it is a token of `kind`, bound to `context`, signed by the
    /// current or the previous secret, and not expired at `now` (Unix seconds).
    pub fn verify(
        &self,
        token: &str,
        kind: TokenKind,
        context: &[u8],
        now: u64,
    ) -> Result<Claims, Refused> {
        let (claims, signed, tag) = parse(token)?;
        if claims.kind != kind {
            return Err(Refused::Forged);
        }
        let authentic = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .any(|secret| {
                mac(secret, &signed, context)
                    .verify_truncated_left(&tag)
                    .is_ok()
            });
        if !authentic {
            return Err(Refused::Forged);
        }
        if u64::from(claims.expires) <= now {
            return Err(Refused::Expired);
        }
        Ok(claims)
    }
}

fn mac(secret: &[u8], signed: &[u8], context: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(DOMAIN);
    mac.update(&(signed.len() as u32).to_be_bytes());
    mac.update(signed);
    mac.update(context);
    mac
}

/// Reads a token without checking its signature: its claims, the bytes the MAC covers
/// and the MAC. Every length is checked against what is left; nothing is trusted.
pub fn parse(token: &str) -> Result<(Claims, Vec<u8>, [u8; MAC_LEN]), Refused> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Refused::Malformed);
    }
    let bytes = decode(token).ok_or(Refused::Malformed)?;
    if bytes.len() < 1 + 1 + 4 + 1 + 2 + MAC_LEN {
        return Err(Refused::Malformed);
    }
    let (signed, tag) = bytes.split_at(bytes.len() - MAC_LEN);
    let mut rest = signed;
    let mut take = |n: usize| -> Result<&[u8], Refused> {
        if rest.len() < n {
            return Err(Refused::Malformed);
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    if take(1)?[0] != VERSION {
        return Err(Refused::Malformed);
    }
    let kind = match take(1)?[0] {
        1 => TokenKind::Hls,
        2 => TokenKind::RtcResource,
        _ => return Err(Refused::Malformed),
    };
    let expires = u32::from_be_bytes(take(4)?.try_into().map_err(|_| Refused::Malformed)?);
    let origin_len = usize::from(take(1)?[0]);
    if origin_len == 0 {
        return Err(Refused::Malformed);
    }
    let origin = std::str::from_utf8(take(origin_len)?).map_err(|_| Refused::Malformed)?;
    let origin = OriginId::new(origin);
    let subject_len = usize::from(u16::from_be_bytes(
        take(2)?.try_into().map_err(|_| Refused::Malformed)?,
    ));
    if subject_len > MAX_SUBJECT_LEN {
        return Err(Refused::Malformed);
    }
    let subject = std::str::from_utf8(take(subject_len)?)
        .map_err(|_| Refused::Malformed)?
        .to_owned();
    if !rest.is_empty() {
        return Err(Refused::Malformed);
    }
    let mut mac = [0u8; MAC_LEN];
    mac.copy_from_slice(tag);
    Ok((
        Claims {
            kind,
            origin,
            subject,
            expires,
        },
        signed.to_vec(),
        mac,
    ))
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// Strict base64url without padding: other characters, an impossible length and unused
/// bits that are not zero (a second spelling of the same bytes) are refused.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    let text = text.as_bytes();
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    for chunk in text.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let keep = chunk.len() - 1;
        if bytes[keep..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[..keep]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(current: &str, previous: Option<&str>) -> FleetKeys {
        FleetKeys::new(current.as_bytes(), previous.map(str::as_bytes)).unwrap()
    }

    fn claims_strategy() -> impl Strategy<Value = Claims> {
        (
            prop::bool::ANY,
            "[a-zA-Z0-9._:-]{1,255}",
            "\\PC{0,200}",
            any::<u32>(),
        )
            .prop_map(|(hls, origin, subject, expires)| Claims {
                kind: if hls {
                    TokenKind::Hls
                } else {
                    TokenKind::RtcResource
                },
                origin: OriginId::new(origin),
                subject,
                expires,
            })
    }

    proptest! {
        #[test]
        fn round_trip(claims in claims_strategy(), context in prop::collection::vec(any::<u8>(), 0..64)) {
            let k = keys("fleet secret", None);
            let token = k.sign(&claims, &context).unwrap();
            prop_assert!(token.len() <= MAX_TOKEN_LEN);
            prop_assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            let now = u64::from(claims.expires).saturating_sub(1);
            if claims.expires > 0 {
                prop_assert_eq!(k.verify(&token, claims.kind, &context, now), Ok(claims.clone()));
            }
            prop_assert_eq!(k.verify(&token, claims.kind, &context, u64::from(claims.expires)), Err(Refused::Expired));
        }

        #[test]
        fn any_change_is_refused(claims in claims_strategy(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let claims = Claims { expires: u32::MAX, ..claims };
            let k = keys("fleet secret", None);
            let token = k.sign(&claims, b"ctx").unwrap();
            let mut bytes = decode(&token).unwrap();
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
            let tampered = encode(&bytes);
            prop_assert!(k.verify(&tampered, claims.kind, b"ctx", 0).is_err());
            // Another context, another kind, another secret: refused too.
            prop_assert_eq!(k.verify(&token, claims.kind, b"other", 0), Err(Refused::Forged));
            let other_kind = if claims.kind == TokenKind::Hls { TokenKind::RtcResource } else { TokenKind::Hls };
            prop_assert_eq!(k.verify(&token, other_kind, b"ctx", 0), Err(Refused::Forged));
            prop_assert_eq!(keys("another", None).verify(&token, claims.kind, b"ctx", 0), Err(Refused::Forged));
        }

        #[test]
        fn rotation_accepts_the_previous_secret_until_it_is_dropped(claims in claims_strategy()) {
            let claims = Claims { expires: u32::MAX, ..claims };
            let old = keys("old", None).sign(&claims, b"").unwrap();
            let rotating = keys("new", Some("old"));
            prop_assert_eq!(rotating.verify(&old, claims.kind, b"", 0), Ok(claims.clone()));
            // New tokens are signed with the new secret, which the old fleet does not know.
            let new = rotating.sign(&claims, b"").unwrap();
            prop_assert_eq!(keys("new", None).verify(&new, claims.kind, b"", 0), Ok(claims.clone()));
            prop_assert_eq!(keys("old", None).verify(&new, claims.kind, b"", 0), Err(Refused::Forged));
            // Once the previous secret is removed, its tokens are refused.
            prop_assert_eq!(keys("new", None).verify(&old, claims.kind, b"", 0), Err(Refused::Forged));
        }

        #[test]
        fn parse_never_panics_and_base64_is_canonical(text in "[A-Za-z0-9_=+/-]{0,80}") {
            let _ = parse(&text);
            if let Some(bytes) = decode(&text) {
                prop_assert_eq!(encode(&bytes), text);
            }
        }
    }

    #[test]
    fn tokens_are_short_and_bounded() {
        let k = keys("s", None);
        let claims = Claims {
            kind: TokenKind::Hls,
            origin: OriginId::new("origin-20-bytes-long"),
            subject: "__defaultVhost__/live/livestream".into(),
            expires: 2_000_000_000,
        };
        let token = k.sign(&claims, b"").unwrap();
        assert!(token.len() < 100, "{} chars: {token}", token.len());
        let too_long = Claims {
            subject: "x".repeat(MAX_SUBJECT_LEN + 1),
            ..claims.clone()
        };
        assert_eq!(k.sign(&too_long, b""), None);
        assert_eq!(
            parse(&"A".repeat(MAX_TOKEN_LEN + 4)),
            Err(Refused::Malformed)
        );
        assert_eq!(
            k.verify("0123456789abcdef", TokenKind::Hls, b"", 0),
            Err(Refused::Malformed)
        );
        assert!(FleetKeys::new(b"", None).is_err());
        let secret = keys("topsecret", Some("oldsecret"));
        let shown = format!("{secret:?}");
        assert!(
            !shown.contains("topsecret") && !shown.contains("oldsecret"),
            "{shown}"
        );
    }
}
