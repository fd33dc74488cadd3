//! Incremental FLV reading: file header, then tags with their codec facts.

mod chunks;
mod codec;
mod header;
mod reader;
mod tag;

pub use codec::{
    AudioCodec, AudioInfo, AudioPacket, FourCc, FrameType, VideoCodec, VideoInfo, VideoPacket,
};
pub use header::FlvHeader;
pub use reader::{FlvReader, ReaderConfig, DEFAULT_MAX_TAG_SIZE, MAX_DATA_OFFSET};
pub use tag::{FlvTag, TagKind, TAG_HEADER_LEN};
