#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod amf0;
pub mod chunk;
pub mod command;
mod error;
pub mod handshake;
pub mod message;
pub mod session;

pub use amf0::{Amf0Limits, Object, Value};
pub use chunk::{ChunkReader, ChunkWriter, MessagePiece, PassOn, Piece, ReaderLimits};
pub use command::{Command, PublishType};
pub use error::Error;
pub use message::{Control, Message, UserControl};
pub use session::{
    split_query, ClientConfig, ClientEvent, ClientSession, Identified, Leg, OriginRequest, Relay,
    ServerConfig, ServerEvent, ServerSession, SetupStage, StreamKind,
};
