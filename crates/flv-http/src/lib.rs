//! Sans-IO HTTP media requests for a streaming proxy.
//!
//! Two independent parts:
//!
//! - [`classify`] tells what an HTTP request asks for ([`Kind`]: HTTP-FLV, HTTP-TS, HLS
//!   playlist, HLS segment, other) and returns the raw parts of the stream identity
//!   (vhost, app, stream) for `lb-core` to turn into a stream key. A `.ts` request is an
//!   HLS segment when it carries the proxy's affinity token ([`DEFAULT_TOKEN_PARAM`]) or
//!   SRS's `hls_ctx`, and an HTTP-TS live stream otherwise.
//! - [`FlvReader`] reads an FLV byte stream split anywhere and yields [`FlvTag`]s with the
//!   facts an edge fan-out needs to start a new viewer: metadata, sequence headers
//!   (AVC, HEVC, AAC, Enhanced RTMP FourCC codecs) and keyframes.
//!
//! No sockets, no runtime, no global state: bytes and strings in, values out.
//!
//! ```
//! use flv_http::{classify, FlvReader, Kind};
//!
//! let req = classify("GET", "/live/livestream.flv", Some("token=1"), Some("127.0.0.1:8080"))?;
//! assert_eq!(req.kind, Kind::Flv);
//! assert_eq!((req.vhost.as_deref(), req.app.as_str(), req.stream.as_str()),
//!            (Some("127.0.0.1"), "live", "livestream"));
//!
//! let seg = classify("GET", "/live/livestream-3.ts", Some("spbhid=k2x9"), None)?;
//! assert_eq!((seg.kind, seg.token.as_deref()), (Kind::HlsSegment, Some("k2x9")));
//!
//! // An FLV header, then one AVC keyframe tag and its PreviousTagSize, in two pieces.
//! let mut reader = FlvReader::new();
//! reader.push_slice(b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00\x09\x00\x00\x02");
//! assert!(reader.next_tag()?.is_none());
//! reader.push_slice(b"\x00\x00\x28\x00\x00\x00\x00\x17\x01\x00\x00\x00\x0d");
//! let tag = reader.next_tag()?.ok_or("no tag")?;
//! assert!(tag.is_keyframe());
//! assert_eq!(tag.timestamp, 0x28);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod flv;
mod request;
pub mod text;

#[doc(hidden)]
pub mod fuzzing;

pub use error::Error;
pub use flv::{
    AudioCodec, AudioInfo, AudioPacket, FlvHeader, FlvReader, FlvTag, FourCc, FrameType,
    ReaderConfig, TagKind, VideoCodec, VideoInfo, VideoPacket, DEFAULT_MAX_TAG_SIZE,
    MAX_DATA_OFFSET, TAG_HEADER_LEN,
};
pub use request::{
    classify, Classifier, Kind, MediaRequest, DEFAULT_TOKEN_PARAM, MAX_HOST_LEN, MAX_PATH_LEN,
    MAX_QUERY_LEN, MAX_SEGMENTS, SRS_HLS_CTX_PARAM,
};
