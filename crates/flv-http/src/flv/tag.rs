//! One FLV tag as read from the stream, with the facts a fan-out needs.

use bytes::Bytes;

use super::codec::{audio_info, video_info, AudioCodec, AudioInfo, AudioPacket, FrameType};
use super::codec::{VideoCodec, VideoInfo, VideoPacket};

/// Length of a tag header (type, DataSize, Timestamp, TimestampExtended, StreamID).
pub const TAG_HEADER_LEN: usize = 11;
/// Length of the PreviousTagSize field that follows every tag.
pub(crate) const PREV_SIZE_LEN: usize = 4;

/// The tag type (lower five bits of the first header byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagKind {
    /// 8.
    Audio,
    /// 9.
    Video,
    /// 18: script data (`onMetaData`).
    Script,
    /// Any other value.
    Other(u8),
}

/// One tag: header fields, codec facts, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    /// Tag type.
    pub kind: TagKind,
    /// Timestamp in milliseconds (24 bits plus the 8-bit extension as the high byte).
    pub timestamp: u32,
    /// StreamID (always 0 in conforming files).
    pub stream_id: u32,
    /// The Filter bit: the body is encrypted, so no codec facts are read.
    pub filtered: bool,
    /// Codec facts of a video tag whose body was long enough to read them.
    pub video: Option<VideoInfo>,
    /// Codec facts of an audio tag whose body was long enough to read them.
    pub audio: Option<AudioInfo>,
    /// The PreviousTagSize that followed the tag, as found in the stream.
    pub previous_tag_size: u32,
    raw: Bytes,
}

impl FlvTag {
    /// Builds a tag from header + body + PreviousTagSize; the caller checked the length.
    pub(crate) fn from_raw(raw: Bytes) -> Option<Self> {
        let header: [u8; TAG_HEADER_LEN] = raw.get(..TAG_HEADER_LEN)?.try_into().ok()?;
        let [t, _, _, _, ts0, ts1, ts2, ts_ext, s0, s1, s2] = header;
        let body = raw.get(TAG_HEADER_LEN..raw.len().checked_sub(PREV_SIZE_LEN)?)?;
        let prev: [u8; PREV_SIZE_LEN] = raw.get(raw.len() - PREV_SIZE_LEN..)?.try_into().ok()?;
        let filtered = t & 0x20 != 0;
        let kind = match t & 0x1F {
            8 => TagKind::Audio,
            9 => TagKind::Video,
            18 => TagKind::Script,
            other => TagKind::Other(other),
        };
        let (video, audio) = match (kind, filtered) {
            (TagKind::Video, false) => (video_info(body), None),
            (TagKind::Audio, false) => (None, audio_info(body)),
            _ => (None, None),
        };
        Some(FlvTag {
            kind,
            timestamp: u32::from_be_bytes([ts_ext, ts0, ts1, ts2]),
            stream_id: u32::from_be_bytes([0, s0, s1, s2]),
            filtered,
            video,
            audio,
            previous_tag_size: u32::from_be_bytes(prev),
            raw,
        })
    }

    /// A tag built from its type byte (8 audio, 9 video, 18 script), timestamp and body: an
    /// RTMP audio, video or data message turned into FLV. The body is copied once, into the
    /// tag's own buffer, which every viewer then shares. `None` if the body is longer than
    /// DataSize can say (16 MiB).
    pub fn new(type_id: u8, timestamp: u32, body: &[u8]) -> Option<Self> {
        let size = u32::try_from(body.len()).ok().filter(|&s| s < 1 << 24)?;
        let mut raw = Vec::with_capacity(TAG_HEADER_LEN + body.len() + PREV_SIZE_LEN);
        let [_, s0, s1, s2] = size.to_be_bytes();
        let [ext, t0, t1, t2] = timestamp.to_be_bytes();
        raw.extend_from_slice(&[type_id & 0x1F, s0, s1, s2, t0, t1, t2, ext, 0, 0, 0]);
        raw.extend_from_slice(body);
        raw.extend_from_slice(&(size + TAG_HEADER_LEN as u32).to_be_bytes());
        Self::from_raw(Bytes::from(raw))
    }

    /// The same tag with another timestamp (a new buffer: the header is part of the bytes).
    pub fn with_timestamp(&self, timestamp: u32) -> Option<Self> {
        if timestamp == self.timestamp {
            return Some(self.clone());
        }
        let mut raw = self.raw.to_vec();
        let [ext, t0, t1, t2] = timestamp.to_be_bytes();
        raw.get_mut(4..8)?.copy_from_slice(&[t0, t1, t2, ext]);
        Self::from_raw(Bytes::from(raw))
    }

    /// The RTMP message type id of this tag (8, 9, 18...): the same number.
    pub fn type_id(&self) -> u8 {
        match self.kind {
            TagKind::Audio => 8,
            TagKind::Video => 9,
            TagKind::Script => 18,
            TagKind::Other(t) => t,
        }
    }

    /// Tag header, body and the PreviousTagSize after it: written in order after
    /// [`crate::FlvHeader::to_bytes`], such units make a valid FLV stream.
    pub fn bytes(&self) -> &Bytes {
        &self.raw
    }

    /// The same bytes, owned.
    pub fn into_bytes(self) -> Bytes {
        self.raw
    }

    /// The tag body (DataSize bytes), sharing the tag's buffer.
    pub fn body(&self) -> Bytes {
        let end = self
            .raw
            .len()
            .saturating_sub(PREV_SIZE_LEN)
            .max(TAG_HEADER_LEN);
        self.raw.slice(TAG_HEADER_LEN.min(end)..end)
    }

    /// DataSize: the body length.
    pub fn data_size(&self) -> u32 {
        let len = self
            .raw
            .len()
            .saturating_sub(TAG_HEADER_LEN + PREV_SIZE_LEN);
        u32::try_from(len).unwrap_or(u32::MAX)
    }

    /// A video keyframe carrying a picture (frame type 1 or 4, coded frames): where a new
    /// viewer can start, after the latest metadata and sequence headers.
    pub fn is_keyframe(&self) -> bool {
        self.video.is_some_and(|v| {
            matches!(v.frame_type, FrameType::Key | FrameType::GeneratedKey)
                && v.packet == VideoPacket::CodedFrames
        })
    }

    /// A video decoder configuration (AVC/HEVC sequence header, Enhanced SequenceStart).
    pub fn is_video_sequence_header(&self) -> bool {
        self.video
            .is_some_and(|v| v.packet == VideoPacket::SequenceHeader)
    }

    /// An audio decoder configuration (AAC sequence header, Enhanced SequenceStart).
    pub fn is_audio_sequence_header(&self) -> bool {
        self.audio
            .is_some_and(|a| a.packet == AudioPacket::SequenceHeader)
    }

    /// Either sequence header.
    pub fn is_sequence_header(&self) -> bool {
        self.is_video_sequence_header() || self.is_audio_sequence_header()
    }

    /// An AVC sequence header (legacy or `avc1`).
    pub fn is_avc_sequence_header(&self) -> bool {
        self.is_video_sequence_header() && self.video_codec() == Some(VideoCodec::Avc)
    }

    /// An HEVC sequence header (legacy CodecID 12 or `hvc1`).
    pub fn is_hevc_sequence_header(&self) -> bool {
        self.is_video_sequence_header() && self.video_codec() == Some(VideoCodec::Hevc)
    }

    /// An AAC sequence header (legacy or `mp4a`).
    pub fn is_aac_sequence_header(&self) -> bool {
        self.is_audio_sequence_header() && self.audio.and_then(|a| a.codec) == Some(AudioCodec::Aac)
    }

    /// A script tag named `onMetaData` (or `@setDataFrame`, which wraps it).
    pub fn is_metadata(&self) -> bool {
        if self.kind != TagKind::Script {
            return false;
        }
        let body = self.body();
        // AMF0 string marker, 16-bit length, name.
        let Some((&0x02, rest)) = body.split_first() else {
            return false;
        };
        let Some((len, name)) = rest.split_first_chunk::<2>() else {
            return false;
        };
        let len = usize::from(u16::from_be_bytes(*len));
        matches!(name.get(..len), Some(b"onMetaData" | b"@setDataFrame"))
    }

    fn video_codec(&self) -> Option<VideoCodec> {
        self.video.and_then(|v| v.codec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(kind: u8, ts: u32, body: &[u8]) -> FlvTag {
        let size = u32::try_from(body.len()).unwrap_or(0).to_be_bytes();
        let ts_bytes = ts.to_be_bytes();
        let mut raw = vec![
            kind,
            size[1],
            size[2],
            size[3],
            ts_bytes[1],
            ts_bytes[2],
            ts_bytes[3],
            ts_bytes[0],
            0,
            0,
            0,
        ];
        raw.extend_from_slice(body);
        raw.extend_from_slice(&(11 + u32::try_from(body.len()).unwrap_or(0)).to_be_bytes());
        match FlvTag::from_raw(Bytes::from(raw)) {
            Some(t) => t,
            None => panic!("bad test tag"),
        }
    }

    #[test]
    fn header_fields() {
        let t = tag(9, 0x0123_4567, &[0x17, 0x01, 0, 0, 0, 9]);
        assert_eq!(t.kind, TagKind::Video);
        assert_eq!(t.timestamp, 0x0123_4567);
        assert_eq!(t.data_size(), 6);
        assert_eq!(&t.body()[..], &[0x17, 0x01, 0, 0, 0, 9]);
        assert_eq!(t.previous_tag_size, 17);
        assert!(t.is_keyframe());
        assert!(!t.is_sequence_header());
    }

    #[test]
    fn sequence_headers() {
        assert!(tag(9, 0, &[0x17, 0x00]).is_avc_sequence_header());
        assert!(tag(9, 0, b"\x90hvc1").is_hevc_sequence_header());
        assert!(!tag(9, 0, b"\x90hvc1").is_keyframe());
        assert!(tag(8, 0, &[0xAF, 0x00, 0x12, 0x10]).is_aac_sequence_header());
        assert!(!tag(8, 0, b"\x90Opus").is_aac_sequence_header());
        assert!(tag(8, 0, b"\x90Opus").is_audio_sequence_header());
    }

    #[test]
    fn filtered_and_unknown() {
        let t = tag(0x29, 0, &[0x17, 0x01]);
        assert!(t.filtered);
        assert_eq!((t.kind, t.video), (TagKind::Video, None));
        assert_eq!(tag(7, 0, &[]).kind, TagKind::Other(7));
        assert_eq!(tag(9, 0, &[]).video, None);
    }

    #[test]
    fn metadata() {
        assert!(tag(18, 0, b"\x02\x00\x0aonMetaData\x08").is_metadata());
        assert!(!tag(18, 0, b"\x02\x00\x0aonMetaDat").is_metadata());
        assert!(!tag(18, 0, b"\x02").is_metadata());
        assert!(!tag(9, 0, b"\x02\x00\x0aonMetaData").is_metadata());
    }
}
