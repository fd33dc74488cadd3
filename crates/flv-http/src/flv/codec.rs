//! What the first bytes of an audio or video tag body say: codec, frame type, packet type.
//! Covers legacy FLV and Enhanced RTMP/FLV (v1 and v2: ExHeader, FourCC, multitrack, ModEx).

use std::fmt;

/// A FourCC codec identifier of Enhanced RTMP/FLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    /// H.264 / AVC.
    pub const AVC1: FourCc = FourCc(*b"avc1");
    /// H.265 / HEVC.
    pub const HVC1: FourCc = FourCc(*b"hvc1");
    /// AV1.
    pub const AV01: FourCc = FourCc(*b"av01");
    /// VP9.
    pub const VP09: FourCc = FourCc(*b"vp09");
    /// VP8.
    pub const VP08: FourCc = FourCc(*b"vp08");
    /// Opus.
    pub const OPUS: FourCc = FourCc(*b"Opus");
    /// FLAC.
    pub const FLAC: FourCc = FourCc(*b"fLaC");
    /// AC-3.
    pub const AC3: FourCc = FourCc(*b"ac-3");
    /// E-AC-3.
    pub const EAC3: FourCc = FourCc(*b"ec-3");
    /// MP3.
    pub const MP3: FourCc = FourCc(*b".mp3");
    /// AAC.
    pub const MP4A: FourCc = FourCc(*b"mp4a");
}

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// Video frame type (upper bits of the first body byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// 1: keyframe (a seekable frame, where a new viewer can start).
    Key,
    /// 2: inter frame.
    Inter,
    /// 3: disposable inter frame (H.263 only).
    DisposableInter,
    /// 4: generated keyframe (server use).
    GeneratedKey,
    /// 5: video info / command frame, not a picture.
    Command,
    /// 0, 6, 7 (and 8-15 in legacy tags).
    Reserved(u8),
}

impl FrameType {
    fn from_bits(bits: u8) -> Self {
        match bits {
            1 => FrameType::Key,
            2 => FrameType::Inter,
            3 => FrameType::DisposableInter,
            4 => FrameType::GeneratedKey,
            5 => FrameType::Command,
            other => FrameType::Reserved(other),
        }
    }
}

/// Video codec, from the legacy CodecID or the Enhanced FourCC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// Legacy 2.
    SorensonH263,
    /// Legacy 3.
    ScreenVideo,
    /// Legacy 4.
    Vp6,
    /// Legacy 5.
    Vp6Alpha,
    /// Legacy 6.
    ScreenVideo2,
    /// Legacy 7 or `avc1`.
    Avc,
    /// Legacy 12 (the widespread pre-Enhanced extension) or `hvc1`.
    Hevc,
    /// `av01`.
    Av1,
    /// `vp08`.
    Vp8,
    /// `vp09`.
    Vp9,
    /// Another legacy CodecID.
    Legacy(u8),
    /// Another FourCC.
    Other(FourCc),
}

impl VideoCodec {
    fn from_legacy(id: u8) -> Self {
        match id {
            2 => VideoCodec::SorensonH263,
            3 => VideoCodec::ScreenVideo,
            4 => VideoCodec::Vp6,
            5 => VideoCodec::Vp6Alpha,
            6 => VideoCodec::ScreenVideo2,
            7 => VideoCodec::Avc,
            12 => VideoCodec::Hevc,
            other => VideoCodec::Legacy(other),
        }
    }

    fn from_fourcc(cc: FourCc) -> Self {
        match cc {
            FourCc::AVC1 => VideoCodec::Avc,
            FourCc::HVC1 => VideoCodec::Hevc,
            FourCc::AV01 => VideoCodec::Av1,
            FourCc::VP08 => VideoCodec::Vp8,
            FourCc::VP09 => VideoCodec::Vp9,
            other => VideoCodec::Other(other),
        }
    }
}

/// What a video tag carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoPacket {
    /// Decoder configuration: AVC/HEVC sequence header, Enhanced SequenceStart or
    /// MPEG2TSSequenceStart. New viewers need the latest one before any frame.
    SequenceHeader,
    /// Coded frames (legacy NALU packets, Enhanced CodedFrames and CodedFramesX, or any
    /// frame of a codec without packet types).
    CodedFrames,
    /// End of sequence.
    EndOfSequence,
    /// Enhanced Metadata (HDR colour info and the like).
    Metadata,
    /// A command frame (frame type 5): no picture.
    Command,
    /// An unknown packet type.
    Other(u8),
}

/// Codec facts of a video tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VideoInfo {
    /// Frame type.
    pub frame_type: FrameType,
    /// Codec; `None` for a multitrack tag whose tracks each name their own codec.
    pub codec: Option<VideoCodec>,
    /// Packet type.
    pub packet: VideoPacket,
    /// Enhanced RTMP/FLV ExVideoTagHeader (IsExHeader bit set).
    pub enhanced: bool,
    /// Enhanced multitrack tag.
    pub multitrack: bool,
}

/// Audio codec, from the legacy SoundFormat or the Enhanced FourCC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// Legacy 10 or `mp4a`.
    Aac,
    /// Legacy 2 or 14, or `.mp3`.
    Mp3,
    /// Legacy 11.
    Speex,
    /// Legacy 7.
    G711A,
    /// Legacy 8.
    G711Mu,
    /// `Opus`.
    Opus,
    /// `fLaC`.
    Flac,
    /// `ac-3`.
    Ac3,
    /// `ec-3`.
    Eac3,
    /// Another legacy SoundFormat.
    Legacy(u8),
    /// Another FourCC.
    Other(FourCc),
}

impl AudioCodec {
    fn from_legacy(id: u8) -> Self {
        match id {
            2 | 14 => AudioCodec::Mp3,
            7 => AudioCodec::G711A,
            8 => AudioCodec::G711Mu,
            10 => AudioCodec::Aac,
            11 => AudioCodec::Speex,
            other => AudioCodec::Legacy(other),
        }
    }

    fn from_fourcc(cc: FourCc) -> Self {
        match cc {
            FourCc::MP4A => AudioCodec::Aac,
            FourCc::MP3 => AudioCodec::Mp3,
            FourCc::OPUS => AudioCodec::Opus,
            FourCc::FLAC => AudioCodec::Flac,
            FourCc::AC3 => AudioCodec::Ac3,
            FourCc::EAC3 => AudioCodec::Eac3,
            other => AudioCodec::Other(other),
        }
    }
}

/// What an audio tag carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioPacket {
    /// Decoder configuration: AAC sequence header (AudioSpecificConfig) or Enhanced
    /// SequenceStart. New viewers need the latest one before any frame.
    SequenceHeader,
    /// Coded audio.
    Frames,
    /// Enhanced SequenceEnd.
    EndOfSequence,
    /// Enhanced MultichannelConfig.
    MultichannelConfig,
    /// An unknown packet type.
    Other(u8),
}

/// Codec facts of an audio tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudioInfo {
    /// Codec; `None` for a multitrack tag whose tracks each name their own codec.
    pub codec: Option<AudioCodec>,
    /// Packet type.
    pub packet: AudioPacket,
    /// Enhanced RTMP/FLV ExAudioTagHeader (SoundFormat 9).
    pub enhanced: bool,
    /// Enhanced multitrack tag.
    pub multitrack: bool,
}

/// A bounds-checked reader over a tag body.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    fn fourcc(&mut self) -> Option<FourCc> {
        Some(FourCc([self.u8()?, self.u8()?, self.u8()?, self.u8()?]))
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.0 = self.0.get(n..)?;
        Some(())
    }
}

const PACKET_MULTITRACK_VIDEO: u8 = 6;
const PACKET_MULTITRACK_AUDIO: u8 = 5;
const PACKET_MOD_EX: u8 = 7;
const MANY_TRACKS_MANY_CODECS: u8 = 2;
// Each ModEx round consumes at least two bytes, so the body bounds the loop; this only
// keeps a crafted body from making it long.
const MAX_MOD_EX: usize = 16;

/// Skips ModEx prefixes, returning the packet type that follows them.
fn skip_mod_ex(c: &mut Cursor<'_>, mut packet_type: u8) -> Option<u8> {
    let mut rounds = 0;
    while packet_type == PACKET_MOD_EX {
        rounds += 1;
        if rounds > MAX_MOD_EX {
            return None;
        }
        let mut size = usize::from(c.u8()?) + 1;
        if size == 256 {
            size = usize::from(c.u16()?) + 1;
        }
        c.skip(size)?;
        packet_type = c.u8()? & 0x0F;
    }
    Some(packet_type)
}

/// Reads the codec facts of a video tag body; `None` if the body is too short to tell.
pub(crate) fn video_info(body: &[u8]) -> Option<VideoInfo> {
    let mut c = Cursor(body);
    let b0 = c.u8()?;
    if b0 & 0x80 == 0 {
        let frame_type = FrameType::from_bits(b0 >> 4);
        let codec = VideoCodec::from_legacy(b0 & 0x0F);
        let packet = if frame_type == FrameType::Command {
            VideoPacket::Command
        } else if matches!(codec, VideoCodec::Avc | VideoCodec::Hevc) {
            match c.u8()? {
                0 => VideoPacket::SequenceHeader,
                1 => VideoPacket::CodedFrames,
                2 => VideoPacket::EndOfSequence,
                other => VideoPacket::Other(other),
            }
        } else {
            VideoPacket::CodedFrames
        };
        let codec = Some(codec);
        return Some(VideoInfo {
            frame_type,
            codec,
            packet,
            enhanced: false,
            multitrack: false,
        });
    }

    let frame_type = FrameType::from_bits((b0 >> 4) & 0x07);
    let mut packet_type = skip_mod_ex(&mut c, b0 & 0x0F)?;
    let mut multitrack = false;
    let codec = if packet_type != 4 && frame_type == FrameType::Command {
        // A command frame has a command byte and no FourCC.
        None
    } else if packet_type == PACKET_MULTITRACK_VIDEO {
        multitrack = true;
        let b = c.u8()?;
        packet_type = b & 0x0F;
        if b >> 4 == MANY_TRACKS_MANY_CODECS {
            None
        } else {
            Some(VideoCodec::from_fourcc(c.fourcc()?))
        }
    } else {
        Some(VideoCodec::from_fourcc(c.fourcc()?))
    };
    let packet = match packet_type {
        _ if frame_type == FrameType::Command && packet_type != 4 => VideoPacket::Command,
        0 | 5 => VideoPacket::SequenceHeader,
        1 | 3 => VideoPacket::CodedFrames,
        2 => VideoPacket::EndOfSequence,
        4 => VideoPacket::Metadata,
        other => VideoPacket::Other(other),
    };
    Some(VideoInfo {
        frame_type,
        codec,
        packet,
        enhanced: true,
        multitrack,
    })
}

/// Reads the codec facts of an audio tag body; `None` if the body is too short to tell.
pub(crate) fn audio_info(body: &[u8]) -> Option<AudioInfo> {
    let mut c = Cursor(body);
    let b0 = c.u8()?;
    let format = b0 >> 4;
    if format != 9 {
        let codec = AudioCodec::from_legacy(format);
        let packet = if codec == AudioCodec::Aac {
            match c.u8()? {
                0 => AudioPacket::SequenceHeader,
                1 => AudioPacket::Frames,
                other => AudioPacket::Other(other),
            }
        } else {
            AudioPacket::Frames
        };
        let codec = Some(codec);
        return Some(AudioInfo {
            codec,
            packet,
            enhanced: false,
            multitrack: false,
        });
    }

    let mut packet_type = skip_mod_ex(&mut c, b0 & 0x0F)?;
    let mut multitrack = false;
    let codec = if packet_type == PACKET_MULTITRACK_AUDIO {
        multitrack = true;
        let b = c.u8()?;
        packet_type = b & 0x0F;
        if b >> 4 == MANY_TRACKS_MANY_CODECS {
            None
        } else {
            Some(AudioCodec::from_fourcc(c.fourcc()?))
        }
    } else {
        Some(AudioCodec::from_fourcc(c.fourcc()?))
    };
    let packet = match packet_type {
        0 => AudioPacket::SequenceHeader,
        1 => AudioPacket::Frames,
        2 => AudioPacket::EndOfSequence,
        4 => AudioPacket::MultichannelConfig,
        other => AudioPacket::Other(other),
    };
    Some(AudioInfo {
        codec,
        packet,
        enhanced: true,
        multitrack,
    })
}

#[cfg(test)]
mod tests;
