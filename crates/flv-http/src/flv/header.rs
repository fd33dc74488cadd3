//! The FLV file header (`FLV`, version 1, flags, DataOffset).

use bytes::Bytes;

/// The FLV file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlvHeader {
    /// FLV version (always 1: other versions are refused).
    pub version: u8,
    /// The header says the file has audio tags.
    pub has_audio: bool,
    /// The header says the file has video tags.
    pub has_video: bool,
    /// Bytes from the start of the file to the first PreviousTagSize (9 in practice).
    pub data_offset: u32,
}

/// Length of the fixed part of the header.
pub(crate) const HEADER_LEN: usize = 9;

impl FlvHeader {
    /// Parses the 9 fixed bytes; `None` if the signature is not `FLV`.
    pub(crate) fn parse(b: &[u8; HEADER_LEN]) -> Option<Self> {
        let [f, l, v, version, flags, o0, o1, o2, o3] = *b;
        if [f, l, v] != *b"FLV" {
            return None;
        }
        Some(FlvHeader {
            version,
            has_audio: flags & 0x04 != 0,
            has_video: flags & 0x01 != 0,
            data_offset: u32::from_be_bytes([o0, o1, o2, o3]),
        })
    }

    /// The 13 bytes a new viewer needs before the first tag: a 9-byte header with these
    /// flags and PreviousTagSize0. Tags from [`crate::FlvReader`] follow as they are.
    pub fn to_bytes(&self) -> Bytes {
        let flags = u8::from(self.has_audio) << 2 | u8::from(self.has_video);
        let mut out = [0u8; 13];
        out[..3].copy_from_slice(b"FLV");
        out[3] = 1;
        out[4] = flags;
        out[5..9].copy_from_slice(&9u32.to_be_bytes());
        Bytes::copy_from_slice(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_write() {
        let raw = *b"FLV\x01\x05\x00\x00\x00\x09";
        let h = FlvHeader::parse(&raw);
        assert_eq!(
            h,
            Some(FlvHeader {
                version: 1,
                has_audio: true,
                has_video: true,
                data_offset: 9
            })
        );
        let out = h.map(|h| h.to_bytes());
        assert_eq!(
            out.as_deref(),
            Some(&b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"[..])
        );
        assert_eq!(FlvHeader::parse(b"FLX\x01\x05\x00\x00\x00\x09"), None);
    }
}
