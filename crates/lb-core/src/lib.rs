//! The vocabulary every balancer of the media proxy shares.
//!
//! - [`StreamKey`]: the one identity of a stream (vhost, app, stream), built from every
//!   protocol's request form, so that RTMP, HTTP-FLV, HLS, WebRTC and SRT requests for the
//!   same stream reach the same origin.
//! - [`Origin`] and [`Registration`]: an origin media server, as SRS's heartbeat describes it
//!   or as a static configuration lists it.
//! - [`Balancer`]: the trait a balancer implements (in one process, through Redis, or your
//!   own), and [`Strategy`]: how a new stream chooses among live origins.
//! - `testing` (feature `testing`): the conformance suite every balancer runs against
//!   itself.
//!
//! ```
//! use lb_core::{Registration, StreamKey};
//!
//! let key = StreamKey::from_rtmp("rtmp://example.com/live?token=1", "livestream?k=2").unwrap();
//! assert_eq!(key.to_string(), "example.com/live/livestream");
//!
//! let body = br#"{"ip":"10.0.0.5","server":"vid-1","service":"s1","pid":"42","rtmp":["19351"]}"#;
//! let origin = Registration::from_json(body).unwrap().into_origin().unwrap();
//! assert_eq!(origin.rtmp[0].to_string(), "10.0.0.5:19351");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod balancer;
mod clock;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod key;
mod load;
mod origin;
mod strategy;
#[cfg(feature = "testing")]
pub mod testing;

pub use balancer::{
    check_report, choose_origin, clip_reason, is_alive, is_alive_and_up, Balancer, BalancerConfig,
    HlsSession, LiveStream, OriginStatus, PickIntent, Placement, RtcSession, MAX_LISTED_PLACEMENTS,
    MAX_PROXY_ID_LEN, MAX_REASON_LEN, MAX_REPORTED_CONNECTIONS, MAX_REPORT_ENTRIES,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::Error;
pub use key::{StreamKey, DEFAULT_VHOST, MAX_NAME_LEN};
pub use load::OriginLoad;
pub use origin::{Endpoint, Origin, OriginId, OriginSource, Registration, Transport};
pub use strategy::{
    Candidate, LeastLoad, LeastStreams, Random, RoundRobin, Strategy, StrategyKind, Weighted,
};
