#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod consent;
pub mod demux;
mod error;
pub mod router;
pub mod sdp;
pub mod stun;

pub use demux::{classify, PacketKind};
pub use error::Error;
pub use stun::{
    attr_type, BindingRequest, Class, IceRole, IceUsername, IntegrityKey, Message, MessageBuilder,
    MessageType, Method, TransactionId,
};
