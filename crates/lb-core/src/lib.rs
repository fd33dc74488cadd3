#![doc = include_str!("../README.md")]
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
pub mod token;

pub use balancer::StrategySlot;
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
    Candidate, LeastLoad, LeastStreams, Random, Rendezvous, RoundRobin, Strategy, StrategyKind,
    Weighted,
};
