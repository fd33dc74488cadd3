#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod codec;
pub mod cookie;
mod error;
pub mod extension;
pub mod handshake;
pub mod packet;
pub mod proxy;
pub mod reject;
mod streamid;

pub use cookie::SynCookies;
pub use error::Error;
pub use extension::{Extension, ExtensionType, Extensions};
pub use handshake::{Handshake, HandshakeType, PeerIp};
pub use packet::{
    classify, dest_socket_id, set_dest_socket_id, ControlHeader, DataHeader, Header, KeyFlags,
    Packet, PacketKind, PacketPosition, HEADER_LEN,
};
pub use proxy::{
    Accepted, Action, Limits, Listener, Opening, Outcome, Refusal, Relay, Router, Session,
    SessionIds, Silence, Silent, Transmit, Verdict,
};
pub use reject::RejectReason;
pub use streamid::{Mode, StreamId, MAX_STREAMID_LEN};
