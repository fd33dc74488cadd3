//! Handshake extension blocks: 16-bit type, 16-bit length in 32-bit words, contents.
//!
//! A proxy must hand the client's HSREQ/KMREQ/SID to the origin unchanged, so blocks are
//! kept as the borrowed bytes they arrived in; the typed views below only read them.

use crate::codec::Reader;
use crate::{Error, MAX_STREAMID_LEN};

/// At most this many blocks per handshake: a real one has 2 to 5.
pub const MAX_EXTENSIONS: usize = 16;

/// Block types SRT defines (`SRT_CMD_*` in libsrt's `handshake.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtensionType {
    /// 1: the caller's SRT parameters.
    HsReq,
    /// 2: the listener's SRT parameters.
    HsRsp,
    /// 3: key material from the caller (encryption).
    KmReq,
    /// 4: key material answer.
    KmRsp,
    /// 5: the streamid.
    Sid,
    /// 6: congestion controller name.
    Congestion,
    /// 7: packet filter configuration.
    Filter,
    /// 8: socket group membership.
    Group,
    /// Any other value.
    Other(u16),
}

impl ExtensionType {
    /// From the wire value.
    pub fn from_u16(v: u16) -> Self {
        match v {
            1 => ExtensionType::HsReq,
            2 => ExtensionType::HsRsp,
            3 => ExtensionType::KmReq,
            4 => ExtensionType::KmRsp,
            5 => ExtensionType::Sid,
            6 => ExtensionType::Congestion,
            7 => ExtensionType::Filter,
            8 => ExtensionType::Group,
            other => ExtensionType::Other(other),
        }
    }

    /// The wire value.
    pub fn to_u16(self) -> u16 {
        match self {
            ExtensionType::HsReq => 1,
            ExtensionType::HsRsp => 2,
            ExtensionType::KmReq => 3,
            ExtensionType::KmRsp => 4,
            ExtensionType::Sid => 5,
            ExtensionType::Congestion => 6,
            ExtensionType::Filter => 7,
            ExtensionType::Group => 8,
            ExtensionType::Other(v) => v,
        }
    }
}

/// One block, borrowed from the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// Its type.
    pub ext_type: ExtensionType,
    /// Its contents (a whole number of words).
    pub contents: &'a [u8],
    /// The block as received, header included.
    pub raw: &'a [u8],
}

/// HSREQ / HSRSP contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SrtHs {
    /// SRT library version, `0x00MMmmpp` (1.5.1 = `0x010501`).
    pub srt_version: u32,
    /// `SRT_OPT_*` flags (TSBPD, TLPKTDROP, NAKREPORT, REXMITFLG, ...).
    pub flags: u32,
    /// Receiver latency, ms (high half of the third word).
    pub recv_latency_ms: u16,
    /// Sender latency, ms (low half).
    pub send_latency_ms: u16,
}

/// The fixed part of a KMREQ / KMRSP key-material message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyMaterial {
    /// Version (1).
    pub version: u8,
    /// Packet type (2 = key material).
    pub packet_type: u8,
    /// Signature (`0x2029`, "HAI" in PnP vendor id).
    pub sign: u16,
    /// Which keys follow (1 even, 2 odd, 3 both).
    pub key_flags: u8,
    /// Cipher (2 = AES-CTR, 4 = AES-GCM).
    pub cipher: u8,
    /// Salt length in bytes.
    pub salt_len: usize,
    /// Key length in bytes (16, 24, 32).
    pub key_len: usize,
}

/// A KMRSP that is only a state word: the peer could not use the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyMaterialState(pub u32);

/// The SRT group a socket joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Group {
    /// Group id.
    pub id: u32,
    /// Group type (1 broadcast, 2 backup, ...).
    pub group_type: u8,
    /// Flags.
    pub flags: u8,
    /// Weight.
    pub weight: u16,
}

impl<'a> Extension<'a> {
    /// HSREQ/HSRSP fields; `None` for other types.
    pub fn srt_hs(&self) -> Option<Result<SrtHs, Error>> {
        matches!(self.ext_type, ExtensionType::HsReq | ExtensionType::HsRsp).then(|| {
            let mut r = Reader::new(self.contents);
            let short = |_| self.too_short(12);
            let srt_version = r.u32("HSREQ").map_err(short)?;
            let flags = r.u32("HSREQ").map_err(short)?;
            let recv_latency_ms = r.u16("HSREQ").map_err(short)?;
            let send_latency_ms = r.u16("HSREQ").map_err(short)?;
            Ok(SrtHs {
                srt_version,
                flags,
                recv_latency_ms,
                send_latency_ms,
            })
        })
    }

    /// KMREQ/KMRSP header fields; `Err(state)` when a KMRSP carries only a state word.
    pub fn key_material(&self) -> Option<Result<Result<KeyMaterial, KeyMaterialState>, Error>> {
        matches!(self.ext_type, ExtensionType::KmReq | ExtensionType::KmRsp).then(|| {
            let mut r = Reader::new(self.contents);
            let short = |_| self.too_short(16);
            let w0 = r.u32("KM").map_err(short)?;
            if self.contents.len() == 4 {
                return Ok(Err(KeyMaterialState(w0)));
            }
            let _keki = r.u32("KM").map_err(short)?;
            let w2 = r.u32("KM").map_err(short)?;
            let w3 = r.u32("KM").map_err(short)?;
            let [b0, _, _, b3] = w0.to_be_bytes();
            let [_, sign_hi, sign_lo, _] = w0.to_be_bytes();
            let [cipher, _, _, _] = w2.to_be_bytes();
            let [_, _, slen, klen] = w3.to_be_bytes();
            Ok(Ok(KeyMaterial {
                version: (b0 >> 4) & 0x7,
                packet_type: b0 & 0xF,
                sign: u16::from_be_bytes([sign_hi, sign_lo]),
                key_flags: b3 & 0x3,
                cipher,
                salt_len: usize::from(slen) * 4,
                key_len: usize::from(klen) * 4,
            }))
        })
    }

    /// GROUP fields; `None` for other types.
    pub fn group(&self) -> Option<Result<Group, Error>> {
        (self.ext_type == ExtensionType::Group).then(|| {
            let mut r = Reader::new(self.contents);
            let id = r.u32("GROUP").map_err(|_| self.too_short(8))?;
            let [group_type, flags, w_hi, w_lo] =
                r.u32("GROUP").map_err(|_| self.too_short(8))?.to_be_bytes();
            Ok(Group {
                id,
                group_type,
                flags,
                weight: u16::from_be_bytes([w_hi, w_lo]),
            })
        })
    }

    /// SID, CONGESTION or FILTER text; `None` for other types.
    pub fn text(&self) -> Option<Result<String, Error>> {
        let what = match self.ext_type {
            ExtensionType::Sid => "SID",
            ExtensionType::Congestion => "CONGESTION",
            ExtensionType::Filter => "FILTER",
            _ => return None,
        };
        Some(decode_text(self.contents, what))
    }

    fn too_short(&self, needed: usize) -> Error {
        Error::ExtensionTooShort {
            ext_type: self.ext_type.to_u16(),
            len: self.contents.len(),
            needed,
        }
    }
}

/// Decodes SRT's text packing: libsrt copies the string into 32-bit words and byte-swaps
/// every word on the way out, so each group of 4 bytes arrives reversed; the last word is
/// padded with NULs.
pub fn decode_text(contents: &[u8], what: &'static str) -> Result<String, Error> {
    if contents.len() > MAX_STREAMID_LEN {
        return Err(Error::StreamIdTooLong {
            len: contents.len(),
            max: MAX_STREAMID_LEN,
        });
    }
    let mut out = Vec::with_capacity(contents.len());
    for chunk in contents.chunks(4) {
        out.extend(chunk.iter().rev());
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    String::from_utf8(out).map_err(|_| Error::NotUtf8 { what })
}

/// Packs text the way libsrt does (see [`decode_text`]); at most [`MAX_STREAMID_LEN`] bytes.
pub fn encode_text(text: &str) -> Result<Vec<u8>, Error> {
    if text.len() > MAX_STREAMID_LEN {
        return Err(Error::StreamIdTooLong {
            len: text.len(),
            max: MAX_STREAMID_LEN,
        });
    }
    let mut out = Vec::with_capacity(text.len().div_ceil(4) * 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut word = [0u8; 4];
        for (dst, src) in word.iter_mut().rev().zip(chunk) {
            *dst = *src;
        }
        out.extend_from_slice(&word);
    }
    Ok(out)
}

/// Appends one block (header + contents) to `out`.
pub fn push_extension(
    out: &mut Vec<u8>,
    ext_type: ExtensionType,
    contents: &[u8],
) -> Result<(), Error> {
    let words = u16::try_from(contents.len() / 4)
        .ok()
        .filter(|_| contents.len() % 4 == 0)
        .ok_or(Error::BadExtensionLength {
            len: contents.len(),
        })?;
    out.extend_from_slice(&ext_type.to_u16().to_be_bytes());
    out.extend_from_slice(&words.to_be_bytes());
    out.extend_from_slice(contents);
    Ok(())
}

/// The extension area of a handshake: validated once, then iterated without checks failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extensions<'a> {
    bytes: &'a [u8],
}

impl<'a> Extensions<'a> {
    /// No blocks.
    pub const EMPTY: Extensions<'static> = Extensions { bytes: &[] };

    /// Validates a sequence of blocks: each fits, no stray bytes, at most [`MAX_EXTENSIONS`].
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let mut count = 0;
        while !r.rest().is_empty() {
            if r.rest().len() < 4 {
                return Err(Error::TrailingBytes {
                    len: r.rest().len(),
                });
            }
            count += 1;
            if count > MAX_EXTENSIONS {
                return Err(Error::TooManyExtensions {
                    max: MAX_EXTENSIONS,
                });
            }
            let ext_type = r.u16("extension type")?;
            let words = r.u16("extension length")?;
            let available = r.rest().len();
            r.take(usize::from(words) * 4, "extension")
                .map_err(|_| Error::ExtensionOverrun {
                    ext_type,
                    words,
                    available,
                })?;
        }
        Ok(Extensions { bytes })
    }

    /// Bytes that came out of a validated [`Extensions`].
    pub(crate) fn trusted(bytes: &'a [u8]) -> Self {
        Extensions { bytes }
    }

    /// The blocks as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// True when there is no block.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The blocks in order.
    pub fn iter(&self) -> ExtensionIter<'a> {
        ExtensionIter { rest: self.bytes }
    }

    /// The first block of this type.
    pub fn find(&self, ext_type: ExtensionType) -> Option<Extension<'a>> {
        self.iter().find(|e| e.ext_type == ext_type)
    }

    /// The streamid, if a SID block is present.
    pub fn streamid(&self) -> Result<Option<String>, Error> {
        self.find(ExtensionType::Sid)
            .and_then(|e| e.text())
            .transpose()
    }
}

impl<'a> IntoIterator for Extensions<'a> {
    type Item = Extension<'a>;
    type IntoIter = ExtensionIter<'a>;
    fn into_iter(self) -> ExtensionIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Extensions`].
#[derive(Debug, Clone)]
pub struct ExtensionIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ExtensionIter<'a> {
    type Item = Extension<'a>;

    fn next(&mut self) -> Option<Extension<'a>> {
        let all = self.rest;
        let mut r = Reader::new(all);
        let ext_type = ExtensionType::from_u16(r.u16("").ok()?);
        let len = usize::from(r.u16("").ok()?) * 4;
        let contents = r.take(len, "").ok()?;
        let raw = all.get(..4 + len)?;
        self.rest = r.rest();
        Some(Extension {
            ext_type,
            contents,
            raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The extension area of ffmpeg's conclusion with a passphrase (bytes 64..).
    const KM_CONCLUSION: &[u8] = include_bytes!("../tests/data/ffmpeg_passphrase_conclusion.bin");

    fn ext_area() -> &'static [u8] {
        KM_CONCLUSION.get(64..).unwrap()
    }

    #[test]
    fn captured_blocks_typed_views() {
        let exts = Extensions::parse(ext_area()).unwrap();
        let kinds: Vec<_> = exts.iter().map(|e| e.ext_type).collect();
        assert_eq!(
            kinds,
            [
                ExtensionType::HsReq,
                ExtensionType::Sid,
                ExtensionType::KmReq
            ]
        );
        let hs = exts
            .find(ExtensionType::HsReq)
            .unwrap()
            .srt_hs()
            .unwrap()
            .unwrap();
        assert_eq!(
            hs,
            SrtHs {
                srt_version: 0x010501,
                flags: 0xbf,
                recv_latency_ms: 120,
                send_latency_ms: 0
            }
        );
        assert_eq!(
            exts.streamid().unwrap().as_deref(),
            Some("#!::r=live/livestream,m=publish")
        );
        let km = exts
            .find(ExtensionType::KmReq)
            .unwrap()
            .key_material()
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            (km.version, km.packet_type, km.sign, km.key_flags),
            (1, 2, 0x2029, 1)
        );
        assert_eq!((km.cipher, km.salt_len, km.key_len), (2, 16, 16));
        let raw: Vec<u8> = exts.iter().flat_map(|e| e.raw.iter().copied()).collect();
        assert_eq!(raw, ext_area(), "blocks tile the area exactly");
        assert!(exts.find(ExtensionType::Group).is_none());
    }

    #[test]
    fn text_codec_matches_libsrt_packing() {
        assert_eq!(encode_text("#!::r").unwrap(), b"::!#\0\0\0r");
        assert_eq!(decode_text(b"::!#\0\0\0r", "SID").unwrap(), "#!::r");
        for s in ["", "a", "abcd", "abcde", "#!::r=live/livestream,m=publish"] {
            assert_eq!(decode_text(&encode_text(s).unwrap(), "SID").unwrap(), s);
        }
        assert!(matches!(
            encode_text(&"x".repeat(513)),
            Err(Error::StreamIdTooLong { len: 513, max: 512 })
        ));
        assert!(encode_text(&"x".repeat(512)).is_ok());
        assert_eq!(
            decode_text(&[0xff, 0xfe, 0, 0], "SID"),
            Err(Error::NotUtf8 { what: "SID" })
        );
    }

    #[test]
    fn malformed_areas_are_named() {
        assert_eq!(
            Extensions::parse(&[0, 5, 0, 2, 1, 2, 3, 4]),
            Err(Error::ExtensionOverrun {
                ext_type: 5,
                words: 2,
                available: 4
            })
        );
        assert_eq!(
            Extensions::parse(&[0, 5, 0]),
            Err(Error::TrailingBytes { len: 3 })
        );
        let many: Vec<u8> = std::iter::repeat_n([0u8, 9, 0, 0], 17).flatten().collect();
        assert_eq!(
            Extensions::parse(&many),
            Err(Error::TooManyExtensions { max: 16 })
        );
        let short = Extensions::parse(&[0, 1, 0, 1, 0, 0, 0, 1]).unwrap();
        assert!(matches!(
            short.iter().next().unwrap().srt_hs(),
            Some(Err(Error::ExtensionTooShort { .. }))
        ));
    }

    #[test]
    fn built_blocks_parse_back() {
        let mut out = Vec::new();
        push_extension(
            &mut out,
            ExtensionType::Sid,
            &encode_text("live/a").unwrap(),
        )
        .unwrap();
        push_extension(&mut out, ExtensionType::Group, &[0, 0, 0, 7, 2, 0, 0, 1]).unwrap();
        push_extension(&mut out, ExtensionType::KmRsp, &[0, 0, 0, 4]).unwrap();
        assert_eq!(
            push_extension(&mut out, ExtensionType::Sid, &[1, 2, 3]),
            Err(Error::BadExtensionLength { len: 3 })
        );
        let exts = Extensions::parse(&out).unwrap();
        assert_eq!(exts.streamid().unwrap().as_deref(), Some("live/a"));
        let g = exts
            .find(ExtensionType::Group)
            .unwrap()
            .group()
            .unwrap()
            .unwrap();
        assert_eq!(
            g,
            Group {
                id: 7,
                group_type: 2,
                flags: 0,
                weight: 1
            }
        );
        let km = exts
            .find(ExtensionType::KmRsp)
            .unwrap()
            .key_material()
            .unwrap()
            .unwrap();
        assert_eq!(km, Err(KeyMaterialState(4)));
    }

    proptest::proptest! {
        #[test]
        fn text_round_trips(s in "[^\u{0}]{0,128}") {
            if let Ok(packed) = encode_text(&s) {
                proptest::prop_assert_eq!(decode_text(&packed, "SID").unwrap(), s);
            }
        }

        #[test]
        fn arbitrary_areas_never_panic(bytes in proptest::collection::vec(0u8.., 0..200)) {
            if let Ok(exts) = Extensions::parse(&bytes) {
                for e in exts {
                    let _ = (e.srt_hs(), e.key_material(), e.group(), e.text());
                }
            }
        }
    }
}
