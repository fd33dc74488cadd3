#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod fanout;
mod flv;
pub mod head;
mod request;
pub mod text;

#[doc(hidden)]
pub mod fuzzing;

pub use error::Error;
pub use fanout::{FanOut, FanOutConfig, TsAccess, TsFanOut};
pub use flv::{
    AudioCodec, AudioInfo, AudioPacket, FlvHeader, FlvReader, FlvTag, FourCc, FrameType,
    ReaderConfig, TagKind, VideoCodec, VideoInfo, VideoPacket, DEFAULT_MAX_TAG_SIZE,
    MAX_DATA_OFFSET, TAG_HEADER_LEN,
};
pub use request::{
    classify, Classifier, Kind, MediaRequest, DEFAULT_TOKEN_PARAM, MAX_HOST_LEN, MAX_PATH_LEN,
    MAX_QUERY_LEN, MAX_SEGMENTS, SRS_HLS_CTX_PARAM,
};
