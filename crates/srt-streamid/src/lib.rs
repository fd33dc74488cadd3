//! Sans-IO SRT for proxies: the packet header and handshake (v5) codec, and the streamid
//! grammar that names the stream a caller wants.
//!
//! ```
//! use srt_streamid::{StreamId, Mode};
//!
//! let sid = StreamId::parse("#!::h=a.example.com,r=live/livestream,m=publish").unwrap();
//! assert_eq!(sid.resource.as_deref(), Some("live/livestream"));
//! assert_eq!(sid.host.as_deref(), Some("a.example.com"));
//! assert_eq!(sid.mode, Mode::Publish);
//! ```

mod error;
mod streamid;

pub use error::Error;
pub use streamid::{Mode, StreamId, MAX_STREAMID_LEN};
